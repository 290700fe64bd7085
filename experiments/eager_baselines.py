"""Tuned non-LLM baselines on one dataset, both splits and both protocols, and their page.

    experiments/eager_baselines.py --dataset movielens-100k --tag ml100k

runs ``eager-llm baselines`` four times (valid / test x history items kept / removed; ``--splits
test``: twice) into
``runs/baselines/TAG/{split}-{seen}/`` with the SASRec grid points already trained in
``runs/baselines/TAG/sasrec`` (``experiments/eager_baselines_sasrec.py``; none is trained
here), then writes ``results/eager_baselines_TAG.md``. ``--skip-run`` rebuilds the page from
the reports. Every command runs under ``OMP_NUM_THREADS=1 nice -n 10``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from eager_llm.baselines.report import difference_table, strongest
from eager_llm.baselines.tuning import (
    ITEMKNN_GRID,
    MARKOV_GRID,
    SASREC_CENTRE,
    SASREC_VARIANTS,
    params_text,
)
from model_zoo.hardware import cpu_model

ROOT = Path(__file__).parents[1]
PROTOCOLS = {"keep": "history items kept", "remove": "history items removed (whole past)"}


def run_cli(dataset: str, split: str, seen: str, out: Path, models: Path) -> float:
    """One ``eager-llm baselines`` run; returns its wall seconds."""
    command = ["nice", "-n", "10", str(ROOT / ".venv/bin/eager-llm"), "baselines",
               "--dataset", dataset, "--split", split, "--seen", seen, "--out", str(out),
               "--models", str(models), "--no-train-missing", "--overwrite"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    return time.perf_counter() - started


def sasrec_points(models: Path) -> list[dict]:
    """The trained grid points' reports, by name."""
    return [
        json.loads(path.read_text()) | {"name": path.parent.name}
        for path in sorted(models.glob("*/report.json"))
    ]


def protocol_section(seen: str, valid: dict | None, test: dict) -> list[str]:
    """The protocol's table: the chosen point's validation numbers (from the test run's own
    tuning; the valid run, when there is one, must have chosen the same and agree), then
    the test numbers and the paired differences."""
    by_valid = {r["method"]: r for r in valid["results"]} if valid else {}
    lines = [
        f"### {PROTOCOLS[seen].capitalize()}",
        "",
        "| method | chosen on valid | valid R@10 | valid N@10 | test R@5 | test R@10 | test N@5 "
        "| test N@10 | test R@20 |",
        "| --- " * 9 + "|",
    ]
    for r in test["results"]:
        if v := by_valid.get(r["method"]):
            assert v["params"] == r["params"], "valid and test runs chose differently"
            assert abs(v["recall@10"] - r["valid_recall@10"]) < 1e-12
        cells = " | ".join(f"{r[m]:.4f}" for m in ("recall@5", "recall@10", "ndcg@5", "ndcg@10",
                                                   "recall@20"))  # fmt: skip
        lines.append(f"| {r['method']} | {params_text(r['params'])} | {r['valid_recall@10']:.4f} | "
                     f"{r['valid_ndcg@10']:.4f} | {cells} |")  # fmt: skip
    best = strongest(test["results"])
    lines += [
        "",
        f"Test, each baseline minus the strongest on validation ({best['method']}), paired "
        f"bootstrap over the {test['n_users']} users (10,000 resamples):",
        "",
        difference_table(test["results"]),
        "",
    ]
    return lines


def write_page(args, reports: dict, seconds: dict) -> Path:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False, cwd=ROOT).stdout.strip()  # fmt: skip
    tag, models = args.tag, f"runs/baselines/{args.tag}/sasrec"
    splits = "" if args.splits == "valid,test" else f" --splits {args.splits}"
    any_report = reports[("test", "keep")]
    points = sasrec_points(ROOT / models)
    lines = [
        f"# Tuned non-LLM baselines on {args.dataset}",
        "",
        "```bash",
        "# SASRec grid points (each pinned to one core; repeat with -c 1 / --part 1/2)",
        "OMP_NUM_THREADS=1 nice -n 10 taskset -c 0 .venv/bin/python \\",
        f"    experiments/eager_baselines_sasrec.py --dataset {args.dataset} \\",
        f"    --models {models} --part 0/2",
        "# the evaluations (valid/test x kept/removed) and this page",
        "OMP_NUM_THREADS=1 .venv/bin/python experiments/eager_baselines.py \\",
        f"    --dataset {args.dataset} --tag {tag}{splits}",
        "```",
        "",
        f"(Written by `experiments/eager_baselines.py` at commit `{commit}` from "
        f"`runs/baselines/{tag}/{{valid,test}}-{{keep,remove}}/baselines.json`, which keep "
        "every user's target rank.)",
        "",
        f"- **Machine**: {cpu_model()}, {os.cpu_count()} cores shared with other sessions' "
        f"jobs (1-minute load average {seconds.get(('load',), float('nan')):.1f} when the "
        "evaluations started); every process one torch thread (`OMP_NUM_THREADS=1`, "
        "`nice -n 10`), SASRec trainings pinned to one core each (`taskset`). Times are wall "
        "clock under that load.",
        f"- **Data**: {args.dataset} after the EAGER-LLM preprocessing (k-core 5): "
        f"{any_report['n_users']} users, {any_report['n_items']} items; leave-one-out (valid "
        "= second-to-last item, test = last); all users, full ranking over every item. A "
        "history is the user's whole past; models read their own window of it. Training "
        "counts and weights use the training sequences only (also for test).",
        "- **Protocols**: history items kept (the EAGER-LLM evaluation's default), or removed "
        "(`--seen remove`: every earlier item of the user scores -inf; RecBole's full-sort "
        "convention for general models). Ties: the more popular training item, then the "
        "lower index.",
        "- **Tuning**: per baseline and protocol, the grid point with the best validation "
        "NDCG@10 (earlier point on ties); the test split is then scored once. Grids: "
        f"Markov/co-occurrence {len(MARKOV_GRID)} points (last n in 1, 2, 3, 5, 10, 20, 50; "
        "decay 1, 0.8, 0.6; window 1, 3, 10; raw counts or row-normalised); ItemKNN "
        f"{len(ITEMKNN_GRID)} points (neighbours 10, 20, 50, 100, 200, 500, all; shrink 0, "
        "10, 100); SASRec (full-catalogue cross-entropy, 2 blocks, 1 head, batch 128 "
        "rows (disjoint windows unless the point says every-prefix), Adam, <= 100 epochs, "
        "early stopping after 10 epochs without a better "
        f"validation NDCG@10, one seed) one factor at a time around {SASREC_CENTRE} "
        f"({', '.join(str(v) for v in SASREC_VARIANTS[1:])}) at history 50 and 200; the "
        "points trained are listed below (a point not trained in the time box is missing, "
        "not hidden)."
        + (
            ""
            if points
            else " **No SASRec point was trained for this dataset in the time "
            "box: the tables have no SASRec row.**"
        ),
        "- **Wall time** of the evaluations (s): "
        + ", ".join(f"{s}-{p} {seconds.get((s, p), float('nan')):.0f}" for s, p in reports)
        + ".",
        "",
        "## Results",
        "",
    ]
    for seen in PROTOCOLS:
        lines += protocol_section(seen, reports.get(("valid", seen)), reports[("test", seen)])
    lines += [
        "## SASRec grid points trained",
        "",
        "| point | epochs run | stopped by | best epoch keep / remove | valid N@10 keep / remove "
        "| train min |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in points:
        b = p["best"]
        stopped = p.get("stopped") or (
            "epochs" if len(p["history"]) >= p["train"]["epochs"] else "patience"
        )
        stopped = {"epochs": "epoch cap", "time": "time box"}.get(stopped, stopped)
        lines.append(f"| {p['name']} | {len(p['history'])} | {stopped} | {b['keep']['epoch']} / "
                     f"{b['remove']['epoch']} | {b['keep']['ndcg@10']:.4f} / "
                     f"{b['remove']['ndcg@10']:.4f} | {p['seconds'] / 60:.0f} |")  # fmt: skip
    one_user = 1 / reports[("test", "keep")]["n_users"]
    lines += [
        "",
        "## How to read",
        "",
        f"- One user is {one_user:.4f} of Recall@10; a paired 95 % interval that contains 0 "
        "is no detected difference. SASRec rows are one training seed: seed-to-seed spread "
        "is not in the intervals.",
        "- Grid coverage: "
        + (
            "; ".join(
                f"history {n}: {sum(p['point']['max_len'] == n for p in points)} of "
                f"{len(SASREC_VARIANTS)} points"
                for n in sorted({p["point"]["max_len"] for p in points})
            )
            or "no SASRec point"
        )
        + " trained in the time box; a point stopped by the epoch cap was still improving "
        "(its row is a lower bound on what the setting gives).",
        "- Chosen on validation only: the validation columns are the selection's own (so "
        "optimistic); the test columns are the honest estimate.",
        "- The test rows keep per-user ranks in `baselines.json` for paired comparisons with "
        "`eager-llm eval` runs on the same users and protocol (`--seen`).",
        "",
    ]
    page = ROOT / "results" / f"eager_baselines_{tag}.md"
    page.write_text("\n".join(lines))
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--tag", default="ml100k")
    parser.add_argument("--skip-run", action="store_true", help="Only rebuild the page.")
    parser.add_argument(
        "--splits",
        default="valid,test",
        help="'test' alone: the validation numbers come "
        "from the test runs' own tuning (the same numbers).",
    )
    args = parser.parse_args()
    base = ROOT / "runs" / "baselines" / args.tag
    reports, seconds = {}, {}
    timings = base / "timings.json"
    if timings.is_file():
        seconds = {tuple(k.split("-")): v for k, v in json.loads(timings.read_text()).items()}
    if not args.skip_run:
        seconds[("load",)] = os.getloadavg()[0]
    for split in args.splits.split(","):
        for seen in PROTOCOLS:
            out = base / f"{split}-{seen}"
            if not args.skip_run:
                seconds[(split, seen)] = run_cli(args.dataset, split, seen, out, base / "sasrec")
                timings.write_text(json.dumps({"-".join(k): v for k, v in seconds.items()}))
            reports[(split, seen)] = json.loads((out / "baselines.json").read_text())
    print(f"page: {write_page(args, reports, seconds)}")


if __name__ == "__main__":
    main()
