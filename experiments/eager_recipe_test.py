"""The shipped EAGER-LLM recipe on the ML-100K test split against the tuned cheap baselines,
under both seen protocols: results/eager_recipe_test.md.

    # the base run of the recipe search (runs/eager_recipe/run.sh), evaluated twice:
    .venv/bin/eager-llm eval --run runs/eager_recipe/anneal --beams 20                # eval.json
    .venv/bin/eager-llm eval --run runs/eager_recipe/anneal --beams 20 --seen remove
    # the baselines' per-user test ranks: experiments/eager_baselines.py (runs/baselines/ml100k)
    .venv/bin/python experiments/eager_recipe_test.py

Every method is paired user by user on the same 943 test users: EAGER-LLM's ranks come from
its evaluation reports (both stages; stage 1 alone, the sibling the evaluation ranks too),
the tuned Markov co-occurrence, SASRec-200, ItemKNN and most-popular ranks from the
baselines' reports. That the two sources list the same users in the same order is checked,
not assumed: most-popular, computed by both, must hit the same users. Differences carry a
paired bootstrap 95 % interval (10,000 resamples of users) and McNemar's exact p on the
Recall@10 hits; Holm's rule over the family of the table's comparisons (every row's test
against the strongest baseline, both protocols).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from eager_llm.metrics import per_user_from_ranks
from model_zoo.hardware import cpu_model
from model_zoo.significance import detectable, holm, mcnemar, paired_bootstrap

PROTOCOLS = {"keep": ("eval.json", "history items kept"),
             "remove": ("eval-remove.json", "history items removed")}  # fmt: skip
LLM_ROWS = {"EAGER-LLM (anneal)": "EAGER-LLM, both stages",
            "w/o annealing (stage 1)": "EAGER-LLM, stage 1 alone"}  # fmt: skip
CHEAP_ROWS = ("Markov (co-occurrence)", "ItemKNN", "most popular")  # issue 35's bar
BASELINE_ROWS = ("Markov (co-occurrence)", "SASRec-200 (CE)", "SASRec-50 (CE)", "ItemKNN",
                 "most popular")  # fmt: skip


def ranks_of(row: dict) -> np.ndarray:
    """0-based ranks, ``inf`` where the target is outside the list (stored as -1)."""
    ranks = np.asarray(row["ranks"], dtype=np.float64)
    return np.where(ranks < 0, np.inf, ranks)


def load_protocol(run: Path, baselines: Path, seen: str) -> tuple[dict, dict, dict]:
    """Method -> ranks (943,) of both sources, the evaluation report and the baselines report;
    raises when the two sources' users differ (most-popular's hits disagree)."""
    file, _ = PROTOCOLS[seen]
    report = json.loads((run / "anneal" / file).read_text())
    tuned = json.loads((baselines / f"test-{seen}" / "baselines.json").read_text())
    if report.get("seen", "keep") != seen or tuned["seen"] != seen:
        raise ValueError(f"{file} or test-{seen}/baselines.json is not under seen={seen}")
    llm = {row["method"]: ranks_of(row) for row in report["results"]}
    cheap = {row["method"]: ranks_of(row) for row in tuned["results"]}
    ours, theirs = llm["most popular"] < 10, cheap["most popular"] < 10
    if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
        raise ValueError(
            f"seen={seen}: most-popular hits differ between {file} and baselines.json: "
            "not the same users in the same order"
        )
    ranks = {LLM_ROWS[m]: llm[m] for m in LLM_ROWS if m in llm}
    ranks |= {m: cheap[m] for m in BASELINE_ROWS}
    return ranks, report, tuned


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """a - b on Recall@10 and NDCG@10: bootstrap intervals, McNemar p on the hits."""
    (hits_a, gain_a), (hits_b, gain_b) = per_user_from_ranks(a, 10), per_user_from_ranks(b, 10)
    test = mcnemar((hits_a > 0).tolist(), (hits_b > 0).tolist())
    difference = hits_a - hits_b
    return {
        "recall@10": paired_bootstrap(hits_a, hits_b),
        "ndcg@10": paired_bootstrap(gain_a, gain_b),
        "p": test.p_value,
        "gained": test.a_only,
        "lost": test.b_only,
        "se": float(difference.std(ddof=1) / np.sqrt(len(difference))),
    }


def stage_budget(folder: Path) -> tuple[int, int, float, float]:
    """(steps, samples, training seconds, validation seconds) of one stage from its
    metrics.jsonl: the samples over the median logged samples-per-second (a window's rate
    also counts validations and pauses of a run resumed across sessions, which the median
    ignores), and the ranking validations' own seconds."""
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    rate = float(
        np.median([row["samples_per_second"] for row in rows if "samples_per_second" in row])
    )
    samples = max(row["samples"] for row in rows)
    validation = sum(row["seconds"] for row in rows if "eval_recall@10" in row)
    return max(row["step"] for row in rows), samples, samples / rate, validation


def which_model(run: Path) -> str:
    """What the two EAGER-LLM rows are, from the anneal run's settings and validations."""
    settings = json.loads((run / "anneal" / "final" / "run_settings.json").read_text())
    rows = [
        json.loads(line) for line in (run / "anneal" / "metrics.jsonl").read_text().splitlines()
    ]
    valid = {row["step"]: row["eval_recall@10"] for row in rows if "eval_recall@10" in row}
    if settings.get("best_checkpoint"):
        step = int(settings["best_checkpoint"].rsplit("-", 1)[1])
        held = f"its best checkpoint, step {step} (validation Recall@10 {valid.get(step)})"
    else:  # a run resumed from a checkpoint-0 saved without the pointer to it (fixed since)
        step = max(valid)
        held = (f"its last step {step} (validation Recall@10 {valid[step]}; its best, step "
                f"{max(valid, key=valid.get)} at {max(valid.values())}, was not restored: the "
                "run resumed from a checkpoint-0 whose saved state lacked the pointer to it, "
                "fixed since in `EagerTrainer._keep_start_candidate`)")  # fmt: skip
    return (f"'both stages' is the run's `anneal/final`, {held}; 'stage 1 alone' is "
            "`stage1/final`, stage 1's best checkpoint on validation.")  # fmt: skip


def budget_line(run: Path) -> str:
    """Steps, samples and seconds of both stages."""
    parts = []
    for stage, label in (("stage1", "stage 1"), ("anneal", "stage 2 (LoRA)")):
        steps, samples, training, validation = stage_budget(run / stage)
        parts.append(f"{label} {steps} steps ({samples:,} samples), {training:,.0f} s of "
                     f"training + {validation:,.0f} s of validations")  # fmt: skip
    return "; ".join(parts) + " (one torch thread)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=Path("runs/eager_recipe"))
    parser.add_argument("--baselines", type=Path, default=Path("runs/baselines/ml100k"))
    parser.add_argument("--page", type=Path, default=Path("results/eager_recipe_test.md"))
    args = parser.parse_args()
    loaded = {seen: load_protocol(args.run, args.baselines, seen) for seen in PROTOCOLS
              if (args.run / "anneal" / PROTOCOLS[seen][0]).is_file()}  # fmt: skip
    if not loaded:
        raise SystemExit(f"error: {args.run}/anneal has no eval.json or eval-remove.json yet")
    # the strongest baseline of each protocol: the best validation Recall@10 (never test)
    strongest, tests = {}, []
    for seen, (ranks, _, tuned) in loaded.items():
        valid = {row["method"]: row["valid_recall@10"] for row in tuned["results"]
                 if row["method"] in BASELINE_ROWS}  # fmt: skip
        strongest[seen] = max(valid, key=valid.get)
        cheap = max(CHEAP_ROWS, key=valid.get)  # the strongest cheap baseline, on validation
        for method in ranks:
            if method != strongest[seen]:
                tests.append((seen, method, compare(ranks[method], ranks[strongest[seen]])))
        for method in LLM_ROWS.values():  # against issue 35's bar, and the stages
            if method in ranks and strongest[seen] != cheap:
                tests.append((seen, f"{method} vs {cheap}",
                              compare(ranks[method], ranks[cheap])))  # fmt: skip
        both, alone = LLM_ROWS.values()
        if both in ranks and alone in ranks:
            tests.append((seen, f"{both} vs {alone}", compare(ranks[both], ranks[alone])))
    rejected = holm([t[2]["p"] for t in tests])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    first = next(iter(loaded.values()))[1]
    lines = [
        "# The shipped EAGER-LLM recipe on the MovieLens-100K test split",
        "",
        "```bash",
        ".venv/bin/python experiments/eager_recipe_test.py   # this page, from the reports below",
        "```",
        "",
        f"- **Run**: `configs/eager_llm/smol-ml100k.yaml` unchanged (SmolLM2-135M, rq-bf index, "
        f"bf16 autocast), trained by `runs/eager_recipe/run.sh`, one training seed: "
        f"{budget_line(args.run)}.",
        f"- **Evaluation**: all {first['n_users']} test users, full ranking over "
        f"{first['n_items']} items, {first['beams']} trie beams, {first['dtype']}, "
        f"{first['threads']} torch thread(s); EAGER-LLM's evaluation seconds per protocol in "
        "the tables. Baselines tuned on validation (results/eager_baselines_ml100k.md).",
        f"- **Machine**: {cpu_model()}, 2 cores shared by two one-thread jobs. Page written at "
        f"commit `{commit}`.",
        f"- **Which model**: {which_model(args.run)}",
        f"- **Tests**: each row against the strongest baseline of its protocol (best validation "
        f"Recall@10), and EAGER-LLM against the strongest cheap baseline on validation "
        "(co-occurrence, ItemKNN, most popular) and its own stages; "
        f"paired bootstrap 95 % intervals over users; McNemar's exact p on the "
        f"Recall@10 hits; Holm's rule over all {len(tests)} comparisons on this page at "
        "family-wise 0.05; where no difference is detected, the smallest difference the test "
        "would find with 80 % power at the strictest Holm level.",
        "",
    ]
    strictest = 0.05 / max(len(tests), 1)
    for seen, (ranks, report, _) in loaded.items():
        lines += [f"## {PROTOCOLS[seen][1].capitalize()}", "",
                  f"Reference: **{strongest[seen]}** (strongest on validation).", "",
                  "| method | Recall@10 | NDCG@10 | Δ Recall@10 [95 % CI] | Δ NDCG@10 [95 % CI] "
                  "| users gained / lost | McNemar p | past Holm |",
                  "| --- " * 8 + "|"]  # fmt: skip
        for method, r in ranks.items():
            recall, ndcg = (x.mean() for x in per_user_from_ranks(r, 10))
            found = [(t, ok) for t, ok in zip(tests, rejected, strict=True)
                     if t[0] == seen and t[1] == method]  # fmt: skip
            if not found:
                lines.append(f"| {method} | {recall:.4f} | {ndcg:.4f} | reference | | | | |")
                continue
            (_, _, c), ok = found[0]
            cells = [f"{c[m][0]:+.4f} [{c[m][1]:+.4f}, {c[m][2]:+.4f}]"
                     for m in ("recall@10", "ndcg@10")]  # fmt: skip
            verdict = "yes" if ok else f"no (detectable {detectable(c['se'], strictest):.3f})"
            lines.append(f"| {method} | {recall:.4f} | {ndcg:.4f} | {' | '.join(cells)} | "
                         f"{c['gained']} / {c['lost']} | {c['p']:.2g} | {verdict} |")  # fmt: skip
        lines += ["", "Pairs of issue 35 (the strongest cheap baseline on validation; "
                  "annealing):", "",
                  "| comparison | Δ Recall@10 [95 % CI] | Δ NDCG@10 [95 % CI] | users gained / "
                  "lost | McNemar p | past Holm |", "| --- " * 6 + "|"]  # fmt: skip
        for (where, name, c), ok in zip(tests, rejected, strict=True):
            if where != seen or " vs " not in name:
                continue
            cells = [f"{c[m][0]:+.4f} [{c[m][1]:+.4f}, {c[m][2]:+.4f}]"
                     for m in ("recall@10", "ndcg@10")]  # fmt: skip
            verdict = "yes" if ok else f"no (detectable {detectable(c['se'], strictest):.3f})"
            lines.append(f"| {name} | {' | '.join(cells)} | {c['gained']} / {c['lost']} | "
                         f"{c['p']:.2g} | {verdict} |")  # fmt: skip
        seconds = {row["method"]: row.get("seconds") for row in report["results"]}
        shown = ", ".join(f"{LLM_ROWS[m]} {seconds[m]:,.0f} s" for m in LLM_ROWS
                          if seconds.get(m) is not None)  # fmt: skip
        lines += ["", f"EAGER-LLM evaluation wall time: {shown}.", ""]
    args.page.write_text("\n".join(lines))
    print(f"page: {args.page}")


if __name__ == "__main__":
    main()
