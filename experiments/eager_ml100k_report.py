"""Write results/eager_ml100k.md (and its plot) from the run folders of experiments/eager_ml100k.sh.

Reads, under the run root R: ``timings.txt`` and ``dense/timings.txt`` (wall seconds per
command), the test evaluations in :data:`EVALUATIONS` (per-user ranks of every method on the
same users, merged into one table; a baseline evaluated twice is kept once), the validation
curves in each
training run's ``metrics.jsonl`` and ``validation_baselines.json``, TIGER's ``tiger.json``, the
index folders' ``index_stats.json``; and ``experiments/notes/eager_ml100k.md``, the written
reading of the numbers, which is appended as it is. Nothing here computes a result that the
run folders do not hold.

    .venv/bin/python experiments/eager_ml100k_report.py [R] [--out results/eager_ml100k.md]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from pathlib import Path

from eager_llm.evaluate import difference_table, markdown_table, protocol_line
from model_zoo.training_guards import read_records

NOTES = Path(__file__).parent / "notes" / "eager_ml100k.md"
TRAINING_RUNS = {  # label -> run folder under R (those present are reported)
    "EAGER-LLM stage 1 (K auto)": "auto/stage1",
    "EAGER-LLM annealing (K auto)": "auto/anneal",
    "EAGER-LLM stage 1 (K 256)": "k256/stage1",
    "EAGER-LLM annealing (K 256)": "k256/anneal",
    "every-item labels, DKI order: stage 1": "dense/dki/stage1",
    "every-item labels, DKI order: annealing": "dense/dki/anneal",
    "every-item labels, behaviour first: stage 1": "dense/bf/stage1",
    "every-item labels, behaviour first: annealing": "dense/bf/anneal",
    "behaviour first, embedding init: stage 1": "dense/bf-emb/stage1",
    "behaviour first, embedding init: annealing": "dense/bf-emb/anneal",
    "behaviour-first RQ codes, embedding init: stage 1": "dense/rqbf-emb/stage1",
    "behaviour-first RQ codes, embedding init: annealing": "dense/rqbf-emb/anneal",
    "RQ recipe w/o GCT: stage 1": "dense/rqbf-nogct/stage1",  # experiments/eager_ml100k_ablate.sh
    "RQ recipe, behaviour codes only: stage 1": "dense/rqbehav/stage1",
    "RQ recipe, K 256: stage 1": "dense/rqbf-k256/stage1",
}
# eval.json under R -> new names of its methods (experiments/eager_ml100k_dense.sh's runs)
EVALUATIONS = {
    "auto/anneal/eval.json": {},
    "dense/dki/anneal/eval.json": {
        "EAGER-LLM (anneal)": "EAGER-LLM, every-item labels, DKI order (anneal)",
        "w/o annealing (stage 1)": "every-item labels, DKI order, w/o annealing (stage 1)",
    },
    "dense/bf/anneal/eval.json": {
        "EAGER-LLM (anneal)": "EAGER-LLM, every-item labels, behaviour first (anneal)",
        "w/o annealing (stage 1)": "every-item labels, behaviour first, w/o annealing (stage 1)",
    },
    "dense/bf-emb/anneal/eval.json": {  # experiments/eager_ml100k_init.sh
        "EAGER-LLM (anneal)": "EAGER-LLM, behaviour first, embedding init (anneal)",
        "w/o annealing (stage 1)": "behaviour first, embedding init, w/o annealing (stage 1)",
    },
    "dense/rqbf-emb/anneal/eval.json": {
        "EAGER-LLM (anneal)": "EAGER-LLM, behaviour-first RQ codes, embedding init (anneal)",
        "w/o annealing (stage 1)": "behaviour-first RQ codes, embedding init, w/o annealing "
        "(stage 1)",
    },
    # the same stage-1 runs tested alone (experiments/eager_ml100k_init.sh with STEPS2 0);
    # skipped as already seen where the annealing run's evaluation above holds them
    "dense/bf-emb/stage1/eval.json": {
        "EAGER-LLM (stage1)": "behaviour first, embedding init, w/o annealing (stage 1)",
    },
    "dense/rqbf-emb/stage1/eval.json": {
        "EAGER-LLM (stage1)": "behaviour-first RQ codes, embedding init, w/o annealing (stage 1)",
    },
    # ablations of the RQ recipe's stage 1 (experiments/eager_ml100k_ablate.sh)
    "dense/rqbf-nogct/stage1/eval.json": {"EAGER-LLM (stage1)": "RQ recipe w/o GCT (stage 1)"},
    "dense/rqbehav/stage1/eval.json": {
        "EAGER-LLM (stage1)": "RQ recipe, behaviour codes only (stage 1)"
    },
    "dense/rqbf-k256/stage1/eval.json": {"EAGER-LLM (stage1)": "RQ recipe, K 256 (stage 1)"},
}
TIGER = "TIGER (T5 from scratch)"
STAGE1 = {  # variant -> its stage-1 method name in the merged table
    "DKI order": "every-item labels, DKI order, w/o annealing (stage 1)",
    "behaviour first": "every-item labels, behaviour first, w/o annealing (stage 1)",
    "embedding init": "behaviour first, embedding init, w/o annealing (stage 1)",
    "RQ codes": "behaviour-first RQ codes, embedding init, w/o annealing (stage 1)",
}
ABLATIONS = [  # stage-1 ablations of the RQ recipe, each against STAGE1["RQ codes"]
    "RQ recipe w/o GCT (stage 1)",
    "RQ recipe, behaviour codes only (stage 1)",
    "RQ recipe, K 256 (stage 1)",
]
ANNEALED = {
    "DKI order": "EAGER-LLM, every-item labels, DKI order (anneal)",
    "behaviour first": "EAGER-LLM, every-item labels, behaviour first (anneal)",
    "embedding init": "EAGER-LLM, behaviour first, embedding init (anneal)",
    "RQ codes": "EAGER-LLM, behaviour-first RQ codes, embedding init (anneal)",
}
PAIRS = [  # (method, reference): each change against the run it changes, and TIGER
    (STAGE1["behaviour first"], STAGE1["DKI order"]),  # the index order
    (STAGE1["embedding init"], STAGE1["behaviour first"]),  # the token init
    (STAGE1["RQ codes"], STAGE1["embedding init"]),  # residual vs hierarchical codes
    (STAGE1["RQ codes"], STAGE1["behaviour first"]),  # both, against round 2's best
    *[(ANNEALED[v], STAGE1[v]) for v in STAGE1],  # annealing
    *[(ablation, STAGE1["RQ codes"]) for ablation in ABLATIONS],
    *[(STAGE1[v], TIGER) for v in STAGE1],
    *[(ablation, TIGER) for ablation in ABLATIONS],
    *[(ANNEALED[v], TIGER) for v in ANNEALED],
]
INDICES = {
    "K auto (DKI)": "index-auto",
    "K 256 (DKI)": "index-256",
    "TIGER (semantic, K auto)": "index-semantic-auto",
    "K auto, behaviour first (dki-bf)": "dense/index-bf",
    "K auto, behaviour-first residual (rq-bf)": "dense/index-rqbf",
    "K auto, behaviour residual only (rq-behav)": "dense/index-rqbehav",
    "K 256, behaviour-first residual (rq-bf)": "dense/index-rqbf-k256",
}


def validation_curve(folder: Path) -> list[dict]:
    """The validation records of a training run: step, samples, eval_recall@10, eval_ndcg@10;
    one per step (a resumed run validates its checkpoint's step again: the last is kept)."""
    records = read_records(folder / "metrics.jsonl")
    by_step = {r["step"]: r for r in records if "eval_recall@10" in r}
    return [by_step[step] for step in sorted(by_step)]


def late_losses(folder: Path, records: int = 5) -> dict[str, tuple[int, int, float]]:
    """Per loss part: (first step, last step, mean) over its last ``records`` logged values
    (each the mean of a logging interval; GCT parts only over batches with seqrec rows)."""
    found = {}
    logged = [r for r in read_records(folder / "metrics.jsonl") if "loss" in r]
    for key in ("lm_loss", "gct_sem", "gct_beh"):
        values = [(r["step"], r[key]) for r in logged if r.get(key) is not None][-records:]
        if values:
            found[key] = (values[0][0], values[-1][0], sum(v for _, v in values) / len(values))
    return found


def timings(root: Path) -> list[str]:
    paths = (root / "timings.txt", root / "dense" / "timings.txt")
    return [line for path in paths if path.is_file() for line in path.read_text().splitlines()]


def test_results(root: Path) -> tuple[dict, list[dict]]:
    """(the first evaluation's settings, every method's result): the evaluations of
    :data:`EVALUATIONS` that exist, methods renamed, a method already seen skipped, and the
    beam count added to a name where it differs from the first evaluation's."""
    first, results = None, []
    for name, renames in EVALUATIONS.items():
        path = root / name
        if not path.is_file():
            continue
        report = json.loads(path.read_text())
        if first is None:
            first = report
        elif (report["split"], report["n_users"]) != (first["split"], first["n_users"]):
            raise SystemExit(f"error: {path}: not the users of the first evaluation")
        seen = {r["method"] for r in results}
        for result in report["results"]:
            method = renames.get(result["method"], result["method"])
            beams = f"{method} ({report['beams']} beams)"
            if method in seen or beams in seen:  # a baseline, or a run tested twice
                continue
            results.append(
                {**result, "method": beams if report["beams"] != first["beams"] else method}
            )
    return first, results


def present_pairs(results: list[dict]) -> list[tuple[str, str]]:
    """:data:`PAIRS` by the names the merged table gives them (a beam count may be added)."""
    names = [r["method"] for r in results]

    def find(name: str) -> str | None:
        return next((n for n in names if n == name or n.startswith(f"{name} (") and
                     n.endswith(" beams)") and n[len(name) + 2:-7].isdigit()), None)  # fmt: skip

    found = [(find(a), find(b)) for a, b in PAIRS]
    return [(a, b) for a, b in found if a and b]


def curve_rows(root: Path) -> list[str]:
    lines = [
        "| run | step | samples seen | valid Recall@10 | valid NDCG@10 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, name in TRAINING_RUNS.items():
        folder = root / name
        if (folder / "metrics.jsonl").is_file():
            for r in validation_curve(folder):
                lines.append(
                    f"| {label} | {r['step']} | {r['samples']} | {r['eval_recall@10']:.3f} | "
                    f"{r['eval_ndcg@10']:.3f} |"
                )
    tiger = root / "tiger-t5" / "tiger.json"
    if tiger.is_file():
        for point in json.loads(tiger.read_text())["curve"]:
            lines.append(
                f"| TIGER (T5) | epoch {point['epoch']} | {point['samples']} | "
                f"{point['valid_recall@10']:.3f} | {point['valid_ndcg@10']:.3f} |"
            )
    return lines


def plot_curves(root: Path, out: Path) -> None:
    """Validation Recall@10 vs training samples for every run, baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    baselines = None
    for label, name in TRAINING_RUNS.items():
        folder = root / name
        if not (folder / "metrics.jsonl").is_file():
            continue
        points = validation_curve(folder)
        offset = 0
        if name.endswith("anneal"):  # continues after its stage 1
            stage1 = validation_curve(folder.parent / "stage1")
            offset = stage1[-1]["samples"] if stage1 else 0
        axis.plot([offset + p["samples"] for p in points], [p["eval_recall@10"] for p in points],
                  marker="o", label=label)  # fmt: skip
        if baselines is None and (folder / "validation_baselines.json").is_file():
            baselines = json.loads((folder / "validation_baselines.json").read_text())
    tiger = root / "tiger-t5" / "tiger.json"
    if tiger.is_file():
        curve = json.loads(tiger.read_text())["curve"]
        axis.plot([p["samples"] for p in curve], [p["valid_recall@10"] for p in curve],
                  marker="s", label="TIGER (T5), per epoch")  # fmt: skip
        axis.set_xscale("symlog", linthresh=1000)
    if baselines:
        for (name, metrics), style in zip(
            [(k, v) for k, v in baselines.items() if isinstance(v, dict)], ("--", ":"), strict=False
        ):
            axis.axhline(metrics["recall@10"], color="grey", linestyle=style, label=name)
    axis.set(xlabel="training samples seen", ylabel="validation Recall@10 (200 users)",
             title="ML-100K: ranking validation during training")  # fmt: skip
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def index_rows(root: Path) -> list[str]:
    lines = [
        "| index | K | levels (sources) | items per first-level code | decided after each level |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, name in INDICES.items():
        path = root / name / "index_stats.json"
        if not path.is_file():
            continue
        stats = json.loads(path.read_text())
        levels = stats["level_statistics"]
        decided = " / ".join(f"{level['decided']:.3f}" for level in levels)
        lines.append(
            f"| {label} | {stats['k']} | {stats['levels']} ({' '.join(stats['level_sources'])}) | "
            f"{levels[0]['items_per_prefix_mean']} | {decided} |"
        )
    return lines


def gct_lines(root: Path, n_items: int) -> list[str]:
    chance = math.log(n_items)
    lines = []
    for label, name in TRAINING_RUNS.items():
        folder = root / name
        if (folder / "metrics.jsonl").is_file() and name.endswith("stage1"):
            losses = late_losses(folder)
            if "gct_sem" in losses:
                first, last, sem = losses["gct_sem"]
                beh = losses["gct_beh"][2]
                lines.append(
                    f"- {label}: GCT losses, mean of the logged values of steps {first}-{last}: "
                    f"semantic {sem:.2f}, behaviour {beh:.2f}; chance (uniform over the "
                    f"{n_items} items, every other item a negative) ln {n_items} = {chance:.2f}."
                )
    return lines


def render(root: Path, plot_name: str) -> str:
    report, results = test_results(root)
    lines = [
        "# EAGER-LLM on MovieLens-100K at a CPU budget",
        "",
        "```bash",
        "experiments/eager_ml100k.sh runs/ml100k   # trains, evaluates, runs the last line",
        "experiments/eager_ml100k_dense.sh runs/ml100k/dense  # every-item labels, two orders",
        "experiments/eager_ml100k_init.sh runs/ml100k/dense   # embedding init, RQ codes",
        "experiments/eager_ml100k_ablate.sh runs/ml100k/dense # w/o GCT, one source, K 256",
        "experiments/eager_ml100k_report.py runs/ml100k",
        "```",
        "",
        "(This page is written by `experiments/eager_ml100k_report.py`; the reading at the end is",
        "`experiments/notes/eager_ml100k.md`.)",
        "",
        f"- **Machine**: {platform.machine()} CPU, 2 cores shared by two one-thread jobs (and by "
        "other work of the session), no GPU; fp32 (the CPU has no native bf16, so `bf16: true` "
        "is turned off with a note).",
        f"- **Test**: {report['split']} split, all {report['n_users']} users, full ranking over "
        f"{report['n_items']} items, {protocol_line(report)}, {report['beams']} beams unless "
        f"a name says otherwise, torch threads {report['threads']}.",
        "- **Wall times** (`timings.txt`, seconds per command):",
        "",
        *[f"  - {line}" for line in timings(root)],
        "",
        "## Test split",
        "",
        markdown_table(results),
        "",
        "Differences on the same users, paired bootstrap 95 % intervals (10,000 resamples):",
        "each method against the baselines, then each change against the run it changes",
        "(index order, token init, codes, annealing) and the EAGER-LLM runs against TIGER.",
        "",
        difference_table(results, pairs=present_pairs(results)),
        "",
        "## Validation during training",
        "",
        f"![validation curves]({plot_name})",
        "",
        *curve_rows(root),
        "",
        "## Index layouts",
        "",
        *index_rows(root),
        "",
        "## GCT",
        "",
        *gct_lines(root, report["n_items"]),
        "",
    ]
    if NOTES.is_file():
        lines += [NOTES.read_text().rstrip(), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="runs/ml100k", type=Path)
    parser.add_argument("--out", default=Path("results/eager_ml100k.md"), type=Path)
    args = parser.parse_args()
    plot = args.out.with_name(args.out.stem + "_curves.png")
    plot_curves(args.root, plot)
    args.out.write_text(render(args.root, plot.name))
    print(f"wrote {args.out} and {plot}")


if __name__ == "__main__":
    main()
