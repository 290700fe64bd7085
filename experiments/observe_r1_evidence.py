"""Observe-R1 vs its start and two GRPO baselines on the image-grounded instrument (issue 33).

One resumable driver: every arm x seed trains (the frozen-encoder CPU setting,
configs/observe_r1/smol-cpu.yaml) and is tested greedily on a fresh answer-balanced test set
with real and swapped images (`observe-r1 eval --image-ablation`); each finished arm x seed
writes a small per-row file under results/observe_r1_evidence/ (committed; runs/ is not), read
by experiments/observe_r1_evidence_report.py.

BUDGET PLAN (measured 2026-12-07 on this project's 2-core AMD EPYC, Zen 4 with AVX512-BF16,
so bf16 autocast; one torch thread, `taskset -c 1 nice -n 10`, beside 3-5 niced jobs of
other sessions, load average 5-7.5 on the 2 cores: wall seconds are under that load, the
CPU seconds are what the work itself costs):

- GRPO step of smol-cpu.yaml (1 prompt x 8 completions, <= 96 tokens, observe format,
  starter-level rows, 5 steps): 23-47 s wall, median 29 s; ~17 s CPU a step. The think
  format's responses are ~2.5x shorter (results/observe_r1_starter.md): less.
- Greedy test row (96 tokens, batch 32; 64 rows x real/blank/swap): 1.05-1.15 s wall and
  0.6 s CPU per row and condition. The real start tests (480 rows x real/swap): observe
  format 1,459 s wall, 757 s CPU (1.52 s wall, 0.79 s CPU an answer); think format 847 s
  wall, 544 s CPU. The ladder (72 rows x 8 rollouts, 16 prompts a call): 319 s wall, 234 s
  CPU (1.9 rollouts/s).
- Chosen: STEPS 60 (60 prompts, 480 completions a run; the starter's frozen Observe-R1 had
  reached its validation plateau by step 50 of 100), 72 training rows (natural answers; the
  ladder's order is trained once through), TEST_N 480 balanced rows (40 per family x
  level), swap only (blank optional: --blank, +50 % test time), validation on 40 balanced
  rows at steps 0, 30 and 60 (curves only), 3 training seeds per trained arm, eval seed 0.
- Cost per trained arm x seed: 60 steps (0.28 h CPU, ~0.5 h wall) + validation 120 answers
  + test 480 x 2 answers (0.18 h CPU, 0.3-0.55 h wall): ~0.46 h CPU, 0.8-1.05 h wall;
  21 trainings ~ 10 CPU-hours, 17-22 h of one shared core. The start (2 formats, 0.64 h
  wall) and the ladder (0.09 h) once, both done. In all ~10.5 CPU-hours, ~20 h of wall on
  one core at today's load: ~10 h of the 2 cores in 7 pieces of 3 arm x seeds each
  (~2.5-3 h a piece), two pieces side by side. Nothing is cut; if the load is higher, the
  third seed of the four ablation arms is what to drop first.
- Detectable effect (80 % power, two-sided, paired over the 480 rows): the per-row
  image-grounded difference of two models, (real - swap)_A - (real - swap)_B, has SD
  <= sqrt(2) x SD(real - swap) of one model. The start's pilot (64 balanced rows) gave SD
  0.47 (real 0.22, swap 0.11, real != swap on 23 % of rows): SD of a difference <= 0.67,
  standard error <= 0.031, smallest detectable difference <= 2.80 x 0.031 = 0.09 at alpha
  0.05 and <= 3.48 x 0.031 = 0.11 at the Holm first step of the primary family (0.05 / 6).
  The start's 480 test rows confirm it: SD 0.489, detectable <= 0.088 / <= 0.110.
  Averaging 3 seeds removes part of the row noise and adds the seed-to-seed spread; the
  report recomputes the bound from the start's 480 rows and gives each comparison's own
  detectable difference from its bootstrap standard error.

Usage (from the repository root; every step resumes, finished ones are skipped):

    export OMP_NUM_THREADS=1
    taskset -c 1 nice -n 10 .venv/bin/python experiments/observe_r1_evidence.py start data
    taskset -c 0 nice -n 10 .venv/bin/python experiments/observe_r1_evidence.py \
        observe-r1:1 grpo-think:1 grpo-observe:1     # a piece: 3 arm x seeds, ~2.5-3 h
    ... experiments/observe_r1_evidence.py no-bonus   # every seed of one arm (--seeds 1,2,3)
    .venv/bin/python experiments/observe_r1_evidence_report.py   # the results page

The pieces, primary arms first (two at a time, one per core; each ~2.5-3 h at today's load,
and a piece stopped at 3 h resumes where it stopped):

    1-3: observe-r1:S grpo-think:S grpo-observe:S      for S = 1, 2, 3
    4:   observe-r1-shuffled:1 no-bonus:1 no-weight:1
    5:   no-observe:1 observe-r1-shuffled:2 no-bonus:2
    6:   no-weight:2 no-observe:2 observe-r1-shuffled:3
    7:   no-bonus:3 no-weight:3 no-observe:3

Smoke check (minutes): add --out /tmp/ev --results /tmp/ev-res --config
configs/observe_r1/tiny.yaml --model tiny-qwen2.5-vl --steps 4 --train-n 12 --test-n 24
--valid-n 12 --save-steps 1 --max-new-tokens 24 --eval-batch 8, and pass --results /tmp/ev-res
--page /tmp/ev.md to the report.

Jobs: ``start`` (the rows, then the starting model's test in the observe and the think
format), ``data`` (the rows and the NeuraLadder), ``ARM:SEED`` or ``ARM`` (every seed of
``--seeds``; the rows and the ladder first). The rows and the ladder are made under a lock,
so two jobs side by side make them once. Arms (`ARMS`): observe-r1 (all components, ladder
order), observe-r1-shuffled, no-bonus, no-weight, no-observe (<think><answer>), grpo-think
(the project's GRPO baseline: shuffled, think format, no bonus, no weighting), grpo-observe
(the same in the observe format: the official baseline). Each trains with --set seed=SEED.

Markers: a step is done when its marker (``R/.done/<step>``, written to a temporary file and
renamed) exists; an arm x seed is done when its per-row file exists, even if ``R`` is gone.
``observe-r1 train --resume`` continues a killed run from its newest checkpoint (save_steps
10), ``observe-r1 eval`` resumes from its partial file. ``plan.json`` (written with the data)
holds the settings; a job with other settings is refused (start a new --results folder).
After its per-row file is written an arm's checkpoints and weights are deleted (--keep-runs
keeps them).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from model_zoo.hardware import cpu_model

ARMS = {  # arm -> (the config keys it changes from smol-cpu.yaml, its response format)
    "observe-r1": ([], "observe"),
    "observe-r1-shuffled": (["curriculum=shuffled"], "observe"),
    "no-bonus": (["use_bonus=false"], "observe"),
    "no-weight": (["use_dynamic_weight=false"], "observe"),
    "no-observe": (["response_format=think"], "think"),
    "grpo-think": (
        [
            "curriculum=shuffled",
            "response_format=think",
            "use_bonus=false",
            "use_dynamic_weight=false",
        ],
        "think",
    ),
    "grpo-observe": (
        ["curriculum=shuffled", "use_bonus=false", "use_dynamic_weight=false"],
        "observe",
    ),
}
START_FORMATS = ("observe", "think")
FAMILIES = "counting,dice,chart,geometry"
LEVELS = "starter,1"
DATA_SEED, VALID_SEED = 41, 42  # the starter used 31 and 32
EVAL_SEED = 0  # the swap partners: the same for every arm, so the swap is paired too


def cli() -> str:
    return str(Path(sys.executable).parent / "observe-r1")


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def done(r: Path, step: str) -> bool:
    return (r / ".done" / step).is_file()


def mark(r: Path, step: str) -> None:
    atomic_write(r / ".done" / step, time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))


def run(command: list[str], log: Path, seconds: Path | None = None, key: str = "") -> None:
    """Run a command (output appended to ``log``); add its wall and CPU seconds to
    ``seconds`` under ``key``, also when it is stopped (SIGTERM, Ctrl-C): a step's time
    adds up over the pieces it ran in."""
    print("+", " ".join(command), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log.open("a") as out:
            subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if seconds is not None:
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            add_seconds(seconds, key, time.time() - start, cpu)


def add_seconds(path: Path, key: str, wall: float, cpu: float) -> None:
    """Accumulate a step's seconds over the pieces it ran in (a resumed step adds up)."""
    seconds = json.loads(path.read_text()) if path.is_file() else {}
    seconds[f"{key}_wall_s"] = seconds.get(f"{key}_wall_s", 0) + round(wall, 1)
    seconds[f"{key}_cpu_s"] = seconds.get(f"{key}_cpu_s", 0) + round(cpu, 1)
    atomic_write(path, json.dumps(seconds, indent=1) + "\n")


def machine() -> dict:
    flags = Path("/proc/cpuinfo").read_text()
    return {
        "cpu": cpu_model(),
        "cpu_bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
        "cores_seen": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "nice": os.nice(0),
        "python": platform.python_version(),
    }


def commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return head or "unknown"


class Driver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.r = Path(args.out)
        self.res = Path(args.results)
        self.ablation = "blank,swap" if args.blank else "swap"
        self.plan = {
            "config": args.config,
            "model": args.model,
            "sets": args.set,
            "steps": args.steps,
            "train_n": args.train_n,
            "test_n": args.test_n,
            "valid_n": args.valid_n,
            "seeds": args.seeds,
            "arms": list(ARMS),
            "families": FAMILIES,
            "levels": LEVELS,
            "data_seed": DATA_SEED,
            "valid_seed": VALID_SEED,
            "eval_seed": EVAL_SEED,
            "image_ablation": self.ablation,
            "max_new_tokens": args.max_new_tokens,
            "save_steps": args.save_steps,
        }

    # -- the data, made once -------------------------------------------------------------
    def check_plan(self) -> None:
        path = self.res / "plan.json"
        if path.is_file():
            old = json.loads(path.read_text())
            for key, value in self.plan.items():
                if old.get(key) != value:
                    sys.exit(
                        f"error: {path}: {key} was {old.get(key)!r}, now {value!r}; rerun with "
                        "the plan's settings or use another --results folder"
                    )
        else:
            atomic_write(path, json.dumps(self.plan, indent=1) + "\n")

    def data(self, ladder: bool) -> None:
        """The rows (and with ``ladder`` the ladder), under a lock: a job side by side with
        another waits for the first's data instead of making it twice."""
        self.r.mkdir(parents=True, exist_ok=True)
        with (self.r / ".data.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.check_plan()
            self._rows()
            if ladder:
                self._ladder()

    def _rows(self) -> None:
        r, a, log = self.r, self.args, self.r / "logs" / "data.log"
        if not done(r, "synth"):
            for folder in ("data", "valid"):
                shutil.rmtree(r / folder, ignore_errors=True)
            common = ["--families", FAMILIES, "--levels", LEVELS, "--choice-share", "0"]
            run([cli(), "synth", "--out", str(r / "data"), "--n", str(a.train_n),
                 "--test-n", str(a.test_n), "--seed", str(DATA_SEED), *common,
                 "--answers", "natural", "--test-answers", "balanced"], log)  # fmt: skip
            run([cli(), "synth", "--out", str(r / "valid"), "--n", str(a.valid_n),
                 "--seed", str(VALID_SEED), *common, "--answers", "balanced"], log)  # fmt: skip
            mark(r, "synth")
        rows_file = self.res / "test_rows.json"
        if not rows_file.is_file():
            keep = ("id", "question", "answer", "family", "level", "choices")
            rows = [json.loads(x) for x in (r / "data" / "test.jsonl").read_text().splitlines()]
            rows = [{k: row[k] for k in keep if k in row} for row in rows]
            atomic_write(rows_file, json.dumps({"rows": rows}, separators=(",", ":")) + "\n")

    def _ladder(self) -> None:
        r, a, log = self.r, self.args, self.r / "logs" / "data.log"
        committed = self.res / "ladder.jsonl"  # the ladder is sampled: keep the one trained on
        if not done(r, "ladder"):
            if committed.is_file():
                shutil.copyfile(committed, r / "ladder.jsonl")
            else:
                command = [cli(), "ladder", "--input", str(r / "data" / "rows.jsonl")]
                command += ["--model", a.model, "--out", str(r / "ladder.jsonl")]
                command += ["--rollouts", "8", "--max-new-tokens", str(a.max_new_tokens)]
                command += ["--batch-size", str(a.ladder_batch), "--no-greedy-filter"]
                run(command, log, self.res / "ladder_seconds.json", "ladder")
                shutil.copyfile(r / "ladder.jsonl", committed)
            mark(r, "ladder")

    # -- evaluation and the per-row file -------------------------------------------------
    def evaluate(self, model: str, folder: Path, response_format: str, seconds: Path) -> None:
        if (folder / "eval.json").is_file() and not (folder / "predictions.partial.jsonl").exists():
            return
        a = self.args
        command = [cli(), "eval", "--model", model, "--data", str(self.r / "data" / "test.jsonl")]
        command += ["--out", str(folder), "--response-format", response_format]
        command += ["--max-new-tokens", str(a.max_new_tokens), "--batch-size", str(a.eval_batch)]
        command += ["--seed", str(EVAL_SEED), "--image-ablation", self.ablation]
        run(command, self.r / "logs" / f"{folder.parent.name}-{folder.name}.log", seconds, "eval")

    def per_row_file(self, name: str, arm: str, seed: int | None, folder: Path, fmt: str,
                     seconds: dict, run_dir: Path | None) -> None:  # fmt: skip
        rows = json.loads((self.res / "test_rows.json").read_text())["rows"]

        def greedy(path: Path) -> list[dict]:
            records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            return sorted((x for x in records if x["sample"] == 0), key=lambda x: x["row"])

        real = greedy(folder / "predictions.jsonl")
        if [x.get("id") for x in real] != [row["id"] for row in rows]:
            raise SystemExit(f"error: {folder}: its answered rows are not the test rows")
        report = json.loads((folder / "eval.json").read_text())
        bits = {"real": "".join("1" if x["correct"] else "0" for x in real)}
        for condition in self.ablation.split(","):
            records = greedy(folder / f"predictions.{condition}.jsonl")
            bits[condition] = "".join("1" if x["correct"] else "0" for x in records)
        ablation = report.get("image_ablation", {})
        out = {
            "arm": arm,
            "seed": seed,
            "format": fmt,
            "steps": 0 if seed is None else self.args.steps,
            "row_ids": [row["id"] for row in rows],
            "correct": bits,
            "formatted": "".join("1" if x["formatted"] else "0" for x in real),
            "mean_tokens": round(sum(x["tokens"] for x in real) / len(real), 1),
            "answer_distribution_accuracy": ablation.get("permutation_null", {}).get("accuracy"),
            "eval_precision": report.get("precision"),
            "seconds": seconds,
            "machine": machine(),
            "commit": commit(),
        }
        if run_dir is not None:
            out |= training_summary(run_dir)
        atomic_write(self.res / f"{name}.json", json.dumps(out, separators=(",", ":")) + "\n")
        print(f"wrote {self.res / f'{name}.json'}", flush=True)

    # -- the jobs ------------------------------------------------------------------------
    def start(self) -> None:
        for fmt in START_FORMATS:
            name = f"start-{fmt}"
            if (self.res / f"{name}.json").is_file():
                continue
            folder = self.r / name / "test"
            self.evaluate(self.args.model, folder, fmt, self.r / name / "seconds.json")
            seconds = json.loads((self.r / name / "seconds.json").read_text())
            self.per_row_file(name, "start", None, folder, fmt, seconds, None)

    def arm(self, arm: str, seed: int) -> None:
        name = f"{arm}-s{seed}"
        if (self.res / f"{name}.json").is_file():
            print(f"{name}: done ({self.res / f'{name}.json'})", flush=True)
            return
        keys, fmt = ARMS[arm]
        run_dir = self.r / name
        seconds_file = run_dir / "seconds.json"
        if not (run_dir / "final").is_dir() or not done(self.r, f"{name}-train"):
            sets = [
                f"train_file={self.r / 'ladder.jsonl'}",
                f"eval_file={self.r / 'valid' / 'rows.jsonl'}",
                f"eval_limit={self.args.valid_n}",
                f"eval_steps={max(1, self.args.steps // 2)}",
                f"save_steps={self.args.save_steps}",
                "save_total_limit=1",
                f"seed={seed}",
                *keys,
                *self.args.set,
            ]
            command = [
                cli(),
                "train",
                "--config",
                self.args.config,
                "--set",
                f"model={self.args.model}",
            ]
            for kv in sets:
                command += ["--set", kv]
            command += [
                "--output-dir",
                str(run_dir),
                "--max-steps",
                str(self.args.steps),
                "--resume",
            ]
            run(command, self.r / "logs" / f"{name}-train.log", seconds_file, "train")
            mark(self.r, f"{name}-train")
        self.evaluate(str(run_dir / "final"), run_dir / "test", fmt, seconds_file)
        seconds = json.loads(seconds_file.read_text())
        self.per_row_file(name, arm, seed, run_dir / "test", fmt, seconds, run_dir)
        if not self.args.keep_runs:  # the per-row file is what stays; weights are large
            for path in [*run_dir.glob("*checkpoint-*"), run_dir / "final"]:
                shutil.rmtree(path, ignore_errors=True)


def training_summary(run_dir: Path) -> dict:
    """Validation curve, zero-signal share and bonus rate of a run's metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return {}
    records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    steps = [x for x in records if "reward" in x]
    validation = [[x["step"], x["eval_accuracy"]] for x in records if "eval_accuracy" in x]
    mean = lambda key: (  # noqa: E731
        round(sum(x.get(key, 0) for x in steps) / len(steps), 4) if steps else None
    )
    return {
        "trained_steps": len(steps),
        "validation": validation,
        "zero_signal_step_share": round(
            sum(x.get("zero_signal_groups", 0) > 0 for x in steps) / max(1, len(steps)), 4
        ),
        "bonus_rate": mean("bonus_rate"),
        "train_reward_accuracy": mean("reward_accuracy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("jobs", nargs="+", help="data | start | ARM:SEED | ARM")
    parser.add_argument("--out", default="runs/observe_r1_evidence", help="work folder (large)")
    parser.add_argument("--results", default="results/observe_r1_evidence", help="per-row files")
    parser.add_argument("--config", default="configs/observe_r1/smol-cpu.yaml")
    parser.add_argument("--model", default="smolvlm-dino")
    parser.add_argument("--set", action="append", default=[], help="key=value for every arm")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--train-n", type=int, default=72)
    parser.add_argument("--test-n", type=int, default=480)
    parser.add_argument("--valid-n", type=int, default=40)
    parser.add_argument(
        "--seeds", type=lambda t: [int(x) for x in t.split(",")], default=[1, 2, 3], help="1,2,3"
    )
    parser.add_argument("--save-steps", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--eval-batch", type=int, default=32)
    parser.add_argument("--ladder-batch", type=int, default=16)
    parser.add_argument("--blank", action="store_true", help="also the blank-image condition")
    parser.add_argument("--keep-runs", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still books its seconds
    driver = Driver(args)
    jobs = []
    for job in args.jobs:
        arm, _, seed = job.partition(":")
        if job not in ("data", "start") and arm not in ARMS:
            parser.error(f"unknown job {job!r}; arms: {', '.join(ARMS)}")
        jobs.append(job)
    for job in jobs:
        driver.data(ladder=job != "start")  # the start's test needs no ladder
        if job == "data":
            continue
        if job == "start":
            driver.start()
            continue
        arm, _, seed = job.partition(":")
        for s in [int(seed)] if seed else args.seeds:
            driver.arm(arm, s)


if __name__ == "__main__":
    main()
