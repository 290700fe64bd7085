"""The documentation holds together: relative links and anchors resolve, the README stays a
short front door whose measured numbers link to results/, and every results page puts its
command first."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_LIMIT = 220

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"`+[^`]*`+")
WEB_LINK = re.compile(r"\[[^\]]*\]\([a-z][a-z0-9+.-]*:[^)]*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# A measured number: a decimal (0.116, 12.4x), a time (353 s, 2.5 min) or a percentage.
MEASURED = re.compile(r"(?<![\w.])\d[\d,]*\.\d+|(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:s|min|h|%)(?!\w)")


def doc_files() -> list[Path]:
    names = ["README.md", "CONTRIBUTING.md", "assets/README.md"]
    files = [ROOT / name for name in names]
    files += sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "results").glob("*.md"))
    return [path for path in files if path.is_file()]


def unfenced_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def prose_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each paragraph, list item and table row outside code,
    with inline code and links to the web (paper ids) removed."""
    blocks: list[tuple[int, list[str]]] = []
    for number, line in unfenced_lines(text):
        line = WEB_LINK.sub("", CODE_SPAN.sub("", line))
        starts_block = re.match(r"\s*(?:[-*|]|\d+\.)\s", line) or line.startswith("|")
        if not line.strip():
            blocks.append((number, []))
        elif starts_block or not blocks or not blocks[-1][1]:
            blocks.append((number, [line]))
        else:
            blocks[-1][1].append(line)
    return [(number, " ".join(lines)) for number, lines in blocks if lines]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation removed,
    spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in unfenced_lines(path.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    return [
        (number, target)
        for number, line in unfenced_lines(path.read_text())
        for target in LINK.findall(CODE_SPAN.sub("``", line))
    ]


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where} (no heading with anchor #{anchor})")
    return problems


def test_the_link_checker_catches_what_it_should(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "other.md").write_text("# Other page\n\n## The `eval` verb (CLI)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md) [anchor](other.md#the-eval-verb-cli) [web](https://example.org)\n"
        "[gone](missing.md) [bad anchor](other.md#nope) `[code](not-a-link.md)`\n"
        "```\n[fenced](also-not-a-link.md)\n```\n"
    )
    problems = broken_links(page)
    assert len(problems) == 2, problems
    assert "missing.md" in problems[0] and "#nope" in problems[1]


def test_slugs_follow_github():
    assert slug("Observe-R1 (`observe-r1 train`)") == "observe-r1-observe-r1-train"
    assert slug("Data: `eager-llm data stats`") == "data-eager-llm-data-stats"
    assert slug("Rewards (`observe_r1.rewards`, x)") == "rewards-observe_r1rewards-x"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_readme_is_a_short_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_LIMIT, f"README.md has {len(lines)} lines (limit {README_LIMIT})"


def unlinked_numbers(text: str) -> list[str]:
    """Paragraphs, list items and table rows that state a measured number but link to no
    results page."""
    return [
        f"line {number}: {block.strip()}"
        for number, block in prose_blocks(text)
        if MEASURED.search(block) and "](results/" not in block
    ]


def test_the_number_checker_catches_what_it_should():
    text = (
        "Paper: arXiv [2505.12432](https://arxiv.org/abs/2505.12432), Qwen2.5-VL.\n\n"
        "The demo takes 353 s on a CPU,\nsee [the page](results/demo.md).\n\n"
        "- accuracy 0.116\n- [linked](results/x.md): 12.4x\n\n"
        "| a | 0.5 | [page](results/y.md) |\n| b | 17 % | no link |\n\n"
        "`took 9 s` in code is fine\n\n```\n1.5 s in a fence\n```\n"
    )
    assert [line.split(":")[0] for line in unlinked_numbers(text)] == ["line 6", "line 10"]


def test_every_measured_number_in_the_readme_links_to_results():
    assert unlinked_numbers((ROOT / "README.md").read_text()) == []


def test_results_pages_start_with_their_command():
    pages = [p for p in sorted((ROOT / "results").glob("*.md")) if p.name != "README.md"]
    assert pages, "results/ has no pages"
    for page in pages:
        text = page.read_text()
        command = text.find("```bash")
        table = text.find("\n|")
        assert command != -1, f"{page.name}: no ```bash block with its command"
        assert table == -1 or command < table, f"{page.name}: a table comes before the command"
