"""Draw a scene, a list of primitive dicts in a 112 x 112 design frame, at any pixel size.

Primitives (coordinates in design units, colours by name from `COLORS`):

- ``{"kind": "ellipse" | "rectangle", "box": [x0, y0, x1, y1], "fill": c, "outline": c}``
- ``{"kind": "polygon", "points": [[x, y], ...], "fill": c, "outline": c}``
- ``{"kind": "line", "points": [[x, y], ...], "color": c, "width": w}``
- ``{"kind": "text", "text": s, "xy": [x, y], "size": s, "color": c}`` (centred on ``xy``;
  the font shrinks until the text fits the frame)

``fill``, ``outline`` and ``color`` (lines and text; default black) are optional; other keys (a
family's own tags, such as ``shape``) are ignored. Families describe what they draw; only
this module knows pixels, so the same scene renders legibly at 112, 168 or 224 px.
"""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw, ImageFont

DESIGN = 112
COLORS = {
    "white": (255, 255, 255),
    "black": (20, 20, 20),
    "grey": (200, 200, 200),
    "red": (220, 30, 30),
    "blue": (30, 80, 220),
    "green": (20, 150, 50),
    "orange": (245, 140, 0),
    "purple": (140, 50, 180),
    "yellow": (235, 200, 0),
}


@cache
def font(pixels: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font at `pixels` size."""
    return ImageFont.load_default(size=pixels)


def _fitted_font(text: str, pixels: int, width: int) -> ImageFont.FreeTypeFont:
    while pixels > 6 and font(pixels).getlength(text) > width:
        pixels -= 1
    return font(pixels)


def render(scene: list[dict], size: int = DESIGN) -> Image.Image:
    """The scene drawn on a white ``size`` x ``size`` RGB image."""
    image = Image.new("RGB", (size, size), COLORS["white"])
    draw = ImageDraw.Draw(image)
    scale = size / DESIGN

    def pixels(points):
        return [(round(x * scale), round(y * scale)) for x, y in points]

    def colour(item, key):
        return COLORS[item[key]] if item.get(key) else None

    for item in scene:
        kind = item["kind"]
        width = max(1, round(item.get("width", 1) * scale))
        if kind in ("ellipse", "rectangle"):
            x0, y0, x1, y1 = item["box"]
            shape = draw.ellipse if kind == "ellipse" else draw.rectangle
            box = pixels([(x0, y0), (x1, y1)])
            shape(box, fill=colour(item, "fill"), outline=colour(item, "outline"), width=width)
        elif kind == "polygon":
            draw.polygon(
                pixels(item["points"]),
                fill=colour(item, "fill"),
                outline=colour(item, "outline"),
                width=width,
            )
        elif kind == "line":
            ink = COLORS[item.get("color", "black")]
            draw.line(pixels(item["points"]), fill=ink, width=width)
        elif kind == "text":
            face = _fitted_font(item["text"], round(item["size"] * scale), size - 4)
            (xy,) = pixels([item["xy"]])
            ink = COLORS[item.get("color", "black")]
            draw.text(xy, item["text"], fill=ink, font=face, anchor="mm")
        else:
            raise ValueError(f"unknown scene primitive {kind!r}")
    return image
