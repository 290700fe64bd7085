"""``baselines.json`` / ``baselines.md`` of ``eager-llm baselines``: the metrics table, the
chosen hyper-parameters and each baseline's paired difference to the strongest one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from eager_llm.metrics import per_user
from model_zoo.significance import paired_bootstrap

from .tuning import params_text

METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "recall@20")
NAMES = {"recall@5": "Recall@5", "recall@10": "Recall@10", "ndcg@5": "NDCG@5",
         "ndcg@10": "NDCG@10", "recall@20": "Recall@20"}  # fmt: skip


def strongest(results: Sequence[dict]) -> dict:
    """The row with the best validation NDCG@10 (chosen without looking at the test split)."""
    return max(results, key=lambda r: r["valid_ndcg@10"])


def metrics_table(results: Sequence[dict]) -> str:
    lines = [
        f"| method | {' | '.join(NAMES[m] for m in METRICS)} | valid NDCG@10 | chosen on valid |",
        "| --- " * (len(METRICS) + 3) + "|",
    ]
    for r in results:
        cells = " | ".join(f"{r[m]:.4f}" for m in METRICS)
        lines.append(
            f"| {r['method']} | {cells} | {r['valid_ndcg@10']:.4f} | {params_text(r['params'])} |"
        )
    return "\n".join(lines)


def difference_table(results: Sequence[dict], resamples: int = 10_000) -> str:
    """Each row minus the strongest (:func:`strongest`) on the same users, paired bootstrap
    95 % interval over users."""
    best = strongest(results)
    lines = [
        "| method | vs | ΔRecall@10 [95 % CI] | ΔNDCG@10 [95 % CI] |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        if r is best:
            continue
        cells = []
        for metric in ("recall@10", "ndcg@10"):
            mean, low, high = paired_bootstrap(
                per_user(r, metric), per_user(best, metric), resamples=resamples
            )
            cells.append(f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]")
        lines.append(f"| {r['method']} | {best['method']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def write_report(report: dict, folder: str | Path) -> Path:
    """``baselines.json`` and ``baselines.md`` in ``folder``; returns the markdown path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "baselines.json").write_text(json.dumps(report, indent=1))
    seen = "kept" if report["seen"] == "keep" else "removed (the user's whole past)"
    text = [
        f"# Baselines: {report['dataset']}, {report['split']} split, history items {seen}",
        "",
        f"{report['n_users']} users, {report['n_items']} items, full ranking; hyper-parameters "
        f"chosen on validation NDCG@10 under the same protocol; events with equal timestamps "
        f"in {report.get('tie_order', 'file')} order; torch threads: {report['threads']}.",
        "",
        metrics_table(report["results"]),
        "",
        "Differences to the strongest baseline on validation (paired bootstrap over users):",
        "",
        difference_table(report["results"]),
        "",
    ]
    (folder / "baselines.md").write_text("\n".join(text))
    return folder / "baselines.md"
