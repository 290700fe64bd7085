"""TIGER on MovieLens-100K: its learning curve and its test numbers against SASRec.

    OMP_NUM_THREADS=1 .venv/bin/eager-llm index --dataset movielens-100k --k 256 \\
        --indexer rq-semantic --out runs/tiger/index-rqsem
    OMP_NUM_THREADS=1 .venv/bin/eager-llm tiger --index runs/tiger/index-rqsem \\
        --output-dir runs/tiger/t5 --epochs 100 --patience 5 --valid-users 500 [--resume]
    .venv/bin/python experiments/eager_tiger.py --run runs/tiger/t5 --index runs/tiger/index-rqsem

writes results/eager_tiger_ml100k.md and its curve. A run still training (no tiger.json yet)
gets its curve from the checkpoint and no test numbers: the test split is read only once the
run has stopped, for the final table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib
import torch

from eager_llm.baselines import most_popular, sasrec_rankings
from eager_llm.evaluate import load_users
from eager_llm.metrics import per_user_ndcg, per_user_recall
from eager_llm.tiger import CHECKPOINT, STATE, tiger_rankings
from model_zoo.hardware import cpu_model
from model_zoo.significance import paired_bootstrap

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BEAMS = 20
KS = (5, 10)
PAGE = Path("results/eager_tiger_ml100k.md")


def read_run(run: Path) -> tuple[dict, bool]:
    """(summary with ``config`` and ``curve``, finished?) of a TIGER run folder."""
    if (run / STATE).exists():
        return json.loads((run / STATE).read_text()), True
    state = torch.load(run / CHECKPOINT, weights_only=True)
    return {"config": state["config"], "curve": state["run"]["curve"]}, False


def paper_size(config: dict) -> str:
    """`` (the TIGER paper's size)`` when the model is it, else nothing."""
    paper = {"layers": 4, "d_model": 128, "heads": 6, "d_kv": 64, "d_ff": 1024}
    return " (the TIGER paper's size)" if all(config[k] == v for k, v in paper.items()) else ""


def plot_curve(curve: list[dict], out: Path) -> None:
    epochs = [p["epoch"] for p in curve]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [p["valid_recall@10"] for p in curve], marker="o", label="Recall@10")
    left.plot(epochs, [p["valid_ndcg@10"] for p in curve], marker="o", label="NDCG@10")
    left.set(xlabel="epoch", title="validation (10 beams)")
    left.legend()
    right.plot(epochs, [p["loss"] for p in curve], marker="o")
    right.set(xlabel="epoch", title="training loss")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def test_rows(run: Path, index: Path, max_history: int) -> tuple[list[dict], str]:
    """Per protocol and method, mean Recall/NDCG@5/10 and the paired differences of TIGER
    against SASRec and most-popular (all test users, 20 beams / the top 20)."""
    users = load_users(index, "test", max_history)
    histories = [list(e.history) for e in users.examples]
    targets = [e.target for e in users.examples]
    rows, differences = [], []
    for seen in ("keep", "remove"):
        exclude = users.seen if seen == "remove" else None
        started = time.perf_counter()
        ranked = {
            "TIGER": tiger_rankings(run, users.item_ids, histories, BEAMS, exclude=exclude),
        }
        seconds = time.perf_counter() - started
        pasts = users.seen  # SASRec reads their last 20 items; remove masks all of them
        ranked["SASRec (the index's, history 20)"] = sasrec_rankings(
            index / "sasrec", pasts, BEAMS, seen=seen
        )
        ranked["most popular"] = most_popular(
            users.train, len(users.item_ids), len(targets), BEAMS, histories=pasts, seen=seen
        )
        scores = {}
        for method, lists in ranked.items():
            scores[method] = {
                f"{name}@{k}": metric(lists, targets, k)
                for k in KS
                for name, metric in (("recall", per_user_recall), ("ndcg", per_user_ndcg))
            }
            row = {"protocol": seen, "method": method}
            row |= {key: float(values.mean()) for key, values in scores[method].items()}
            row["seconds"] = round(seconds, 1) if method == "TIGER" else None
            rows.append(row)
        for other in ("SASRec (the index's, history 20)", "most popular"):
            for metric in ("recall@10", "ndcg@10"):
                mean, low, high = paired_bootstrap(scores["TIGER"][metric], scores[other][metric])
                differences.append(
                    f"| {seen} | TIGER - {other} | {metric} | {mean:+.4f} [{low:+.4f}, "
                    f"{high:+.4f}] |"
                )
    table = [
        "| protocol | comparison | metric | difference [95 % CI] |",
        "| --- | --- | --- | --- |",
    ]
    return rows, "\n".join(table + differences)


def write_page(run: Path, index: Path, page: Path) -> None:
    summary, finished = read_run(run)
    curve, config = summary["curve"], summary["config"]
    picture = page.with_name(page.stem + "_curve.png")
    plot_curve(curve, picture)
    best = max(curve, key=lambda p: p["valid_recall@10"])
    stats = json.loads((index / "index_stats.json").read_text())
    lines = [
        "# TIGER on MovieLens-100K: learning curve and test against SASRec",
        "",
        "```bash",
        "OMP_NUM_THREADS=1 .venv/bin/eager-llm index --dataset movielens-100k --k 256 \\",
        "    --indexer rq-semantic --out runs/tiger/index-rqsem",
        "OMP_NUM_THREADS=1 .venv/bin/eager-llm tiger --index runs/tiger/index-rqsem \\",
        "    --output-dir runs/tiger/t5 --epochs 100 --patience 5 --valid-users 500 [--resume]",
        ".venv/bin/python experiments/eager_tiger.py --run runs/tiger/t5 "
        "--index runs/tiger/index-rqsem",
        "```",
        "",
        f"- **Machine**: {cpu_model()}, one torch thread on a 2-core machine shared with other "
        "jobs (wall times are under that load), no GPU, fp32.",
        f"- **Codes**: `rq-semantic`, residual k-means of the MiniLM text embeddings, K "
        f"{stats['k']} per level, {stats['levels']} levels ({', '.join(stats['level_sources'])}"
        f"); {stats['collision_rate']:.1%} of the items collide on the semantic levels and "
        "are told apart by the collision level, as in TIGER.",
        f"- **Model**: T5 {config['layers']} + {config['layers']} layers, d_model "
        f"{config['d_model']}, {config['heads']} heads of {config['d_kv']}, MLP {config['d_ff']}"
        f", dropout {config['dropout']}{paper_size(config)}, batch {config['batch_size']}, "
        f"lr {config['learning_rate']:g}, warm-up {config['warmup_steps']} steps, histories of "
        f"{config['max_history']} items.",
        f"- **Training**: every next-item example of the training sequences per epoch; "
        f"validation Recall@10 on {summary.get('valid_users', 'the --valid-users')} fixed "
        "users after each epoch; stops after "
        f"{config['patience']} epochs without a better one (at most {config['epochs']}); the "
        "best epoch's weights are kept. Checkpointed every epoch; resumed runs train exactly "
        "as uninterrupted ones.",
        "",
        "## Learning curve",
        "",
        f"![TIGER learning curve]({picture.name})",
        "",
        "| epoch | samples | loss | valid Recall@10 | valid NDCG@10 | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
        *[
            f"| {p['epoch']} | {p['samples']} | {p['loss']} | {p['valid_recall@10']:.4f} | "
            f"{p['valid_ndcg@10']:.4f} | {p['seconds']} |"
            for p in curve
        ],
        "",
        f"Best so far: epoch {best['epoch']}, validation Recall@10 {best['valid_recall@10']:.4f}.",
        "",
        "## Test split",
        "",
    ]
    if not finished:
        lines += [
            f"**Not evaluated: the run is still training** ({len(curve)} epochs done; resume "
            "it with `--resume`). The test split is read once the run stops.",
        ]
    else:
        rows, differences = test_rows(run, index, config["max_history"])
        lines += [
            f"All 943 test users, full ranking over {stats['num_items']} items, {BEAMS} beams "
            "(TIGER) or the top 20; `keep`: history items may fill a slot, `remove`: the "
            "user's whole past is removed from every list (RecBole's full-sort protocol). The "
            "tuned baselines on the same split: [eager_baselines_ml100k.md]"
            "(eager_baselines_ml100k.md).",
            "",
            "| protocol | method | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | seconds |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *[
                f"| {r['protocol']} | {r['method']} | {r['recall@5']:.4f} | "
                f"{r['recall@10']:.4f} | {r['ndcg@5']:.4f} | {r['ndcg@10']:.4f} | "
                f"{r['seconds'] if r['seconds'] is not None else ''} |"
                for r in rows
            ],
            "",
            "Paired bootstrap over users (10,000 resamples; 8 comparisons, read each at "
            "alpha 0.05 / 8 for a family-wise claim):",
            "",
            differences,
        ]
    page.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--page", type=Path, default=PAGE)
    args = parser.parse_args()
    write_page(args.run, args.index, args.page)
    print(f"page: {args.page}")


if __name__ == "__main__":
    main()
