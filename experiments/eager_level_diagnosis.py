"""Which code level of a trained EAGER-LLM run loses the target: teacher-forced ranks per level.

    OMP_NUM_THREADS=1 nice -n 5 taskset -c 0 .venv/bin/python experiments/eager_level_diagnosis.py

For a run folder (``--run``, default ``runs/eager_recipe/anneal``: its ``final/`` model, the
index of its ``run_settings.json``) and the validation users its training validated on
(:func:`eager_llm.training.validation.sample_users` of the validation split with the run's
``valid_seed``, or ``seed`` when unset, and ``valid_users``), one forward pass per user on the
run's seqrec validation prompt followed by the target item's code tokens (under the run's
precision: bf16 autocast for a bf16 run, as validation and ``eager-llm eval`` decode) gives,
per level, the target token's rank among the tokens the trie allows after the true prefix
(:mod:`eager_llm.level_ranks`); the popularity prior ranks the same tokens by the training
interactions of the items below each. Under a ``valid_seen: remove`` run the user's training
items are pruned from the trie first, as validation does.

Writes ``results/eager_level_diagnosis.md`` (``--page``) and every user's ranks to
``runs/eager_level_diagnosis/ranks.jsonl`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from eager_llm.baselines import popularity
from eager_llm.data import leave_one_out
from eager_llm.level_ranks import (
    LevelRank,
    model_ranks,
    prior_ranks,
    subtree_counts,
    survival,
    top_k,
)
from eager_llm.prompt_ids import encode_prompts
from eager_llm.run_decoder import RunDecoder, load_run
from eager_llm.tasks import history_prompts
from eager_llm.training.index_files import load_index, load_indexed_dataset
from eager_llm.training.run_log import VALIDATION_RANKS, read_validation_ranks
from eager_llm.training.validation import sample_users
from model_zoo.hardware import cpu_model
from model_zoo.run_folder import FINGERPRINT
from model_zoo.significance import paired_bootstrap
from model_zoo.training_guards import read_records

REPO = Path(__file__).resolve().parents[1]
KS = (1, 3, 10)
COMMAND = (
    "OMP_NUM_THREADS=1 nice -n 5 taskset -c 0 .venv/bin/python experiments/eager_level_diagnosis.py"
)


def run_config(folder: Path) -> dict:
    """The run's resolved config, from the fingerprint written when it started."""
    path = folder / FINGERPRINT
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {FINGERPRINT}: its validation users are unknown")
    return json.loads(path.read_text())["config"]


def validation_setup(folder: Path, limit: int | None = None):
    """(run, config, index files, examples, prompts, per-user seen training items or None):
    the users and prompts of the run's ranking validation (stages.validation_parts)."""
    run = load_run(folder)
    config = run_config(folder)
    files = load_index(run.index)
    interactions, _ = load_indexed_dataset(files)
    split = leave_one_out(interactions, max_history=run.max_history)
    seed = config["seed"] if config.get("valid_seed") is None else config["valid_seed"]
    users = sample_users(split.valid, config["valid_users"], seed)[:limit]
    indices = ["".join(files.item_index[item_id]) for item_id in files.item_ids]
    histories = [e.history for e in users]
    prompts = history_prompts(indices, histories, run.max_history, run.template)
    seen = None
    if config.get("valid_seen", "keep") == "remove":
        seen = [[files.item_ids[i] for i in split.train[e.user].tolist()] for e in users]
    return run, config, files, split, users, prompts, seen


@torch.inference_mode()
def level_log_probs(model, ids: list[int], sequence: list[int], bf16: bool, device: str):
    """(levels, vocab) float32 log-probabilities of each token of ``sequence`` (code tokens
    and terminator) given the prompt ``ids`` and the true tokens before it: one forward."""
    inputs = torch.tensor([[*ids, *sequence[:-1]]], device=device)
    with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=bf16):
        logits = model(input_ids=inputs, logits_to_keep=len(sequence)).logits[0]
    return torch.log_softmax(logits.float(), dim=-1).cpu().numpy()


def diagnose(folder: Path, limit: int | None = None, device: str = "cpu", progress=print):
    """Per user (the run's validation users, the first ``limit``): the target's model and
    prior :class:`LevelRank` per level, and what the page needs about the run."""
    run, config, files, split, users, prompts, seen = validation_setup(folder, limit)
    decoder = RunDecoder(run, "float32", device)
    trie, tokenizer = decoder.trie, decoder.tokenizer
    if set(trie.items) != set(files.item_ids):
        raise ValueError(f"{folder}: the run's item index does not name the dataset's items")
    counts = popularity(split.train, len(files.item_ids))
    prior = subtree_counts(trie, dict(zip(files.item_ids, counts.tolist(), strict=True)))
    bf16 = run.precision == "bf16-autocast"
    lead, texts = encode_prompts(tokenizer, prompts)
    rows = []
    started = time.perf_counter()
    for n, (example, text) in enumerate(zip(users, texts, strict=True)):
        item = files.item_ids[example.target]
        pruned = frozenset()
        if seen is not None:
            pruned = frozenset(trie.exhausted_nodes(seen[n]))
        sequence = trie.sequences[item]
        log_probs = level_log_probs(decoder.model, [*lead, *text], sequence, bf16, device)
        rows.append(
            {
                "user": int(example.user),
                "item": item,
                "model": model_ranks(trie, log_probs, item, pruned),
                "prior": prior_ranks(trie, prior, item, pruned),
            }
        )
        if progress and (n + 1) % 50 == 0:
            progress(f"{n + 1}/{len(users)} users, {time.perf_counter() - started:.0f} s")
    return {
        "run": run,
        "config": config,
        "files": files,
        "rows": rows,
        "precision": "bf16 autocast" if bf16 else "fp32",
        "beams": int(config.get("valid_beams", 10)),
    }


def level_names(files, depth: int) -> list[str]:
    """Level labels: ``1 (behaviour)``, ..., the terminator's ``end (EOS)``."""
    names = []
    for level in range(depth):
        source = files.level_sources[level] if level < len(files.level_sources) else ""
        names.append(f"{level + 1} ({source})" if source else str(level + 1))
    return [*names[: depth - 1], "end (EOS)"]


def summary(rows: list[dict], beams: int) -> dict:
    """Per level: mean allowed tokens, chance and top-k of model and prior, the paired
    bootstrap of model - prior top-``beams``, and survival through levels 1..L."""
    model = [row["model"] for row in rows]
    prior = [row["prior"] for row in rows]
    depth = max(len(user) for user in model)
    allowed = np.array([[r.allowed for r in user] + [1] * (depth - len(user)) for user in model])
    found = {
        "depth": depth,
        "n_users": len(rows),
        "allowed": allowed.mean(0),
        "chance": (np.minimum(beams, allowed) / allowed).mean(0),
        "model": {k: top_k(model, k).mean(0) for k in KS},
        "prior": {k: top_k(prior, k).mean(0) for k in KS},
        "survival_model": survival(model, beams),
        "survival_prior": survival(prior, beams),
    }
    a, b = top_k(model, beams), top_k(prior, beams)
    found["difference"] = [paired_bootstrap(a[:, level], b[:, level]) for level in range(depth)]
    found["survival_difference"] = paired_bootstrap(
        found["survival_model"][:, -1], found["survival_prior"][:, -1]
    )
    return found


def final_step(folder: Path, config: dict) -> tuple[int | None, str]:
    """(training step whose model ``final/`` holds, why): the best checkpoint's when the run
    recorded one and loads the best model at the end, else the last logged step."""
    settings = json.loads((folder / "final" / "run_settings.json").read_text())
    best = settings.get("best_checkpoint")
    if best and config.get("load_best_model_at_end"):
        return int(Path(best).name.rsplit("-", 1)[-1]), "its best checkpoint"
    steps = [r["step"] for r in read_records(folder / "metrics.jsonl")]
    return (max(steps) if steps else None), "its last step: the run recorded no best checkpoint"


def validation_check(folder: Path, config: dict, survived: np.ndarray, beams: int) -> str:
    """A line comparing the run's own validation hits at the step ``final/`` holds with the
    survival bound (a found target must survive every level), or "" without the files."""
    if not (folder / VALIDATION_RANKS).is_file() or not (folder / "metrics.jsonl").is_file():
        return ""
    step, why = final_step(folder, config)
    ranks = read_validation_ranks(folder)
    if step not in ranks or len(ranks[step]) != len(survived):
        return ""
    hits = ranks[step] < beams
    best = json.loads((folder / "final" / "run_settings.json").read_text()).get("best_metric")
    other = ""
    if best is not None and abs(best - hits.mean()) > 1e-9:
        other = f" (its best validation point reached {best:.3f}; `final/` is not that model)"
    return (
        f"- **Check against the run's own validation**: `final/` holds step {step} ({why}), "
        f"whose validation found {int(hits.sum())} of {len(hits)} targets among its {beams} "
        f"beams (Recall@{beams} {hits.mean():.3f}){other}. Of those hits, "
        f"{survived[hits].sum():.1f} survive the top {beams} of every level here (expected "
        f"count under random tie order; a hit that fails would come from the numeric "
        f"difference between one full forward pass and beam search's cached bf16 steps), and "
        f"{survived.sum():.1f} users survive in all: the bound ({survived.mean():.3f}) lies "
        f"{survived.mean() - hits.mean():.3f} above the Recall@{beams} the search reached."
    )


def fmt(x: float) -> str:
    return f"{x:.3f}"


def write_page(page: Path, args, found: dict, stats: dict, wall: float, cpu: float, load: float):
    run, files = found["run"], found["files"]
    names = level_names(files, stats["depth"])
    beams = found["beams"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    config = found["config"]
    seed = config["seed"] if config.get("valid_seed") is None else config["valid_seed"]
    head = [
        "level",
        "allowed tokens (mean)",
        f"chance top-{beams}",
        *(f"model top-{k}" for k in KS),
        *(f"prior top-{k}" for k in KS),
        f"model - prior top-{beams} [95 % CI]",
        f"survives levels 1..L in top-{beams}: model",
        "prior",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for level in range(stats["depth"]):
        mean, low, high = stats["difference"][level]
        lines.append(
            "| "
            + " | ".join(
                [
                    names[level],
                    f"{stats['allowed'][level]:.2f}",
                    fmt(stats["chance"][level]),
                    *(fmt(stats["model"][k][level]) for k in KS),
                    *(fmt(stats["prior"][k][level]) for k in KS),
                    f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]",
                    fmt(stats["survival_model"][:, level].mean()),
                    fmt(stats["survival_prior"][:, level].mean()),
                ]
            )
            + " |"
        )
    survived = stats["survival_model"]
    drops = -np.diff(np.concatenate([[1.0], survived.mean(0)]))
    worst = int(np.argmax(drops))
    where = "nowhere: every target survives every level"
    if drops[worst] > 0:
        where = f"level {names[worst]} (survival drops by {drops[worst]:.3f} there)"
    mean, low, high = stats["survival_difference"]
    se = np.sqrt(0.25 / stats["n_users"])
    above = [names[i] for i, (_, low, _) in enumerate(stats["difference"]) if low > 0]
    below = [names[i] for i, (_, _, high) in enumerate(stats["difference"]) if high < 0]
    free = [names[i] for i in range(stats["depth"]) if stats["chance"][i] >= 1]
    versus = (
        f"the model's top-{beams} is above the prior's (interval above 0) at level(s) "
        f"{', '.join(above) or 'none'}, below it at {', '.join(below) or 'none'}; at "
        f"{', '.join(free) or 'no level'} every user's target has at most {beams} allowed "
        f"siblings, so top-{beams} is 1 for both and those levels cost a {beams}-beam search "
        "nothing in this view (their top-1 still orders the items)"
    )
    check = validation_check(run.folder, config, survived[:, -1], beams)
    run_name = os.path.relpath(run.folder.resolve(), REPO)
    command = COMMAND + ("" if args.run == DEFAULT_RUN else f" --run {args.run}")
    command += "" if args.users is None else f" --users {args.users}"
    text = f"""# EAGER-LLM: where the target is lost, level by level (issue 35)

```bash
{command}
```

(Written by `experiments/eager_level_diagnosis.py` at commit `{commit}`; every user's ranks in
`{args.out}/ranks.jsonl`, not committed.)

- **Machine**: {cpu_model()}, {os.cpu_count()} cores shared with other sessions' jobs (load
  average {load:.1f} at the start), {torch.get_num_threads()} torch thread(s); wall
  {wall:.0f} s, CPU {cpu:.0f} s.
- **Run**: `{run_name}` (its `final/` model), index `{os.path.relpath(run.index, REPO)}`,
  prompt template `{run.template}`, last {run.max_history} history items, precision
  {found["precision"]} (the run's, as its validation ranked).
- **Users**: {stats["n_users"]} validation users, the run's own validation sample
  (`sample_users` of the validation split, seed {seed}, seen items
  {config.get("valid_seen", "keep")}); the test split is not read.
- **Method**: one forward pass per user of the seqrec validation prompt followed by the
  target's code tokens (teacher forcing). At each level the target's token is ranked among
  the tokens the item trie allows after the target's true prefix, by the model's
  log-probability and by the **popularity prior** (training interactions of all items
  below each allowed token: the best guess that ignores the user). Ties are broken at
  random (top-k is the probability over the tie order; bf16 logits tie).
{check}

{chr(10).join(lines)}

No plot.

## How to read it

- **Per level, given a correct prefix**: *model top-k* is the share of users whose target
  token is among the model's k best allowed tokens at that level when every earlier token
  is the target's; *allowed tokens* is how many the trie offers there (chance top-k is
  k / allowed); the *prior* columns rank the same tokens by popularity. A level with one
  allowed token (the code already names the item, or the terminator) is forced: top-1 is 1.
- **Survival** multiplies a user's per-level top-{beams} probabilities over levels 1..L:
  a target outside the top {beams} of its siblings at some level cannot come out of the
  {beams}-beam search (the siblings above it share its prefix's score), so the last row's
  survival ({survived[:, -1].mean():.3f}) is an upper bound on the run's Recall@{beams} under
  these scores, not an estimate of it: surviving targets still compete with other prefixes'
  candidates. Model - prior on the final survival: {mean:+.3f} [{low:+.3f}, {high:+.3f}].
- **Model against the prior**: {versus}.
- **Where the bound falls most**: {where}. The paired differences are means over the
  same users with a 95 % paired bootstrap over users (10,000 resamples);
  {stats["n_users"]} users give a standard error of about {se:.3f} on a share near 0.5.
- **What it does not show**: the per-level view conditions on a correct prefix, so it
  says nothing about how the search ranks the target against other prefixes (the
  whole-item score); each level is judged for every user, also those whose prefix the search
  would already have dropped (the survival columns account for those). The popularity
  prior is a per-level constant (it ignores the user), the natural floor for a level: a
  model at or below it there reads no user signal at that level.
"""
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
    return page


DEFAULT_RUN = "runs/eager_recipe/anneal"


def write_ranks(out: Path, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)

    def plain(ranks: list[LevelRank]) -> list[list[int]]:
        return [[r.allowed, r.above, r.tied] for r in ranks]

    with (out / "ranks.jsonl").open("w") as handle:
        for row in rows:
            record = {**row, "model": plain(row["model"]), "prior": plain(row["prior"])}
            handle.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=DEFAULT_RUN, help="a finished train/anneal run folder")
    parser.add_argument("--users", type=int, default=None, help="only the first N users")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--page", default=str(REPO / "results" / "eager_level_diagnosis.md"))
    parser.add_argument("--out", default="runs/eager_level_diagnosis")
    args = parser.parse_args(argv)
    load, started, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
    found = diagnose(Path(args.run), args.users, args.device)
    stats = summary(found["rows"], found["beams"])
    write_ranks(Path(args.out), found["rows"])
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    page = write_page(Path(args.page), args, found, stats, wall, cpu, load)
    print(page.read_text())
    return page


if __name__ == "__main__":
    main()
