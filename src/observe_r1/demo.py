"""A short end-to-end Observe-R1 run on a handful of drawn counting questions.

Draws ``runs/observe_r1_demo/data`` (circles to count, answers known), trains the tiny
Qwen2.5-VL for a few GRPO steps with Observe-R1 shaping, and prints where the metrics,
reward curve and final model are. It shows the whole training path working in about a
minute on a laptop CPU; the model is random, so expect zero reward.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

from observe_r1.config import load_config
from observe_r1.train import train

RUN = Path("runs/observe_r1_demo")
CONFIG = Path(__file__).parents[2] / "configs" / "observe_r1" / "tiny.yaml"


def draw_counting_rows(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` images with 1-6 red circles and the question how many; returns the JSONL."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(n):
        count = rng.randint(1, 6)
        image = Image.new("RGB", (112, 112), "white")
        draw = ImageDraw.Draw(image)
        for k in range(count):
            x, y = 8 + 17 * k, rng.randint(10, 80)
            draw.ellipse((x, y, x + 14, y + 14), fill="red")
        image.save(folder / f"count-{index}.png")
        question = "How many red circles are in the image?"
        row = {"id": f"count-{index}", "image": f"count-{index}.png", "question": question}
        caption = f"A white picture with {count} red circle{'s' * (count > 1)}."
        rationale = "Counting the red circles: " + ", ".join(map(str, range(1, count + 1))) + "."
        lines.append(
            json.dumps({**row, "answer": str(count), "caption": caption, "rationale": rationale})
        )
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "train.jsonl"


def main() -> None:
    data = draw_counting_rows(RUN / "data", n=8)
    config = load_config(CONFIG, [f"train_file={data}", f"output_dir={RUN}", "max_steps=3"])
    final = train(config)
    print(f"metrics: {RUN / 'metrics.jsonl'}")
    print(f"reward curve: {RUN / 'reward_curve.png'}")
    print(f"final model: {final}")


if __name__ == "__main__":
    main()
