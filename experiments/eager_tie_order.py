"""How much the order of equal timestamps moves the leave-one-out numbers, and its page.

    OMP_NUM_THREADS=1 nice -n 5 taskset -c 0 .venv/bin/python experiments/eager_tie_order.py

On ``--dataset`` (MovieLens-100K by default, the offline copy ``eager_llm.data`` reads):

1. counts the users whose split depends on how a user's events with equal timestamps are
   ordered (``tie_order`` of :func:`eager_llm.data.leave_one_out`: ``file`` row order, the
   default, or ``reversed``), before and after the EAGER-LLM preprocessing;
2. runs the cheap baselines (most popular, Markov/co-occurrence, ItemKNN) of
   ``eager-llm baselines`` (:func:`eager_llm.baselines.tuning.evaluate_baselines`, no
   SASRec) on the test split under both tie orders and both seen protocols (keep/remove),
   each re-tuned on its own order's validation split, and also scores each baseline at the
   file order's chosen point on the reversed split (the targets' effect alone);
3. writes ``results/eager_tie_order.md`` (and every user's ranks in
   ``runs/eager_tie_order/ranks.json``): Recall@10 and NDCG@10 under each order and the
   paired bootstrap of reversed - file over the users.

SASRec and EAGER-LLM are not retrained here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from eager_llm.baselines.itemknn import ItemKNNConfig, item_similarity, itemknn_scores
from eager_llm.baselines.markov import MarkovConfig, markov_scores, transition_counts
from eager_llm.baselines.popular import popularity, popularity_scores
from eager_llm.baselines.ranking import target_ranks
from eager_llm.baselines.tuning import Users, evaluate_baselines, load_split, params_text
from eager_llm.data import Interactions, leave_one_out, load_dataset, load_raw
from eager_llm.metrics import per_user_from_ranks
from model_zoo.hardware import cpu_model
from model_zoo.significance import paired_bootstrap

ROOT = Path(__file__).parents[1]
ORDERS = ("file", "reversed")
PROTOCOLS = {"keep": "history items kept", "remove": "history items removed (whole past)"}
METRICS = ("recall@10", "ndcg@10")
NAMES = {"recall@10": "R@10", "ndcg@10": "N@10"}


def tail_ties(interactions: Interactions) -> dict[str, int]:
    """Users whose last two events share a time, whose last three hold any equal pair, and
    whose last three all share one time."""
    order = interactions.time_order()
    times = interactions.timestamps[order]
    ends = np.cumsum(np.bincount(interactions.users, minlength=interactions.n_users))
    last, second, third = times[ends - 1], times[ends - 2], times[ends - 3]
    return {
        "users": interactions.n_users,
        "interactions": len(interactions),
        "last_two": int((last == second).sum()),
        "any_in_last_three": int(((last == second) | (second == third)).sum()),
        "last_three": int(((last == second) & (second == third)).sum()),
    }


def split_changes(interactions: Interactions) -> dict[str, int]:
    """Users whose validation target, test target, training sequence or training item set
    differs between the two tie orders."""
    file, reversed_ = (leave_one_out(interactions, tie_order=order) for order in ORDERS)
    valid = [a.target != b.target for a, b in zip(file.valid, reversed_.valid, strict=True)]
    test = [a.target != b.target for a, b in zip(file.test, reversed_.test, strict=True)]
    train = [not np.array_equal(a, b) for a, b in zip(file.train, reversed_.train, strict=True)]
    items = [set(a.tolist()) != set(b.tolist()) for a, b in zip(file.train, reversed_.train,
                                                                 strict=True)]  # fmt: skip
    return {
        "valid_target": sum(valid),
        "test_target": sum(test),
        "either_target": sum(v or t for v, t in zip(valid, test, strict=True)),
        "train_order": sum(train),
        "train_items": sum(items),
    }


def fixed_ranks(method: str, params: dict, users: Users, seen: str) -> np.ndarray:
    """Test ranks of ``method`` at ``params`` (counts from ``users``' own training
    sequences), as :func:`evaluate_baselines` computes them."""
    train, n_items = users.loo.train, users.n_items
    if method == "most popular":
        scores = popularity_scores(train, n_items, len(users.targets))
    elif method.startswith("Markov"):
        config = MarkovConfig(**params)
        scores = markov_scores(transition_counts(train, n_items, config.window),
                               users.histories, config)  # fmt: skip
    elif method == "ItemKNN":
        similarity = item_similarity(train, n_items, ItemKNNConfig(**params))
        scores = itemknn_scores(similarity, users.histories)
    else:
        raise ValueError(f"no fixed-point scorer for {method!r}")
    tie = popularity(train, n_items)
    return target_ranks(scores, users.targets, users.histories, seen, tie)


def per_user(ranks) -> dict[str, np.ndarray]:
    ranks = np.array([np.inf if r < 0 else r for r in ranks], dtype=np.float64)
    recall, ndcg = per_user_from_ranks(ranks, 10)
    return {"recall@10": recall, "ndcg@10": ndcg}


def difference(a: dict, b: dict, metric: str, resamples: int, kept: list) -> str:
    """``a - b`` of ``metric`` with its paired interval, appended to ``kept`` and as text."""
    mean, low, high = paired_bootstrap(a[metric], b[metric], resamples=resamples)
    kept.append((metric, mean, low, high))
    return f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"


def summary(kept: list, metric: str) -> tuple[float, float, int, int]:
    """Largest |difference|, largest |interval end|, intervals excluding 0, intervals."""
    rows = [row for row in kept if row[0] == metric]
    return (max(abs(mean) for _, mean, _, _ in rows),
            max(max(abs(low), abs(high)) for _, _, low, high in rows),
            sum(low > 0 or high < 0 for _, _, low, high in rows), len(rows))  # fmt: skip


def run(args) -> dict:
    """Counts, then every baseline x protocol x order; returns what the page needs."""
    raw, _ = load_raw(args.dataset)
    interactions, _ = load_dataset(args.dataset)
    found: dict = {
        "raw": tail_ties(raw),
        "preprocessed": tail_ties(interactions),
        "changes": split_changes(interactions),
        "runs": {},
        "fixed": {},
        "seconds": {},
    }
    tests = {order: load_split(args.dataset, "test", tie_order=order) for order in ORDERS}
    with tempfile.TemporaryDirectory() as models:  # no SASRec: the folder stays empty
        for seen in PROTOCOLS:
            for order in ORDERS:
                started = time.perf_counter()
                report = evaluate_baselines(
                    args.dataset, "test", seen, models=Path(models), sasrec_lengths=(),
                    train_missing=False, tie_order=order, log=lambda line: None,
                )  # fmt: skip
                found["runs"][(seen, order)] = report["results"]
                found["seconds"][(seen, order)] = time.perf_counter() - started
                print(f"{seen} {order}: {time.perf_counter() - started:.0f} s", flush=True)
            for row in found["runs"][(seen, "file")]:
                again = fixed_ranks(row["method"], row["params"], tests["file"], seen)
                assert again.tolist() == row["ranks"], row["method"]  # the same scorer
                ranks = fixed_ranks(row["method"], row["params"], tests["reversed"], seen)
                found["fixed"][(seen, row["method"])] = ranks.tolist()
    found["moved"] = np.array(
        [a != b for a, b in zip(tests["file"].targets, tests["reversed"].targets, strict=True)]
    )
    found["n_items"] = tests["file"].n_items
    return found


def write_page(args, found: dict, wall: float, load: float) -> Path:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False, cwd=ROOT).stdout.strip()  # fmt: skip
    raw, pre, changes = found["raw"], found["preprocessed"], found["changes"]
    n, moved = pre["users"], found["moved"]
    lines = [
        f"# Tie order of equal timestamps: how much it moves the {args.dataset} split",
        "",
        "```bash",
        "OMP_NUM_THREADS=1 nice -n 5 taskset -c 0 .venv/bin/python experiments/eager_tie_order.py"
        + ("" if args.dataset == "movielens-100k" else f" --dataset {args.dataset}"),
        "```",
        "",
        f"(Written by `experiments/eager_tie_order.py` at commit `{commit}`; every user's "
        "ranks in `runs/eager_tie_order/ranks.json`.)",
        "",
        f"- **Machine**: {cpu_model()}, {os.cpu_count()} cores shared with other sessions' "
        f"jobs (1-minute load average {load:.1f} at the start); one core (`taskset -c 0`), "
        f"{torch.get_num_threads()} torch thread (`OMP_NUM_THREADS=1`), `nice -n 5`. Wall "
        f"time {wall / 60:.1f} min for the counts and the runs (per baseline run: "
        + ", ".join(f"{s}/{o} {t:.0f} s" for (s, o), t in found["seconds"].items())
        + ").",
        f"- **Data**: {args.dataset} after the EAGER-LLM preprocessing (drop items without "
        f"text, repeats, 5-core): {n} users, {found['n_items']} items; leave-one-out "
        "(valid = second-to-last event, test = last), full ranking over every item.",
        "- **Tie rule** (`tie_order`, [docs](../docs/eager_llm.md#data-eager-llm-data-stats)):"
        " a user's events are ordered by time, and events at the same time by file row "
        "(`file`, the default: the earlier row first; every other page uses it) or by its "
        "reverse (`reversed`: the later row first). Nothing else moves.",
        "- **Baselines**: most popular, Markov/co-occurrence and ItemKNN of `eager-llm "
        "baselines` with their grids ([eager_baselines_ml100k.md](eager_baselines_ml100k.md))"
        ", **re-tuned on each order's own validation split** (validation NDCG@10, same "
        "protocol), then scored once on that order's test split; the second table scores "
        "the file order's chosen point on the reversed split (no re-selection: only the "
        "split changes). "
        "Counts and similarities from each order's training sequences.",
        "- **Intervals**: paired bootstrap (10,000 resamples, seed 0) over the same "
        f"{n} users of reversed minus file. A user's two scores are on two different test "
        f"targets where the order moves the target ({int(moved.sum())} users) and on the "
        f"same target elsewhere ({n - int(moved.sum())} users, whose difference is 0 unless "
        "the re-tuned point or the training counts changed); the interval is over users, "
        "not over possible tie orders.",
        "",
        "## Users whose split depends on the tie order",
        "",
        "| users | raw data | after preprocessing |",
        "| --- | --- | --- |",
        f"| all | {raw['users']} | {n} |",
    ]
    for key, text in (("last_two", "last two events at the same time"),
                      ("any_in_last_three", "any tie among the last three events"),
                      ("last_three", "last three events at the same time")):  # fmt: skip
        lines.append(f"| {text} | {raw[key]} ({raw[key] / raw['users']:.0%}) | {pre[key]} "
                     f"({pre[key] / n:.0%}) |")  # fmt: skip
    lines += [
        "",
        f"After preprocessing, `reversed` changes the validation target of "
        f"{changes['valid_target']} users, the test target of {changes['test_target']} and "
        f"either of {changes['either_target']} ({changes['either_target'] / n:.0%}); the "
        f"training sequence of {changes['train_order']} users is reordered, and "
        f"{changes['train_items']} users' training sequences hold another item (a tie "
        "spanning the third-to-last event). The raw count is the one the issue quoted; "
        f"preprocessing removes {raw['interactions'] - pre['interactions']} events, which "
        "changes it by one.",
        "",
        "## Test numbers under both orders (each re-tuned on its own validation split)",
        "",
    ]
    retuned, fixed, changed = [], [], 0
    for seen, protocol in PROTOCOLS.items():
        file, reversed_ = found["runs"][(seen, "file")], found["runs"][(seen, "reversed")]
        changed += sum(a["params"] != b["params"] for a, b in zip(file, reversed_, strict=True))
        lines += [
            f"### {protocol.capitalize()}",
            "",
            "| method | chosen (file) | chosen (reversed) | R@10 file | R@10 reversed | "
            "ΔR@10 [95 % CI] | N@10 file | N@10 reversed | ΔN@10 [95 % CI] |",
            "| --- " * 9 + "|",
        ]
        for a, b in zip(file, reversed_, strict=True):
            ua, ub = per_user(a["ranks"]), per_user(b["ranks"])
            same = "same" if a["params"] == b["params"] else params_text(b["params"])
            cells = [
                f"{a[m]:.4f} | {b[m]:.4f} | {difference(ub, ua, m, args.resamples, retuned)}"
                for m in METRICS
            ]
            lines.append(f"| {a['method']} | {params_text(a['params'])} | {same} | "
                         f"{cells[0]} | {cells[1]} |")  # fmt: skip
        lines.append("")
    lines += [
        "## At the file order's chosen point, scored on the reversed split",
        "",
        "| protocol | method | R@10 file | R@10 reversed | ΔR@10 [95 % CI] | N@10 file | "
        "N@10 reversed | ΔN@10 [95 % CI] | Δ over the moved users R@10 / N@10 |",
        "| --- " * 9 + "|",
    ]
    for seen in PROTOCOLS:
        for row in found["runs"][(seen, "file")]:
            ua, ub = per_user(row["ranks"]), per_user(found["fixed"][(seen, row["method"])])
            cells = [
                f"{ua[m].mean():.4f} | {ub[m].mean():.4f} | "
                f"{difference(ub, ua, m, args.resamples, fixed)}"
                for m in METRICS
            ]
            on_moved = " / ".join(f"{(ub[m] - ua[m])[moved].mean():+.4f}" for m in METRICS)
            lines.append(f"| {seen} | {row['method']} | {cells[0]} | {cells[1]} | {on_moved} |")
    r_mean, r_end, r_out, r_all = summary(retuned, "recall@10")
    n_mean, n_end, n_out, n_all = summary(retuned, "ndcg@10")
    fr_mean, fr_end, _, _ = summary(fixed, "recall@10")
    lines += [
        "",
        "## How to read",
        "",
        f"- One user is {1 / n:.4f} of Recall@10. A paired interval that contains 0 is no "
        "detected effect of the tie order. The intervals are over users at one pair of "
        "orders: how far this data lets the numbers move, not how a third order would fall.",
        f"- **Re-tuned (what `eager-llm baselines --tie-order reversed` reports)**: the largest "
        f"change is {r_mean:.4f} in Recall@10 and {n_mean:.4f} in NDCG@10, the interval ends "
        f"reach ±{r_end:.3f} and ±{n_end:.3f}; intervals excluding 0: {r_out + n_out} of "
        f"{r_all + n_all} (about one in twenty would by chance alone). The validation split moves "
        f"too ({changes['valid_target']} users' validation targets), and "
        f"{changed} of the {2 * len(found['runs'][('keep', 'file')]) - 2} tuned baselines "
        "(Markov and ItemKNN, both protocols) choose another grid point under the second order: "
        "the selection moves with the order too.",
        f"- **At the same point**: the largest change in Recall@10 is {fr_mean:.4f} (interval "
        f"ends within ±{fr_end:.3f}). Popularity and ItemKNN read item sets, so their change "
        "comes from the moved targets and histories (and the training items that move "
        "across the split); Markov's transition counts also follow the order inside the training "
        "sequences, so all its users can change. The last column is the change averaged "
        f"over the {int(moved.sum())} users whose test target moved.",
        "- **SASRec and EAGER-LLM are not retrained here** (too costly on this machine now). "
        "From the baselines the expected effect of the tie order on a model's test "
        f"Recall@10 is of the order of {max(r_mean, fr_mean):.3f} (largest point change), "
        f"with intervals up to ±{max(r_end, fr_end):.3f}: the size of some gaps between "
        "models on [eager_baselines_ml100k.md](eager_baselines_ml100k.md), so a difference "
        "of that size between two pipelines that order ties differently (RecBole's "
        "own split, for one) is not evidence about the models. Comparisons between models on "
        "the same split and order are paired and share the targets; a sequential model's "
        "own change needs its rerun on the reversed order (`--tie-order reversed`).",
        "",
    ]
    page = ROOT / "results" / "eager_tie_order.md"
    page.write_text("\n".join(lines))
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args()
    load, started = os.getloadavg()[0], time.perf_counter()
    found = run(args)
    page = write_page(args, found, time.perf_counter() - started, load)
    out = ROOT / "runs" / "eager_tie_order"
    out.mkdir(parents=True, exist_ok=True)
    runs = {f"{s}/{o}": [asdict_row(r) for r in rows] for (s, o), rows in found["runs"].items()}
    fixed = {f"{s}/{m}": ranks for (s, m), ranks in found["fixed"].items()}
    (out / "ranks.json").write_text(json.dumps({"runs": runs, "fixed_on_reversed": fixed}))
    print(f"page: {page}")


def asdict_row(row: dict) -> dict:
    return {key: row[key] for key in ("method", "params", "recall@10", "ndcg@10", "ranks")}


if __name__ == "__main__":
    main()
