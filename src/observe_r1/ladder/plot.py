"""The NeuraLadder figure: share of rows per difficulty (bars), mean complexity (line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_profile(profile: list[dict[str, Any]], path: str | Path) -> Path:
    """Draw `observe_r1.ladder.steps.level_profile` output to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{level['difficulty']:.3g}" for level in profile]
    shares = [100 * level["share"] for level in profile]
    figure, bars = plt.subplots(figsize=(7, 4))
    bars.bar(labels, shares, color="tab:blue", alpha=0.8)
    bars.set_xlabel("difficulty")
    bars.set_ylabel("share of rows (%)", color="tab:blue")
    line = bars.twinx()
    points = [(x, level["mean_complexity"]) for x, level in zip(labels, profile, strict=True)]
    points = [(x, y) for x, y in points if y is not None]
    if points:
        line.plot(*zip(*points, strict=True), color="tab:red", marker="o")
    line.set_ylabel("mean complexity (tokens)", color="tab:red")
    bars.set_title("NeuraLadder: rows and complexity per difficulty")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)
