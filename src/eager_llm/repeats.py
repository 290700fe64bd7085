"""Train-and-evaluate repeats over seeds (``eager-llm repeat``), summarised as mean and std.

Each seed is one run of the config with ``seed`` set to it: stage 1 in ``OUT/seed-S/stage1``,
with ``anneal`` stage 2 in ``OUT/seed-S/anneal``, then ``eager-llm eval`` of the last stage
(its ``eval.json``; the stage-1 sibling is evaluated beside an annealed run). The index is
shared, so only training varies: the sample order, instruction draws, projector and LoRA
initial weights. ``OUT/seeds.json`` and ``OUT/seeds.md`` hold, per method and metric, the
values of each seed, their mean and their sample standard deviation (n - 1); the baselines
do not depend on the seed (std 0).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from eager_llm.evaluate import METRICS, NAMES, evaluate, write_report
from eager_llm.training import load_config, run

SUMMARY = "seeds"


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2); at least two distinct seeds >= 0, else ``ValueError``
    naming ``--seeds``."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"--seeds {text!r}: give seeds >= 0 separated by commas, e.g. 0,1,2")
    seeds = tuple(int(part) for part in parts)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: a seed is given twice")
    if len(seeds) < 2:
        raise ValueError(f"--seeds {text!r}: a mean and std need at least two seeds")
    return seeds


def summarise(reports: Mapping[int, dict]) -> dict:
    """Per method (in the first report's order) and metric: ``values`` (one per seed, in
    seed order), ``mean`` and ``std`` (n - 1). Every report must rank the same methods on
    the same users."""
    seeds = list(reports)
    first = reports[seeds[0]]
    methods = [row["method"] for row in first["results"]]
    for seed in seeds:
        if [row["method"] for row in reports[seed]["results"]] != methods:
            raise ValueError(
                f"seed {seed}: its evaluation ranks other methods than seed {seeds[0]}"
            )
        if reports[seed]["n_users"] != first["n_users"]:
            raise ValueError(f"seed {seed}: its evaluation has other users than seed {seeds[0]}")
    summary = {}
    for position, method in enumerate(methods):
        rows = [reports[seed]["results"][position] for seed in seeds]
        summary[method] = {}
        for metric in METRICS:
            values = np.array([row[metric] for row in rows], dtype=np.float64)
            summary[method][metric] = {
                "values": values.tolist(),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)),
            }
    return {
        "seeds": seeds,
        "split": first["split"],
        "n_users": first["n_users"],
        "methods": summary,
    }


def summary_table(summary: dict) -> str:
    """Markdown: one row per method, mean ± std of each metric."""
    lines = [
        f"| method | {' | '.join(NAMES[key] for key in METRICS)} |",
        "| --- " * (len(METRICS) + 1) + "|",
    ]
    for method, metrics in summary["methods"].items():
        cells = " | ".join(f"{m['mean']:.4f} ± {m['std']:.4f}" for m in metrics.values())
        lines.append(f"| {method} | {cells} |")
    return "\n".join(lines)


def write_summary(summary: dict, out: Path) -> Path:
    """``OUT/seeds.json`` and ``OUT/seeds.md``; returns the markdown path."""
    (out / f"{SUMMARY}.json").write_text(json.dumps(summary, indent=1))
    seeds = ", ".join(map(str, summary["seeds"]))
    text = [
        f"# {len(summary['seeds'])} seeds ({seeds}): {summary['split']} split, "
        f"{summary['n_users']} users",
        "",
        "Mean ± sample std (n - 1) over the seeds; each seed's evaluation is "
        "`seed-S/<stage>/eval.md`.",
        "",
        summary_table(summary),
        "",
    ]
    (out / f"{SUMMARY}.md").write_text("\n".join(text))
    return out / f"{SUMMARY}.md"


def repeat(
    config: str | Path,
    seeds: Sequence[int],
    out: str | Path,
    *,
    overrides: Sequence[str] = (),
    anneal: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    evaluation: Mapping | None = None,
    echo: Callable[[str], None] = print,
    **explicit,
) -> dict:
    """Train (and anneal) then evaluate one run per seed; write and return the summary.
    ``explicit``: config keys set as the CLI's options do (``index``, ``max_steps``);
    ``evaluation``: keywords of :func:`eager_llm.evaluate.evaluate`. Every seed's configs
    are read before anything is trained, so a bad value stops the repeat at once."""
    out = Path(out)
    stages = {}
    for seed in seeds:
        folder = out / f"seed-{seed}"
        first = dict(explicit, seed=seed, output_dir=str(folder / "stage1"))
        stages[seed] = [load_config(config, "train", list(overrides), **first)]
        if anneal:
            second = dict(explicit, seed=seed, output_dir=str(folder / "anneal"))
            stages[seed].append(load_config(config, "anneal", list(overrides), **second))
    reports = {}
    for seed, (stage1, *stage2) in stages.items():
        echo(f"seed {seed}: stage 1 -> {stage1.output_dir}")
        final = run(stage1, resume=resume, overwrite=overwrite)
        for settings in stage2:
            echo(f"seed {seed}: anneal -> {settings.output_dir}")
            final = run(settings, base=str(final), resume=resume, overwrite=overwrite)
        reports[seed] = evaluate(final.parent, **(evaluation or {}))
        write_report(reports[seed], final.parent)
        echo(f"seed {seed}: {final.parent / 'eval.md'}")
    summary = summarise(reports)
    write_summary(summary, out)
    return summary
