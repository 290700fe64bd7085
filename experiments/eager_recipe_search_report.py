"""The results page of experiments/eager_recipe_search.py (issue 35), from its committed files.

Usage: .venv/bin/python experiments/eager_recipe_search_report.py
           [--results results/eager_recipe_search] [--page results/eager_recipe_search.md]
           [--plot results/eager_recipe_search_curves.png] [--index runs/eager_recipe/index]

Reads RESULTS/<arm>-s<seed>.json (one per finished arm x seed), RESULTS/plan.json (the arms
asked for; without it the driver's default arms) and the baselines on the same validation
users, RESULTS/baselines-s<seed>.json: computed here once from the index folder and kept
(committed), so the page regenerates without runs/. The users are drawn exactly as training
validation draws them (``eager_llm.training.validation.sample_users`` on the leave-one-out
validation examples, the run's ``valid_users`` and ``seed``); the baselines under both
protocols (history items kept / removed): most-popular, the co-occurrence (first-order
Markov) chain (``eager_llm.baselines.markov_rankings``) at its default (last 5 items) and at
the configuration tuned on validation in results/eager_baselines_ml100k.md (read from that
page's table; the default alone where it cannot be read, and the page says so), and the
index folder's SASRec (reading what validation's SASRec line reads: the last ``max_history``
items under keep, the whole training sequence under remove). The test split is never read.

Per arm x seed: its best validation point (each stage's best checkpoint keeps per-user
ranks), with paired differences in Recall@10 against the base arm and against the tuned
co-occurrence chain on the same users: a paired bootstrap 95 % interval
(``model_zoo.significance.paired_bootstrap``), McNemar's exact p value on the per-user hits,
Holm's rule over each family of arms, and the smallest effect each comparison could detect.
Then the learning curves (the plot), an extrapolation of the best arm's curve and what the
measured levers say limits it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from model_zoo.significance import detectable, holm, mcnemar, paired_bootstrap

ROOT = Path(__file__).resolve().parents[1]
ALPHA, K = 0.05, 10
BASE = ("recipe", 0)
CONTROL = "eval-control"  # the evaluation-only levers' reference
PROTOCOLS = ("keep", "remove")
PROTOCOL_NAMES = {"keep": "history items kept", "remove": "history items removed"}
COOC_DEFAULT = "co-occurrence (last 5)"
COOC_TUNED = "co-occurrence (tuned)"
COMMAND = """\
# the base run (runs/eager_recipe/run.sh), then the arms: eval arms first, one core each
export OMP_NUM_THREADS=1
.venv/bin/python experiments/eager_recipe_search.py --plan
taskset -c 0 nice -n 10 .venv/bin/python experiments/eager_recipe_search.py recipe \\
    eval-control eval-allowed eval-remove eval-remove-allowed seqrec-only ...
.venv/bin/python experiments/eager_recipe_search_report.py"""


# -- inputs ---------------------------------------------------------------------------------
def driver_module():
    spec = importlib.util.spec_from_file_location(
        "eager_recipe_search", Path(__file__).with_name("eager_recipe_search.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def load_arms(results: Path) -> dict[tuple[str, int], dict]:
    """(arm, seed) -> its record, from every RESULTS/<arm>-s<seed>.json."""
    found = {}
    for path in sorted(results.glob("*-s*.json")):
        if path.name.startswith("baselines-"):
            continue
        record = json.loads(path.read_text())
        found[(record["arm"], record["seed"])] = record
    return found


def load_plan(results: Path) -> dict:
    """{"arms": name -> definition, "seeds": [...]}: plan.json, else the driver's arms."""
    path = results / "plan.json"
    if path.is_file():
        return json.loads(path.read_text())
    from dataclasses import asdict

    arms = driver_module().ARMS
    return {"arms": {n: asdict(a) | {"sets": list(a.sets)} for n, a in arms.items()}, "seeds": [0]}


def tuned_markov(page: Path) -> dict[str, dict | None]:
    """Protocol -> the co-occurrence configuration chosen on validation in the tuned-baselines
    page (``last=20, decay=0.6, window=3, normalise=False``), None where it cannot be read."""
    found: dict[str, dict | None] = dict.fromkeys(PROTOCOLS)
    if not page.is_file():
        return found
    protocol = None
    for line in page.read_text().splitlines():
        if line.startswith("### History items kept"):
            protocol = "keep"
        elif line.startswith("### History items removed"):
            protocol = "remove"
        elif protocol and line.startswith("| Markov (co-occurrence) |") and not found[protocol]:
            cell = line.split("|")[2]
            pairs = dict(re.findall(r"(\w+)=([\w.]+)", cell))
            try:
                found[protocol] = {
                    "last": int(pairs["last"]),
                    "decay": float(pairs["decay"]),
                    "window": int(pairs["window"]),
                    "normalise": pairs["normalise"] == "True",
                }
            except (KeyError, ValueError):
                found[protocol] = None
    return found


def compute_baselines(index: Path, seed: int, n_users: int, max_history: int, tuned: dict) -> dict:
    """The baselines' per-user validation ranks (0-based, None: not in the top 10) on the
    users training validation draws, under both protocols."""
    from eager_llm.baselines import MarkovConfig, markov_rankings, most_popular, sasrec_rankings
    from eager_llm.data import leave_one_out
    from eager_llm.metrics import list_ranks
    from eager_llm.training.index_files import load_index, load_indexed_dataset
    from eager_llm.training.validation import sample_users

    files = load_index(index)
    interactions, _ = load_indexed_dataset(files)
    split = leave_one_out(interactions, max_history=max_history)
    users = sample_users(split.valid, n_users, seed)
    targets = [e.target for e in users]
    pasts = [split.train[e.user].tolist() for e in users]
    n_items = len(files.item_ids)
    out = {
        "seed": seed,
        "n_users": len(users),
        "max_history": max_history,
        "users": [e.user for e in users],
        "configs": {},
    }
    for seen in PROTOCOLS:
        ranked = {
            "most popular": most_popular(
                split.train, n_items, len(users), K, histories=pasts, seen=seen
            ),
            COOC_DEFAULT: markov_rankings(split.train, pasts, K, n_items=n_items, seen=seen),
        }
        if tuned.get(seen):
            config = MarkovConfig(**tuned[seen])
            ranked[COOC_TUNED] = markov_rankings(
                split.train, pasts, K, n_items=n_items, config=config, seen=seen
            )
            out["configs"][f"{COOC_TUNED} {seen}"] = tuned[seen]
        sasrec = index / "sasrec"
        if (sasrec / "config.json").is_file():
            histories = pasts if seen == "remove" else [list(e.history) for e in users]
            ranked["SASRec"] = sasrec_rankings(sasrec, histories, K, seen=seen)
        out[seen] = {
            name: [None if math.isinf(r) else int(r) for r in list_ranks(lists, targets)]
            for name, lists in ranked.items()
        }
    return out


def load_baselines(
    results: Path, index: Path | None, seed: int, n_users: int, max_history: int, tuned: dict
) -> dict | None:
    """RESULTS/baselines-s<seed>.json, computed from ``index`` when it is missing (None when
    neither exists)."""
    path = results / f"baselines-s{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if index is None or not (index / "item_index.json").is_file():
        return None
    found = compute_baselines(index, seed, n_users, max_history, tuned)
    path.write_text(json.dumps(found, separators=(",", ":")) + "\n")
    return found


# -- statistics -----------------------------------------------------------------------------
def per_user(ranks) -> tuple[np.ndarray, np.ndarray]:
    """Recall@10 and NDCG@10 of each user from 0-based ranks (None: absent)."""
    r = np.array([np.inf if x is None else x for x in ranks], dtype=np.float64)
    hit = r < K
    return hit.astype(float), np.where(hit, 1 / np.log2(np.where(hit, r, 0) + 2), 0.0)


def compare(a_ranks, b_ranks, resamples: int) -> dict:
    """a - b in Recall@10 on the same users: paired bootstrap 95 % interval, its standard
    error (the interval's width / 3.92) and McNemar's exact p on the per-user hits."""
    a, b = per_user(a_ranks)[0], per_user(b_ranks)[0]
    diff, low, high = paired_bootstrap(a, b, resamples=resamples)
    return {
        "diff": diff,
        "low": low,
        "high": high,
        "se": (high - low) / (2 * 1.959964),
        "p": mcnemar(a.astype(bool), b.astype(bool)).p_value,
        "n": len(a),
    }


def aligned(a: dict, b: dict, users: dict[int, list[int]]) -> tuple[list, list] | None:
    """The best-point ranks of records ``a`` and ``b`` on their common validation users
    (``users``: seed -> user ids in sample order)."""
    ua, ub = users.get(a["valid_seed"]), users.get(b["valid_seed"])
    ra, rb = a["best"]["ranks"], b["best"]["ranks"]
    if a["valid_seed"] == b["valid_seed"]:
        return (ra, rb) if len(ra) == len(rb) else None
    if ua is None or ub is None:
        return None
    where = {u: i for i, u in enumerate(ub)}
    pairs = [(ra[i], rb[where[u]]) for i, u in enumerate(ua) if u in where]
    return ([x for x, _ in pairs], [y for _, y in pairs]) if pairs else None


def fit_log_curve(points: list[tuple[float, float]]) -> dict | None:
    """Least squares of Recall@10 = a + b ln(samples) on the points after the first (the
    untrained model at 0 samples has no logarithm): a, b, b's standard error (None with
    fewer than 3 points) and the points used."""
    used = sorted(points)[1:]
    used = [(x, y) for x, y in used if x > 0]
    if len(used) < 2:
        return None
    x = np.log([p[0] for p in used])
    y = np.array([p[1] for p in used])
    design = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    se = None
    if len(used) > 2:
        residual = y - design @ np.array([a, b])
        sigma2 = float(residual @ residual) / (len(used) - 2)
        se = math.sqrt(sigma2 / float(((x - x.mean()) ** 2).sum()))
    return {"a": float(a), "b": float(b), "se_b": se, "points": used}


def samples_to_reach(fit: dict, target: float, slope: float | None = None) -> float | None:
    """Samples at which a + b ln(samples) reaches ``target`` (None: never, slope <= 0)."""
    b = fit["b"] if slope is None else slope
    if b <= 0:
        return None
    return math.exp((target - fit["a"]) / b)


# -- the page -------------------------------------------------------------------------------
def name(arm: str, seed: int) -> str:
    return f"{arm}-s{seed}"


def ci(r: dict) -> str:
    return f"{r['diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"


def verdict(r: dict | None) -> str:
    if r is None:
        return "-"
    if r["holm"]:
        return "**detected** (Holm)"
    return f"not detected (smallest detectable effect {r['detectable']:.3f})"


def build_page(
    results: Path,
    *,
    index: Path | None,
    plot: Path | None,
    baselines_page: Path,
    resamples: int = 10_000,
) -> str:
    arms = load_arms(results)
    plan = load_plan(results)
    tuned = tuned_markov(baselines_page)
    definitions = plan["arms"]
    planned = [(a, s) for a in definitions for s in (plan.get("seeds") or [0])]
    planned += [key for key in arms if key not in planned]
    pending = [key for key in planned if key not in arms]
    seeds = sorted({s for _, s in arms} | {BASE[1]})
    n_users = next((r["valid_users"] for r in arms.values()), 500)
    baselines = {
        s: load_baselines(results, index, s, n_users, 20, tuned) for s in seeds
    }  # validation's SASRec line reads the base config's 20 items
    users = {s: b["users"] for s, b in baselines.items() if b}
    target_name = COOC_TUNED if all(tuned.values()) else COOC_DEFAULT

    # the comparisons: two families, each over the planned arm x seeds (pending: p = 1)
    rows = {}
    for key in planned:
        record = arms.get(key)
        versus_base = versus_cooc = None
        if record and record.get("best"):
            reference = reference_of(key, record, arms)
            if reference and key != BASE and reference.get("best"):
                pair = aligned(record, reference, users)
                versus_base = compare(*pair, resamples) if pair else None
            b = baselines.get(record["valid_seed"])
            line = b and b[record["protocol"]["seen"]].get(target_name)
            if line is not None and len(line) == len(record["best"]["ranks"]):
                versus_cooc = compare(record["best"]["ranks"], line, resamples)
        rows[key] = {"base": versus_base, "cooc": versus_cooc}
    families = {"base": [k for k in planned if k != BASE], "cooc": list(planned)}
    for fam, keys in families.items():
        ps = [rows[k][fam]["p"] if rows[k][fam] else 1.0 for k in keys]
        for k, rejected in zip(keys, holm(ps), strict=True):
            if rows[k][fam]:
                rows[k][fam]["holm"] = rejected
                rows[k][fam]["detectable"] = detectable(rows[k][fam]["se"], ALPHA / len(keys))

    lines = [
        "# EAGER-LLM recipe search on MovieLens-100K: learning curves against the cheap "
        "baselines (issue 35)",
        "",
        "```bash",
        COMMAND,
        "```",
        "",
    ]
    lines += setting_lines(arms, planned, pending, baselines, tuned, target_name, n_users)
    lines += ["", "## Baselines on the same validation users", ""]
    lines += baseline_lines(baselines.get(BASE[1]), tuned)
    lines += ["", "## Arms: best validation point against the base and the co-occurrence chain", ""]
    lines += arm_lines(planned, arms, rows, definitions, families, target_name)
    curves = curve_lines(arms, baselines.get(BASE[1]), target_name)
    lines += ["", "## Learning curves", ""] + curves
    best_key, fit = best_fit(arms)
    lines += ["", "## Extrapolation", ""]
    lines += extrapolation_lines(arms, best_key, fit, baselines, target_name)
    lines += ["", "## What limits it", ""]
    lines += limit_lines(arms, rows, best_key, fit, baselines, target_name)
    lines += ["", "## Reading it", ""]
    lines += reading_lines(pending, n_users)
    if plot is not None and arms:
        write_plot(plot, arms, baselines.get(BASE[1]), best_key, fit, target_name)
    return "\n".join(lines) + "\n"


def reference_of(key, record, arms) -> dict | None:
    """What an arm's "vs base" pairs with: for an evaluation-only lever the control re-rank
    of the same seed (``eval-control``: the same final model, re-ranked the same way, so
    only the lever differs), for every other arm the base arm."""
    control = arms.get((CONTROL, key[1]))
    if record.get("kind") == "eval" and key[0] != CONTROL and control and control.get("best"):
        return control
    return arms.get(BASE)


def setting_lines(arms, planned, pending, baselines, tuned, target_name, n_users) -> list[str]:
    records = list(arms.values())
    cpus = sorted({r.get("cpu", "?") for r in records})
    threads = sorted({str(r.get("threads")) for r in records})
    commits = sorted({r.get("commit", "?") for r in records})
    hours = (
        sum(v for r in records for k, v in r.get("seconds", {}).items() if k.endswith("_wall_s"))
        / 3600
    )
    cpu_hours = (
        sum(v for r in records for k, v in r.get("seconds", {}).items() if k.endswith("_cpu_s"))
        / 3600
    )
    tuned_text = (
        "the tuned configuration read from [eager_baselines_ml100k.md](eager_baselines_ml100k.md)"
        f" (kept: {fmt_config(tuned['keep'])}; removed: {fmt_config(tuned['remove'])})"
        if target_name == COOC_TUNED
        else "the default configuration (last 5 items, raw counts): the tuned one could not be "
        "read from eager_baselines_ml100k.md"
    )
    missing = [s for s, b in baselines.items() if b is None]
    return [
        f"- **Machine**: {', '.join(cpus) or '-'}; OMP_NUM_THREADS {', '.join(threads) or '-'}; "
        "each job pinned to one of 2 shared cores (`taskset`, nice 10) beside other jobs: wall "
        "times are under that load.",
        f"- **Recorded** at commit(s) {', '.join(commits) or '-'}; wall {hours:.1f} h, CPU "
        f"{cpu_hours:.1f} h over the finished arms (the base run's CPU seconds were not "
        "recorded: run.sh timed wall only).",
        "- **Arms**: overrides of `configs/eager_llm/smol-ml100k.yaml` (stage 1, 300 steps of 8 "
        "samples, then stage 2, 30 LoRA steps), one index for all (`runs/eager_recipe/index`, "
        "rq-bf, K = 37), so every arm of one seed ranks the same validation users; eval arms "
        "re-rank the base arm's final model; `rl` is stage 3 from it.",
        f"- **Validation**: {n_users} users drawn from the validation split with the run's seed "
        "(`sample_users`), Recall@10 / NDCG@10 of 10 trie beams; the test split is not read. "
        "Trained arms of every seed validate on the users drawn with seed 0 (`valid_seed`); "
        "a record with another validation seed is compared with the base on the users both "
        "samples hold.",
        f"- **The co-occurrence line** compared against is {tuned_text}.",
        f"- **Done**: {len(arms)} of {len(planned)} arm x seeds; **pending**: "
        f"{', '.join(name(*k) for k in pending) or 'none'}."
        + (f" Baselines missing for seed(s) {missing} (no index folder)." if missing else ""),
    ]


def fmt_config(config: dict | None) -> str:
    if not config:
        return "not read"
    return ", ".join(f"{k}={v}" for k, v in config.items())


def baseline_lines(b: dict | None, tuned: dict) -> list[str]:
    if b is None:
        return ["Not computed: no baselines file and no index folder."]
    lines = [
        f"Seed {b['seed']}'s {b['n_users']} validation users (the base arm's), each baseline "
        "under both protocols; SASRec is the index folder's (`index/sasrec`), reading the last "
        f"{b['max_history']} items under *kept* as validation's line does.",
        "",
        "| method | kept R@10 | kept N@10 | removed R@10 | removed N@10 |",
        "| --- | --- | --- | --- | --- |",
    ]
    methods = list(dict.fromkeys([*b["keep"], *b["remove"]]))
    for method in methods:
        cells = []
        for seen in PROTOCOLS:
            ranks = b[seen].get(method)
            if ranks is None:
                cells += ["-", "-"]
                continue
            recall, ndcg = per_user(ranks)
            cells += [f"{recall.mean():.4f}", f"{ndcg.mean():.4f}"]
        label = method
        if method == COOC_TUNED:
            label += f" (kept: {fmt_config(tuned['keep'])}; removed: {fmt_config(tuned['remove'])})"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def arm_lines(planned, arms, rows, definitions, families, target_name) -> list[str]:
    lines = [
        "**Multiple comparisons.** Two families, each held to a family-wise error of 0.05 by "
        f"Holm's step-down rule over the arms: every arm against the base ({len(families['base'])}"
        f" tests) and every arm against the {target_name} chain ({len(families['cooc'])} tests), "
        "on Recall@10. The p value is McNemar's exact test on the per-user hits; the interval "
        "the paired bootstrap's 95 % (10,000 resamples of users). Pending arms count in their "
        "family's size, as not rejected. *Smallest detectable effect*: the true difference "
        "found with 80 % power at the family's strictest Holm level (0.05 / tests), from the "
        "comparison's bootstrap standard error. An evaluation-only lever's 'vs base' is "
        f"against `{CONTROL}` (the same final model re-ranked the same way, so only the lever "
        "differs; the control itself against the base measures the re-rank's own drift, "
        "bf16 batches and, where the base's final model is not its best point, that). An arm "
        "under the *removed* protocol is compared "
        "with the base (kept) as a lever (the protocol change is the lever) and with the "
        "co-occurrence chain under its own protocol. The best point is chosen on these same users "
        "(optimistic by the choice among a run's 5-7 points); every arm is kept, worse ones "
        "included.",
        "",
        f"| arm | lever | overrides | protocol | best at (samples, stage) | R@10 | N@10 | vs base "
        f"[95 % CI] | Holm | vs {target_name} [95 % CI] | Holm |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key in planned:
        definition = definitions.get(key[0], {})
        record = arms.get(key)
        sets = (
            " ".join(
                f"`{s}`"
                for s in (record or definition).get("overrides", definition.get("sets", []))
            )
            or "-"
        )
        lever = (record or definition).get("lever", "-")
        if record is None or not record.get("best"):
            status = "pending" if record is None else "no validation point"
            lines.append(
                f"| {name(*key)} | {lever} | {sets} | - | {status} | - | - | - | - | - | - |"
            )
            continue
        best, protocol = record["best"], record["protocol"]
        r = rows[key]
        lines.append(
            f"| {name(*key)} | {lever} | {sets} | {protocol['seen']}, {protocol['beam_scores']} | "
            f"{best['samples']:,} ({best['stage']}) | {best['recall@10']:.4f} | "
            f"{best['ndcg@10']:.4f} | {ci(r['base']) if r['base'] else '-'} | "
            f"{verdict(r['base'])} | {ci(r['cooc']) if r['cooc'] else '-'} | {verdict(r['cooc'])} |"
        )
    return lines


def arm_curve(record: dict) -> list[tuple[float, float]]:
    return [(p[0], p[1]) for p in record.get("curve", [])]


def curve_lines(arms, b, target_name) -> list[str]:
    lines = [
        "Validation Recall@10 against training samples seen (all stages: stage 2's and 3's "
        "points after their start, shifted by the samples before them), plotted in "
        "[eager_recipe_search_curves.png](eager_recipe_search_curves.png) (left: history items "
        "kept, right: removed) with the baselines on the same users as horizontal lines.",
        "",
        "| arm | samples: Recall@10 |",
        "| --- | --- |",
    ]
    for key, record in sorted(arms.items()):
        points = ", ".join(f"{int(x):,}: {y:.3f}" for x, y in arm_curve(record))
        lines.append(f"| {name(*key)} | {points or '-'} |")
    return lines


def best_fit(arms: dict) -> tuple[tuple | None, dict | None]:
    """The trained arm with the highest best Recall@10 among those with a fit."""
    best_key, fit, best = None, None, -1.0
    for key, record in arms.items():
        if record.get("kind") == "eval" or not record.get("best"):
            continue
        f = fit_log_curve(arm_curve(record))
        if f is not None and record["best"]["recall@10"] > best:
            best_key, fit, best = key, f, record["best"]["recall@10"]
    return best_key, fit


def seconds_per_sample(record: dict) -> float | None:
    seconds = record.get("seconds", {})
    samples = sum(s.get("samples", 0) for s in record.get("stages", {}).values())
    spent = sum(v for k, v in seconds.items() if k.endswith("_wall_s"))
    return spent / samples if samples and spent else None


def extrapolation_lines(arms, best_key, fit, baselines, target_name) -> list[str]:
    if fit is None:
        return ["No trained arm has 3 validation points yet: nothing to extrapolate."]
    record = arms[best_key]
    b = baselines.get(record["valid_seed"])
    line = b and b[record["protocol"]["seen"]].get(target_name)
    target = per_user(line)[0].mean() if line is not None else None
    lines = [
        f"Best arm: **{name(*best_key)}** (best Recall@10 {record['best']['recall@10']:.4f}). "
        f"Least squares of Recall@10 = a + b ln(samples) on its {len(fit['points'])} points "
        f"after the first: a = {fit['a']:.4f}, b = {fit['b']:.4f}"
        + (f" (standard error {fit['se_b']:.4f})" if fit["se_b"] is not None else "")
        + f", i.e. {fit['b'] * math.log(2):+.4f} Recall@10 per doubling of the samples.",
    ]
    if target is None:
        return [*lines, "", f"The {target_name} line is not computed: no target to reach."]
    now = max(x for x, _ in fit["points"])
    need = samples_to_reach(fit, target)
    per = seconds_per_sample(record)

    def cost(samples: float | None) -> str:
        if samples is None:
            return "never (slope <= 0)"
        text = f"{samples:,.0f} samples ({samples / now:,.1f}x the {now:,.0f} seen)"
        if per:
            text += f", ~{samples * per / 3600:,.0f} h of one core at this run's pace"
        return text

    if record["best"]["recall@10"] >= target:
        lines += [
            "",
            f"- Its best point ({record['best']['recall@10']:.4f}) is already at or above the "
            f"{target_name} line ({target:.4f}) on these users (the table above says whether "
            "the difference is detected): no extrapolation needed.",
        ]
        return lines
    lines += ["", f"- To reach the {target_name} line ({target:.4f}) on the fit: {cost(need)}."]
    if fit["se_b"] is not None:
        low = samples_to_reach(fit, target, fit["b"] + 1.96 * fit["se_b"])
        high = samples_to_reach(fit, target, fit["b"] - 1.96 * fit["se_b"])
        lines.append(
            f"- With the slope at the ends of its 95 % interval: {cost(low)} (steepest) to "
            f"{cost(high)} (shallowest)."
        )
    lines += [
        "",
        "Caveat: learning curves flatten: a line in log(samples) fitted on early points "
        "overstates later gains, so these are lower bounds on the samples needed, and a "
        "cosine schedule over a longer run is not the same curve continued (`steps-900` "
        "measures one longer run directly). The fit uses validation points chosen on the same "
        "users; extrapolating past 10x the samples seen is not a measurement.",
    ]
    return lines


def limit_lines(arms, rows, best_key, fit, baselines, target_name) -> list[str]:
    """What the measured levers say, lever group by lever group, then a rule's verdict."""
    if not arms:
        return ["No arm finished yet."]
    lines = ["Per lever (best arm x seed of each lever against the base, Recall@10):", ""]
    by_lever: dict[str, list] = {}
    for key, record in arms.items():
        if key != BASE and rows[key]["base"]:
            by_lever.setdefault(record.get("lever", "?"), []).append((key, rows[key]["base"]))
    detected_gain = []
    for lever, items in sorted(by_lever.items()):
        key, r = max(items, key=lambda kv: kv[1]["diff"])
        lines.append(f"- {lever}: {name(*key)} {ci(r)}, {verdict(r)}.")
        if r.get("holm") and r["diff"] > 0:
            detected_gain.append(lever)
    base = arms.get(BASE)
    if base:
        s1 = [p[1] for p in base["curve"] if p[3] == "stage1"]
        s2 = [p[1] for p in base["curve"] if p[3] == "anneal"]
        if s1 and s2:
            lines.append(
                f"- stage 2 (base): best stage-1 point {max(s1):.4f}, stage 2's end {s2[-1]:.4f}."
            )
    rising = fit is not None and fit["se_b"] is not None and fit["b"] - 1.96 * fit["se_b"] > 0
    lines += [
        "",
        "Rule (stated before the runs): a lever limits the recipe when changing it "
        "gives a detected gain (Holm) over the base; the training budget limits it when "
        "the best arm's curve still rises (slope's 95 % interval above 0).",
    ]
    found = []
    if detected_gain:
        found.append(f"the levers with a detected gain: {', '.join(detected_gain)}")
    if rising:
        found.append(f"the training budget ({name(*best_key)}'s curve still rises)")
    lines.append(
        "Verdict: "
        + (
            "; ".join(found) + "."
            if found
            else "no measured lever shows a detected gain and the best curve is not "
            "detectably rising: the limit is outside the levers measured here "
            "(index, model size, tasks not varied)."
        )
    )
    return lines


def reading_lines(pending, n_users) -> list[str]:
    se = math.sqrt(0.1 * 0.9 / n_users)
    lines = [
        f"- One user is {1 / n_users:.4f} of Recall@10; near 0.1 its standard error on "
        f"{n_users} users is {se:.3f}, so an unpaired difference below "
        f"~{2.8 * math.sqrt(2) * se:.3f} is noise; the paired intervals above are narrower "
        "where two arms agree user by user.",
        "- Negative results are kept: every arm run has its row, whether it beats the base or "
        "not; one seed per arm unless stated (seed-to-seed spread is not in the intervals).",
        "- Validation numbers choose the recipe; the test table of the chosen recipe is a "
        "separate step (`eager-llm eval`).",
    ]
    if pending:
        lines.append(
            f"- **Incomplete: {len(pending)} arm x seeds pending** "
            f"({', '.join(name(*k) for k in pending)}); the Holm families already count them."
        )
    return lines


def write_plot(path: Path, arms, b, best_key, fit, target_name) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True, sharey=True)
    for axis, seen in zip(axes, PROTOCOLS, strict=True):
        for key, record in sorted(arms.items()):
            if record["protocol"]["seen"] != seen:
                continue
            xs, ys = zip(*arm_curve(record), strict=True) if record.get("curve") else ((), ())
            style = "*" if record.get("kind") == "eval" else "o-"
            axis.plot(xs, ys, style, label=name(*key), markersize=8 if style == "*" else 4)
        if b is not None:
            styles = zip(
                ("--", ":", "-.", "--"), ("grey", "tab:red", "darkred", "black"), strict=True
            )
            for method, (linestyle, colour) in zip(b[seen], styles, strict=False):
                axis.axhline(
                    per_user(b[seen][method])[0].mean(),
                    color=colour,
                    linestyle=linestyle,
                    linewidth=1,
                    label=method,
                )
        if fit is not None and arms[best_key]["protocol"]["seen"] == seen:
            top = max(x for x, _ in fit["points"])
            xs = np.linspace(min(x for x, _ in fit["points"]), top * 1.5, 50)
            axis.plot(
                xs,
                fit["a"] + fit["b"] * np.log(xs),
                "k--",
                linewidth=1,
                label=f"fit {name(*best_key)}",
            )
        axis.set(xlabel="training samples seen", title=PROTOCOL_NAMES[seen])
        axis.legend(fontsize=6, ncol=2)
    axes[0].set_ylabel("validation Recall@10")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results/eager_recipe_search"))
    parser.add_argument("--page", type=Path, default=Path("results/eager_recipe_search.md"))
    parser.add_argument("--plot", type=Path, default=Path("results/eager_recipe_search_curves.png"))
    parser.add_argument("--index", type=Path, default=Path("runs/eager_recipe/index"))
    parser.add_argument(
        "--baselines-page", type=Path, default=ROOT / "results" / "eager_baselines_ml100k.md"
    )
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args()
    page = build_page(
        args.results,
        index=args.index,
        plot=args.plot,
        baselines_page=args.baselines_page,
        resamples=args.resamples,
    )
    args.page.write_text(page)
    print(f"wrote {args.page}")


if __name__ == "__main__":
    main()
