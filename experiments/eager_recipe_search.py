"""EAGER-LLM recipe search on MovieLens-100K (issue 35): one resumable driver, arm by arm.

Every arm is a named override of configs/eager_llm/smol-ml100k.yaml (``--set key=value`` of
existing keys only) measured the same way: stage 1 (`eager-llm train`) then stage 2
(`eager-llm anneal`), ranking validation on the same 500 validation users (the run's
``valid_users`` drawn with its ``seed`` by ``eager_llm.training.validation.sample_users``),
with the same index (runs/eager_recipe/index, so users, codes and the SASRec line are
shared). After an arm x seed finishes, a small file ``RESULTS/<arm>-s<seed>.json`` is
written (committed; runs/ is not): its overrides, its validation curve (samples seen ->
Recall@10 / NDCG@10 from each stage's metrics.jsonl), the per-user validation ranks of each
stage's best checkpoint (validation_ranks.jsonl), wall and CPU seconds, threads, CPU model,
commit. experiments/eager_recipe_search_report.py turns those files into the page.

Arm kinds:

- ``train``: stage 1 + stage 2 in ``ROOT/<arm>-s<seed>/{stage1,anneal}``. The base arm
  ``recipe`` seed 0 is the shipped config unchanged, trained by runs/eager_recipe/run.sh in
  ``--base`` (runs/eager_recipe): the driver reads that folder and NEVER trains, resumes or
  overwrites it (``--train-base`` lets it resume a killed base run with run.sh's command,
  never ``--overwrite``). The stage-2 command gets the arm's overrides except the stage-1-only
  keys and the keys the YAML's ``anneal:`` block sets itself (what editing the file's top
  level would do: ``tasks`` and a longer ``max_steps`` stay stage 1's).
- ``eval``: evaluation-only levers (beam scores over allowed tokens, seen-item removal):
  the base arm's final model (``--base``/anneal/final) re-ranks the same validation users
  through ``RankingValidation`` (the code path of training's validation, under the run's
  precision); no training.
- ``rl``: stage 3 (`eager-llm rl`, GRPO on trie beams) from the base arm's stage-2 model, with
  the values of the config's commented ``rl:`` block (validation every 50 steps).

BUDGET (the base run, runs/eager_recipe, one torch thread on a 2-core AMD EPYC shared with
other jobs; `--plan` recomputes it from the base run's metrics.jsonl once it has them): the
untrained model's validation of 500 users took 512 s; a stage-1 step of 8 samples ~14 s
(benchmarks/eager_train.py, 0.56 samples/s); so a trained arm is ~300 x 14 s + 5 x 512 s
(stage 1, ~1.9 h) + 30 LoRA steps + 2 validations (~0.4 h): ~2.3 core-hours; an eval arm is
one validation (~0.15 h). ``--plan`` prints every arm's estimate and status.

Usage (from the repository root; every job resumes, finished arms are skipped):

    export OMP_NUM_THREADS=1
    .venv/bin/python experiments/eager_recipe_search.py --plan          # arms, status, cost
    taskset -c 0 nice -n 10 .venv/bin/python experiments/eager_recipe_search.py recipe \\
        eval-control eval-allowed eval-remove eval-remove-allowed      # once the base is done
    taskset -c 1 nice -n 10 .venv/bin/python experiments/eager_recipe_search.py seqrec-only
    ... experiments/eager_recipe_search.py ARM[:SEED] ...               # any arms, in order
    .venv/bin/python experiments/eager_recipe_search_report.py          # the results page

A combination of levers is an arm defined on the command line (kept in RESULTS/plan.json):
``--define best-guess tasks=[seqrec] index_token_lr=2.0e-3`` then job ``best-guess``.
Two drivers side by side never run the same arm x seed (a lock per arm x seed).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from eager_llm.training.config import STAGE1_ONLY  # stage 2 never inherits these

CONFIG = "configs/eager_llm/smol-ml100k.yaml"
BASE_ARM = "recipe"
BASE_SEED = 0
# what the commented rl: block of smol-ml100k.yaml says (stage 3 is not measured yet)
RL_SETS = (
    "lora={r: 8, alpha: 32, dropout: 0.05}",
    "beams=8",
    "beta=0.04",
    "hit_weight=1.0",
    "rank_weight=1.0",
    "cooccurrence_weight=0.0",
    "max_steps=100",
    "learning_rate=1.0e-4",
    "eval_steps=50",
    "save_steps=50",
)


@dataclass(frozen=True)
class Arm:
    """One lever setting: ``kind`` train | eval | rl; ``sets``: config overrides (key=value,
    existing keys of ``EagerConfig`` only); ``seen`` / ``beam_scores``: an eval arm's
    decoding; ``lever``: which lever of issue 35 it measures."""

    kind: str
    lever: str
    note: str
    sets: tuple[str, ...] = ()
    seen: str = "keep"
    beam_scores: str = "vocabulary"


ARMS: dict[str, Arm] = {
    BASE_ARM: Arm("train", "base", "the shipped smol-ml100k.yaml unchanged (runs/eager_recipe)"),
    "eval-control": Arm(
        "eval",
        "decoding",
        "the base's final model re-ranked as in its validation (keep, "
        "vocabulary): the re-ranking reproduces the base's own number",
    ),
    "eval-allowed": Arm(
        "eval",
        "beam scores",
        "beam scores normalised over the allowed tokens",
        beam_scores="allowed",
    ),
    "eval-remove": Arm(
        "eval",
        "seen removal",
        "no training item of the user ranked (protocol: removed)",
        seen="remove",
    ),
    "eval-remove-allowed": Arm(
        "eval",
        "seen removal + beam scores",
        "both decoding levers (protocol: removed)",
        seen="remove",
        beam_scores="allowed",
    ),
    "seqrec-only": Arm(
        "train",
        "seqrec share",
        "seqrec only (GCT kept): all 2,400 samples are histories",
        ("tasks=[seqrec]",),
    ),
    "seqrec-heavy": Arm(
        "train",
        "seqrec share",
        "the two fusion tasks dropped: ~2/3 of samples seqrec",
        ("tasks=[seqrec, item2index, index2item]",),
    ),
    "history-10": Arm("train", "history length", "10 history items", ("max_history=10",)),
    "history-40": Arm(
        "train",
        "history length",
        "40 history items (rows up to ~270 tokens)",
        ("max_history=40", "max_length=384"),
    ),
    "index-lr-2e-3": Arm(
        "train",
        "index-token lr",
        "index-token rows at 20x learning_rate (5x shipped)",
        ("index_token_lr=2.0e-3",),
    ),
    "index-lr-1e-4": Arm(
        "train",
        "index-token lr",
        "index-token rows at learning_rate (1x)",
        ("index_token_lr=1.0e-4",),
    ),
    "init-title": Arm(
        "train",
        "index-token init",
        "rows from item titles instead of projected embeddings",
        ("index_token_init=title",),
    ),
    "lr-3e-4": Arm(
        "train",
        "learning rate",
        "3x learning_rate (index rows unchanged at 5e-4)",
        ("learning_rate=3.0e-4",),
    ),
    "train-remove": Arm(
        "train",
        "seen removal",
        "validation and checkpoint choice under seen removal",
        ("valid_seen=remove",),
    ),
    "steps-900": Arm(
        "train",
        "longer training",
        "3x the steps (7,200 samples), validation every 150",
        ("max_steps=900", "eval_steps=150", "save_steps=150"),
    ),
    "rl": Arm("rl", "stage 3", "GRPO on trie beams from the base's stage-2 model", RL_SETS),
}
# the order of a full search: cheap eval arms first, then one lever per trained arm, the
# long ones last (their estimates: --plan)
ORDER = list(ARMS)


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return head or "unknown"


def cpu_name() -> str:
    from model_zoo.hardware import cpu_model

    return cpu_model()


def overrides(sets: Sequence[str]) -> dict:
    """``key=value`` strings -> {key: value}, the value read as YAML (as ``--set`` does)."""
    found = {}
    for item in sets:
        key, _, raw = item.partition("=")
        found[key.strip()] = yaml.safe_load(raw)
    return found


def stage_done(folder: Path) -> bool:
    """A stage is done once its final/ holds run_settings.json (written last by save_final)."""
    return (folder / "final" / "run_settings.json").is_file()


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# -- the work a runner does: commands, and in-process re-ranking ---------------------------
class Runner:
    """Runs the commands and the eval arms' re-ranking; tests substitute a fake one."""

    def command(self, command: list[str], log: Path) -> None:
        print("+", " ".join(command), flush=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT)

    def rerank(
        self,
        run: Path,
        index: Path,
        *,
        seed: int,
        users: int,
        beams: int,
        seen: str,
        beam_scores: str,
        batch_size: int,
    ) -> dict:
        """Re-rank the validation users (the sample training validated on) with ``run``'s
        final model: RankingValidation, under the run's precision."""
        import torch

        from eager_llm.data import leave_one_out
        from eager_llm.run_decoder import RunDecoder, load_run
        from eager_llm.training.index_files import load_index, load_indexed_dataset
        from eager_llm.training.validation import RankingValidation, sample_users

        loaded = load_run(run)
        files = load_index(index)
        interactions, _ = load_indexed_dataset(files)
        split = leave_one_out(interactions, max_history=loaded.max_history)
        examples = sample_users(split.valid, users, seed)
        validation = RankingValidation.build(
            examples,
            loaded.item_index,
            files.item_ids,
            loaded.max_history,
            loaded.template,
            seen_items=[split.train[e.user].tolist() for e in examples]
            if seen == "remove"
            else None,
            beams=beams,
            batch_size=batch_size,
            beam_scores=beam_scores,
        )
        decoder = RunDecoder(loaded, "float32")
        bf16 = loaded.precision == "bf16-autocast"
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            found = validation(decoder.model, decoder.tokenizer)
        ranks = [None if r == float("inf") else int(r) for r in found["ranks"]]
        return {"recall@10": found["recall@10"], "ndcg@10": found["ndcg@10"], "ranks": ranks}


def timed(seconds: dict, key: str, work) -> object:
    """Run ``work()``; add its wall and CPU seconds (own process and children) under ``key``,
    also when it is stopped, so a resumed step adds up over its pieces."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    start = time.time()
    try:
        return work()
    finally:
        after = (
            resource.getrusage(resource.RUSAGE_CHILDREN),
            resource.getrusage(resource.RUSAGE_SELF),
        )
        cpu = sum(
            a.ru_utime - b.ru_utime + a.ru_stime - b.ru_stime
            for a, b in zip(after, before, strict=True)
        )
        seconds[f"{key}_wall_s"] = round(seconds.get(f"{key}_wall_s", 0) + time.time() - start, 1)
        seconds[f"{key}_cpu_s"] = round(seconds.get(f"{key}_cpu_s", 0) + cpu, 1)


# -- reading a finished stage ------------------------------------------------------------------
def stage_summary(folder: Path) -> dict:
    """A stage folder's validation curve, trained samples and its best checkpoint's ranks."""
    from eager_llm.training.run_log import read_validation_ranks

    records = read_jsonl(folder / "metrics.jsonl")
    points: dict[int, dict] = {}
    for r in records:
        if r.get("eval_recall@10") is not None:
            points[r["step"]] = r  # a step logged twice (resumed): the last line
    curve = [
        [p["step"], p["samples"], p["eval_recall@10"], p["eval_ndcg@10"], p.get("seconds")]
        for _, p in sorted(points.items())
    ]
    trained = [r for r in records if "loss" in r]
    out = {
        "curve": curve,
        "samples": max([r.get("samples", 0) for r in records], default=0),
        "samples_per_second": [
            r["samples_per_second"] for r in trained if r.get("samples_per_second")
        ],
    }
    settings_path = folder / "final" / "run_settings.json"
    settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
    best_step = None
    if (checkpoint := settings.get("best_checkpoint")) and (
        match := re.search(r"checkpoint-(\d+)$", str(checkpoint))
    ):
        best_step = int(match.group(1))
    if best_step is None and curve:  # the first maximum, as Trainer keeps it
        best_step = max(curve, key=lambda p: (p[2], -p[0]))[0]
    out["best_step"] = best_step
    if best_step is not None and (folder / "validation_ranks.jsonl").is_file():
        ranks = read_validation_ranks(folder).get(best_step)
        if ranks is not None:
            out["best_ranks"] = [None if r == float("inf") else int(r) for r in ranks]
    out["precision"] = settings.get("precision")
    return out


def combined_curve(stages: dict[str, dict]) -> list[list]:
    """[samples seen in all stages, recall@10, ndcg@10, stage, step]: stage 1's points, then
    each later stage's points after its step 0 (its step 0 is the model it starts from),
    shifted by the samples of the stages before it."""
    out, offset = [], 0
    for name in ("stage1", "anneal", "rl"):
        if name not in stages:
            continue
        for step, samples, recall, ndcg, _ in stages[name]["curve"]:
            if name == "stage1" or step > 0:
                out.append([offset + samples, recall, ndcg, name, step])
        offset += stages[name]["samples"]
    return out


def best_point(stages: dict[str, dict], curve: list[list]) -> dict | None:
    """The best validation point that has per-user ranks (each stage's best checkpoint;
    a later stage whose best is its step 0 repeats the stage before it): the highest
    Recall@10, the earlier stage on ties."""
    found = None
    for name in ("stage1", "anneal", "rl"):
        stage = stages.get(name)
        if not stage or "best_ranks" not in stage:
            continue
        point = next((p for p in curve if p[3] == name and p[4] == stage["best_step"]), None)
        if point is not None and (found is None or point[1] > found["recall@10"]):
            found = {
                "stage": name,
                "step": point[4],
                "samples": point[0],
                "recall@10": point[1],
                "ndcg@10": point[2],
                "ranks": stage["best_ranks"],
            }
    return found


# -- the driver --------------------------------------------------------------------------------
@dataclass
class Settings:
    config: str = CONFIG
    index: str = "runs/eager_recipe/index"
    base: str = "runs/eager_recipe"
    root: str = "runs/eager_recipe_search"
    results: str = "results/eager_recipe_search"
    cli: str = field(default_factory=lambda: str(Path(sys.executable).parent / "eager-llm"))
    train_base: bool = False
    batch_size: int = 16
    keep_checkpoints: bool = False


class Driver:
    def __init__(
        self, settings: Settings, runner: Runner | None = None, arms: dict[str, Arm] | None = None
    ) -> None:
        self.s = settings
        self.runner = runner or Runner()
        self.arms = dict(arms or ARMS)
        self.root, self.results = Path(settings.root), Path(settings.results)
        raw = yaml.safe_load(Path(settings.config).read_text()) or {}
        self.yaml = raw
        self.anneal_block = set((raw.get("anneal") or {}).keys())
        self.rl_block = set((raw.get("rl") or {}).keys())

    # -- names and folders
    def name(self, arm: str, seed: int) -> str:
        return f"{arm}-s{seed}"

    def is_base(self, arm: str, seed: int) -> bool:
        return arm == BASE_ARM and seed == BASE_SEED

    def folder(self, arm: str, seed: int) -> Path:
        return Path(self.s.base) if self.is_base(arm, seed) else self.root / self.name(arm, seed)

    def result_file(self, arm: str, seed: int) -> Path:
        return self.results / f"{self.name(arm, seed)}.json"

    def value(self, arm: str, key: str):
        return overrides(self.arms[arm].sets).get(key, self.yaml.get(key))

    # -- commands
    def stage_sets(self, arm: str, seed: int, stage: str) -> list[str]:
        """The ``--set`` items of ``stage``: the arm's overrides (stage 2 and 3 without the
        stage-1-only keys and the keys their own YAML block sets), then ``seed`` and
        ``valid_seed`` (the base's seed: every arm x seed validates on the same users)."""
        sets = list(self.arms[arm].sets)
        if stage in ("anneal", "rl") and self.arms[arm].kind == "train":
            block = self.anneal_block if stage == "anneal" else self.rl_block
            sets = [
                kv
                for kv in sets
                if (k := kv.partition("=")[0].strip()) not in STAGE1_ONLY and k not in block
            ]
        return [*sets, f"seed={seed}", f"valid_seed={BASE_SEED}"]

    def train_commands(self, arm: str, seed: int) -> list[tuple[str, list[str]]]:
        """(stage, command) of each stage not done yet, in order. The base arm gets run.sh's
        commands (no --set), and only with --train-base."""
        folder = self.folder(arm, seed)
        base = self.is_base(arm, seed)
        out = []
        for stage, verb in (("stage1", "train"), ("anneal", "anneal")):
            if stage_done(folder / stage):
                continue
            command = [self.s.cli, verb, "--config", self.s.config, "--index", self.s.index]
            if verb == "anneal":
                command += ["--from", str(folder / "stage1")]
            command += ["--output-dir", str(folder / stage)]
            if (folder / stage).exists():
                command.append("--resume")
            if not base:
                for kv in self.stage_sets(arm, seed, stage):
                    command += ["--set", kv]
            out.append((stage, command))
        return out

    def rl_command(self, arm: str, seed: int) -> list[str] | None:
        folder = self.folder(arm, seed)
        if stage_done(folder / "rl"):
            return None
        start = self.folder(BASE_ARM, seed) / "anneal"
        command = [
            self.s.cli,
            "rl",
            "--config",
            self.s.config,
            "--index",
            self.s.index,
            "--from",
            str(start),
            "--output-dir",
            str(folder / "rl"),
        ]
        if (folder / "rl").exists():
            command.append("--resume")
        for kv in self.stage_sets(arm, seed, "rl"):
            command += ["--set", kv]
        return command

    # -- one arm x seed
    def run(self, arm: str, seed: int) -> str:
        """Run (or skip) one arm x seed; returns its status: done, skipped (why), wrote."""
        name = self.name(arm, seed)
        if self.result_file(arm, seed).is_file():
            print(f"{name}: done ({self.result_file(arm, seed)})", flush=True)
            return "done"
        lock_path = self.root / ".locks" / f"{name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"{name}: running in another driver; skipped", flush=True)
                return "skipped: locked"
            return self._run_locked(arm, seed)

    def _run_locked(self, arm: str, seed: int) -> str:
        kind = self.arms[arm].kind
        name = self.name(arm, seed)
        folder = self.folder(arm, seed)
        base_anneal = self.folder(BASE_ARM, seed) / "anneal"
        if kind in ("eval", "rl") and not stage_done(base_anneal):
            print(f"{name}: needs {base_anneal}/final (the base arm's stage 2); skipped")
            return "skipped: base not done"
        seconds_file = (self.root / name if self.is_base(arm, seed) else folder) / "seconds.json"
        seconds = json.loads(seconds_file.read_text()) if seconds_file.is_file() else {}

        def save_seconds() -> None:
            atomic_write(seconds_file, json.dumps(seconds, indent=1) + "\n")

        base_done = stage_done(folder / "stage1") and stage_done(folder / "anneal")
        if kind == "train":
            if self.is_base(arm, seed) and not self.s.train_base and not base_done:
                print(
                    f"{name}: the base run in {folder} is not finished (it is run by "
                    f"{folder}/run.sh; --train-base resumes it); skipped",
                    flush=True,
                )
                return "skipped: base running elsewhere"
            for stage, command in self.train_commands(arm, seed):
                log = self.root / "logs" / f"{name}-{stage}.log"
                try:
                    timed(seconds, stage, lambda c=command, g=log: self.runner.command(c, g))
                finally:
                    save_seconds()
            stages = {s: stage_summary(folder / s) for s in ("stage1", "anneal")}
        elif kind == "rl":
            if (command := self.rl_command(arm, seed)) is not None:
                log = self.root / "logs" / f"{name}-rl.log"
                try:
                    timed(seconds, "rl", lambda: self.runner.command(command, log))
                finally:
                    save_seconds()
            base = self.folder(BASE_ARM, seed)
            stages = {s: stage_summary(base / s) for s in ("stage1", "anneal")}
            stages["rl"] = stage_summary(folder / "rl")
        else:
            stages = self._eval_arm(arm, seed, folder, seconds, save_seconds)
        self.write_result(arm, seed, stages, seconds)
        if kind != "eval" and not self.is_base(arm, seed) and not self.s.keep_checkpoints:
            for stage in ("stage1", "anneal", "rl"):  # ~1.5 GB each; final/ stays
                for path in (folder / stage).glob("checkpoint-*"):
                    shutil.rmtree(path, ignore_errors=True)
        return "wrote"

    def _eval_arm(self, arm, seed, folder, seconds, save_seconds) -> dict:
        a = self.arms[arm]
        ranks_file = folder / "rerank.json"
        base = self.folder(BASE_ARM, seed)
        if not ranks_file.is_file():
            users = int(self.value(arm, "valid_users"))
            beams = int(self.value(arm, "valid_beams"))
            try:
                found = timed(
                    seconds,
                    "rerank",
                    lambda: self.runner.rerank(
                        base / "anneal",
                        Path(self.s.index),
                        seed=seed,
                        users=users,
                        beams=beams,
                        seen=a.seen,
                        beam_scores=a.beam_scores,
                        batch_size=self.s.batch_size,
                    ),
                )
            finally:
                save_seconds()
            atomic_write(ranks_file, json.dumps(found) + "\n")
        found = json.loads(ranks_file.read_text())
        stages = {s: stage_summary(base / s) for s in ("stage1", "anneal")}
        total = sum(stages[s]["samples"] for s in stages)
        stages["rerank"] = {
            "curve": [[0, total, found["recall@10"], found["ndcg@10"], None]],
            "samples": 0,
            "best_step": 0,
            "best_ranks": found["ranks"],
        }
        return stages

    def write_result(self, arm: str, seed: int, stages: dict, seconds: dict) -> None:
        a = self.arms[arm]
        if a.kind == "eval":
            point = stages["rerank"]["curve"][0]
            curve = [[point[1], point[2], point[3], "rerank", 0]]
            best = {
                "stage": "rerank",
                "step": 0,
                "samples": point[1],
                "recall@10": point[2],
                "ndcg@10": point[3],
                "ranks": stages["rerank"]["best_ranks"],
            }
            seen, beam_scores = a.seen, a.beam_scores
            of = self.name(BASE_ARM, seed)
        else:
            curve = combined_curve(stages)
            best = best_point(stages, curve)
            seen = self.value(arm, "valid_seen")
            beam_scores = self.value(arm, "valid_beam_scores")
            of = self.name(BASE_ARM, seed) if a.kind == "rl" else None
        if self.is_base(arm, seed):  # run by run.sh: its timings.txt has the wall seconds
            seconds = {**base_timings(Path(self.s.base)), **seconds}
        record = {
            "arm": arm,
            "seed": seed,
            "kind": a.kind,
            "lever": a.lever,
            "note": a.note,
            "overrides": list(a.sets),
            "of": of,
            "folder": str(self.folder(arm, seed)),
            "config": self.s.config,
            "index": self.s.index,
            "protocol": {"seen": seen, "beam_scores": beam_scores},
            "valid_users": int(self.value(arm, "valid_users")),
            "valid_seed": BASE_SEED,  # stage_sets passes it to every trained arm
            "batch": int(self.value(arm, "per_device_train_batch_size"))
            * int(self.value(arm, "gradient_accumulation_steps") or 1),
            "curve": curve,
            "stages": {
                s: {k: v for k, v in st.items() if k != "best_ranks"} for s, st in stages.items()
            },
            "best": best,
            "seconds": seconds,
            "threads": os.environ.get("OMP_NUM_THREADS", "unset")
            if not self.is_base(arm, seed)
            else base_threads(Path(self.s.base)),
            "cpu": cpu_name(),
            "commit": commit(),
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write(self.result_file(arm, seed), json.dumps(record, separators=(",", ":")) + "\n")
        print(f"wrote {self.result_file(arm, seed)}", flush=True)

    # -- the plan
    def record_plan(self, seeds: Sequence[int]) -> None:
        """RESULTS/plan.json: every arm's definition and the seeds asked for (the report
        lists what is pending from it); an arm redefined differently is an error."""
        path = self.results / "plan.json"
        old = json.loads(path.read_text()) if path.is_file() else {"arms": {}, "seeds": [0]}
        for name, arm in self.arms.items():
            known = old["arms"].get(name)
            if known is not None and known != asdict(arm) | {"sets": list(arm.sets)}:
                sys.exit(
                    f"error: {path}: arm {name!r} was {known}, now {asdict(arm)}; "
                    "give the new setting another name"
                )
        plan = {
            "config": self.s.config,
            "index": self.s.index,
            "base": self.s.base,
            "seeds": sorted(set(old.get("seeds", [0])) | set(seeds)),
            "arms": {
                **old["arms"],
                **{n: asdict(a) | {"sets": list(a.sets)} for n, a in self.arms.items()},
            },
        }
        atomic_write(path, json.dumps(plan, indent=1) + "\n")

    def estimate(self, arm: str) -> dict:
        """Core-hours of an arm at the base run's speed (its metrics.jsonl when it has
        them, else the config comment's benchmark: 14.2 s a step of 8, 512 s a validation)."""
        base = Path(self.s.base)
        speed = {}
        for stage in ("stage1", "anneal"):
            s = stage_summary(base / stage) if (base / stage).is_dir() else {"curve": []}
            rates = sorted(s.get("samples_per_second", []))
            valid = sorted(p[4] for p in s["curve"] if p[4])
            speed[stage] = (
                1 / rates[len(rates) // 2] if rates else 14.2 / 8,
                valid[len(valid) // 2] if valid else 512.0,
                bool(rates),
            )
        kind = self.arms[arm].kind
        history = float(self.value(arm, "max_history"))
        tokens = (6 * history + 30) / (6 * 20 + 30)  # ~6 tokens an item, ~30 of instruction
        s_sample, s_valid, measured = speed["stage1"]
        if kind == "eval":
            hours = s_valid / 3600
        elif kind == "rl":  # not timed yet: a GRPO step decodes and trains 8 beams x 8 examples
            sets = overrides(RL_SETS)
            steps, every = sets["max_steps"], sets["eval_steps"]
            hours = (steps * 8 * s_sample * 4 + (1 + -(-steps // every)) * s_valid) / 3600
        else:
            steps = int(self.value(arm, "max_steps"))
            every = int(self.value(arm, "eval_steps"))
            batch = int(self.value(arm, "per_device_train_batch_size"))
            a_sample, a_valid, _ = speed["anneal"]
            anneal_steps = (self.yaml.get("anneal") or {}).get("max_steps", 30)
            hours = (
                tokens
                * (
                    steps * batch * s_sample
                    + (1 + -(-steps // every)) * s_valid
                    + anneal_steps * batch * a_sample
                    + 2 * a_valid
                )
                / 3600
            )
        return {
            "hours": hours,
            "measured": measured,
            "guess": kind == "rl",
            "s_per_step": s_sample * 8,
            "s_per_validation": s_valid,
        }

    def status(self, arm: str, seed: int) -> str:
        if self.result_file(arm, seed).is_file():
            return "done"
        folder = self.folder(arm, seed)
        kind = self.arms[arm].kind
        stages = {"train": ("stage1", "anneal"), "rl": ("rl",), "eval": ()}[kind]
        started = [s for s in stages if (folder / s).exists()]
        if self.is_base(arm, seed):
            return "base: " + (
                ", ".join(f"{s} {'done' if stage_done(folder / s) else 'running'}" for s in started)
                or "not started"
            )
        return "partial: " + ", ".join(started) if started else "pending"

    def print_plan(self, jobs: Sequence[tuple[str, int]]) -> None:
        total = 0.0
        print(f"{'arm x seed':<26} {'kind':<6} {'core-h':>7}  status  overrides")
        for arm, seed in jobs:
            e = self.estimate(arm)
            status = self.status(arm, seed)
            if status != "done" and not self.is_base(arm, seed):
                total += e["hours"]
            mark = "?" if e["guess"] else ""
            print(
                f"{self.name(arm, seed):<26} {self.arms[arm].kind:<6} {e['hours']:>6.2f}{mark:1} "
                f" {status}  {' '.join(self.arms[arm].sets) or '-'}"
            )
        e = self.estimate(BASE_ARM)
        step = "the base run's" if e["measured"] else "the config's benchmark:"
        print(
            f"still to run: ~{total:.1f} core-hours at one thread ({step} "
            f"{e['s_per_step']:.1f} s a stage-1 step of 8 samples, {e['s_per_validation']:.0f} s "
            "a validation of the base; history length scales both; ? = a guess)"
        )


def base_timings(base: Path) -> dict:
    """Wall seconds of the base's train and anneal from run.sh's timings.txt ("N s: cmd")."""
    found = {}
    path = base / "timings.txt"
    if path.is_file():
        for line in path.read_text().splitlines():
            if m := re.match(r"(\d+) s: .* (train|anneal) ", line + " "):
                key = "stage1" if m.group(2) == "train" else "anneal"
                found[f"{key}_wall_s"] = found.get(f"{key}_wall_s", 0) + int(m.group(1))
    return found


def base_threads(base: Path) -> str:
    path = base / "run.sh"
    if path.is_file() and (m := re.search(r"OMP_NUM_THREADS=(\d+)", path.read_text())):
        return m.group(1)
    return "unknown"


def parse_jobs(jobs: Sequence[str], arms: dict[str, Arm], seeds: Sequence[int]) -> list:
    out = []
    for job in jobs:
        if job == "all":
            out += [(a, s) for a in arms for s in seeds]
            continue
        arm, _, seed = job.partition(":")
        if arm not in arms:
            raise SystemExit(f"error: unknown arm {arm!r}; arms: {', '.join(arms)}")
        out += [(arm, int(seed))] if seed else [(arm, s) for s in seeds]
    return out


def main(argv: Sequence[str] | None = None, runner: Runner | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("jobs", nargs="*", help="ARM, ARM:SEED or all (default with --plan: all)")
    parser.add_argument("--plan", action="store_true", help="print arms, status, cost; run none")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--index", default="runs/eager_recipe/index")
    parser.add_argument("--base", default="runs/eager_recipe", help="the base arm's folder")
    parser.add_argument("--root", default="runs/eager_recipe_search", help="other arms' folders")
    parser.add_argument("--results", default="results/eager_recipe_search")
    parser.add_argument("--seeds", type=lambda t: [int(x) for x in t.split(",")], default=[0])
    parser.add_argument(
        "--define",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "KEY=VALUE"),
        help="a train arm of several overrides",
    )
    parser.add_argument(
        "--train-base",
        action="store_true",
        help="resume the base run if it was killed (never overwrites it)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="eval arms' users a batch")
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep a finished arm's checkpoints (final/ is always kept)",
    )
    args = parser.parse_args(argv)
    arms = dict(ARMS)
    for name, *sets in args.define:
        if name in ARMS or not sets or any("=" not in kv for kv in sets):
            parser.error(f"--define {name}: a new arm name, then KEY=VALUE items")
        arms[name] = Arm("train", "combination", "levers combined", tuple(sets))
    settings = Settings(
        config=args.config,
        index=args.index,
        base=args.base,
        root=args.root,
        results=args.results,
        train_base=args.train_base,
        batch_size=args.batch_size,
        keep_checkpoints=args.keep_checkpoints,
    )
    driver = Driver(settings, runner, arms)
    jobs = parse_jobs(args.jobs or (["all"] if args.plan else []), arms, args.seeds)
    if args.plan:
        driver.print_plan(jobs)
        return
    if not jobs:
        parser.error("name the arms to run (or --plan)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still books its seconds
    driver.record_plan(sorted({s for _, s in jobs}))
    failed = []
    for arm, seed in jobs:  # a failed arm is reported and the next one runs
        try:
            driver.run(arm, seed)
        except subprocess.CalledProcessError as error:
            failed.append(driver.name(arm, seed))
            print(f"{driver.name(arm, seed)}: failed ({error}); see its log", flush=True)
    if failed:
        sys.exit(f"error: failed: {', '.join(failed)} (rerun to resume them)")


if __name__ == "__main__":
    main()
