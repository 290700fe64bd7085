"""One prepared check of the GPU path (issue #34), sized for one H100/H200 and minutes.

    python experiments/gpu_check.py --device cuda --out OUT [--work DIR] [--budget 420]

Each step runs in its own process with a time limit (a crash or hang of one is recorded
and the others still run), all of them inside ``--budget`` seconds:

- ``versions``: torch, the CUDA device, transformers, TRL, PEFT, accelerate, datasets,
  math-verify, each against the project's pin (``pyproject.toml``);
- ``grpo-*``: Observe-R1 GRPO steps through ``observe_r1.training.train.train`` with
  ``configs/observe_r1/tiny.yaml`` and ``bf16=true`` on the zoo's tiny random
  ``tiny-qwen2.5-vl`` and ``tiny-llava`` (built on the spot), and once with
  ``share_prompt_forward=true``: weights moved, fp32 weights kept, steps/s;
- ``shared-prompt``: ``tests/observe_r1/training/test_shared_prompt.py``'s check that the
  shared-prompt forward equals TRL's stock one (log-probs, entropies, gradients), run on
  the device (``OBSERVE_EAGER_TEST_DEVICE``);
- ``observe-eval``: ``observe-r1 eval --device DEVICE`` of the trained tiny Qwen2.5-VL;
- ``eager-stage1`` and ``eager-eval``: EAGER-LLM stage 1 under ``bf16=true`` on the toy
  catalogue (:mod:`eager_llm.toy`), then its trie-decoded ranking of the test users
  (``eager-llm eval``'s decoder) on the device.

Writes one page, ``OUT/gpu_check.md`` (and each step's output in ``OUT/gpu_check.log``).
``--device cpu`` rehearses the whole check on a machine without a GPU; its page says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model_zoo.hardware import cpu_model

REPO = Path(__file__).resolve().parents[1]
OBSERVE_TINY = REPO / "configs" / "observe_r1" / "tiny.yaml"
EAGER_TINY = REPO / "configs" / "eager_llm" / "tiny.yaml"
PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "math-verify",
            "huggingface-hub", "tokenizers", "pyarrow", "numpy")  # fmt: skip
GRPO_STEPS = 4
EAGER_STEPS = 8
TEST_DEVICE_ENV = "OBSERVE_EAGER_TEST_DEVICE"
LIMITS = {"cuda": (420, 150), "cpu": (1800, 600)}  # seconds: all steps, one step


# ---- pure helpers -----------------------------------------------------------------------


def pin_verdict(version: str | None, pin: str | None) -> str:
    """How an installed ``version`` stands to the project's requirement ``pin``."""
    from packaging.specifiers import SpecifierSet

    if version is None:
        return "missing"
    if not pin:
        return "not pinned"
    specifier = SpecifierSet(pin)
    inside = specifier.contains(version.split("+")[0], prereleases=True)
    return "inside the pin" if inside else f"OUTSIDE the pin ({pin})"


def project_pins(pyproject_text: str) -> dict[str, str]:
    """Package name (normalised) -> version specifier of the project's dependencies, read
    from the ``dependencies = [...]`` list of ``pyproject.toml``'s text."""
    from packaging.requirements import Requirement

    block = pyproject_text.split("\ndependencies = [", 1)[1].split("]", 1)[0]
    requirements = [Requirement(line) for line in re.findall(r'"([^"]+)"', block)]
    return {r.name.lower().replace("_", "-"): str(r.specifier) for r in requirements}


def weight_changes(before: dict, after: dict) -> dict:
    """Compare two state dicts (name -> tensor) on the names and shapes they share: how many
    tensors moved, of how many, and the dtypes of ``after``'s floating tensors."""
    shared = [n for n, t in after.items() if n in before and before[n].shape == t.shape]
    floating = [n for n in shared if after[n].is_floating_point()]
    moved = [n for n in floating if not before[n].to(after[n].dtype).equal(after[n])]
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in after.values()})
    still = [n for n in floating if n not in moved]
    return {"moved": len(moved), "compared": len(floating), "dtypes": dtypes, "unmoved": still}


def steady_rate(seconds: list[float]) -> float | None:
    """Steps per second over the steps after the first (the first pays warm-up)."""
    steady = seconds[1:] or seconds
    return len(steady) / sum(steady) if steady and sum(steady) > 0 else None


def status_of(returncode: int | None, timed_out: bool, result: dict | None) -> str:
    """A step's one-word result."""
    if timed_out:
        return "TIMEOUT"
    if returncode != 0 or result is None:
        return "FAILED"
    return "ok" if result.get("ok") else "FAILED"


# ---- steps (each runs in its own process) ------------------------------------------------


def _safetensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    tensors = {}
    for file in sorted(Path(folder).glob("*.safetensors")):
        tensors.update(load_file(file))
    return tensors


def _peak_gib(device: str) -> float | None:
    import torch

    if device != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def step_versions(device: str, work: Path) -> dict:
    import importlib.metadata as metadata

    import torch

    pins = project_pins((REPO / "pyproject.toml").read_text())
    rows = []
    for name in PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = None
        rows.append(
            [name, version or "-", pins.get(name, "-"), pin_verdict(version, pins.get(name))]
        )
    facts = {"python": platform.python_version(), "torch_cuda": torch.version.cuda}
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        facts |= {
            "gpu": properties.name,
            "gpu_memory_gib": round(properties.total_memory / 2**30, 1),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "bf16_native": torch.cuda.is_bf16_supported(including_emulation=False),
        }
    else:
        facts["gpu"] = "none (torch.cuda.is_available() is False)"
    ok = device == "cpu" or torch.cuda.is_available()
    return {"ok": ok, "facts": facts, "versions": rows}


def step_grpo(device: str, work: Path, model: str, shared: bool = False) -> dict:
    from model_zoo import resolve
    from model_zoo.training_guards import read_records
    from observe_r1.demo import draw_counting_rows
    from observe_r1.training.config import load_config
    from observe_r1.training.train import engine_keeps_fp32_master, policy_dtype, train

    rows = work / "rows" / "train.jsonl"
    if not rows.is_file():
        draw_counting_rows(rows.parent, 8)
    out = work / f"grpo-{model}{'-shared' if shared else ''}"
    overrides = [
        f"model={model}",
        f"train_file={rows}",
        f"output_dir={out}",
        f"use_cpu={str(device == 'cpu').lower()}",
        "bf16=true",
        f"max_steps={GRPO_STEPS}",
        f"save_steps={GRPO_STEPS}",
        f"share_prompt_forward={str(shared).lower()}",
        *(["gradient_checkpointing=false"] if shared else []),  # it needs the prompt's cache
    ]
    config = load_config(OBSERVE_TINY, overrides)
    dtype = policy_dtype(config.bf16, engine_keeps_master=engine_keeps_fp32_master(config),
                         lora=config.lora_settings is not None)  # fmt: skip
    started = time.perf_counter()
    final = train(config, overwrite=True)
    wall = time.perf_counter() - started
    steps = [r for r in read_records(out / "metrics.jsonl") if "rollout" in r]
    changes = weight_changes(_safetensors(resolve(model)), _safetensors(final))
    rate = steady_rate([r["step_seconds"] for r in steps])
    finite = all(r.get("loss") is None or math.isfinite(r["loss"]) for r in steps)
    facts = {
        "steps": len(steps),
        "bf16 (after the CPU rule)": config.bf16,
        "policy dtype": str(dtype).removeprefix("torch."),
        "final weight dtypes": ", ".join(changes["dtypes"]),
        "tensors moved": f"{changes['moved']} of {changes['compared']}",
        "unmoved (first 6)": ", ".join(changes["unmoved"][:6]) or "none",
        "steps/s (after the first)": None if rate is None else round(rate, 3),
        "first step s": round(steps[0]["step_seconds"], 2) if steps else None,
        "train() wall s": round(wall, 1),
        "losses finite": finite,
        "peak GPU memory GiB": _peak_gib(device),
    }
    ok = (
        len(steps) == GRPO_STEPS
        and changes["dtypes"] == ["float32"]
        and changes["moved"] > 0.9 * changes["compared"]
        and finite
    )
    return {"ok": ok, "facts": facts}


def step_shared_prompt(device: str, work: Path) -> dict:
    test = "tests/observe_r1/training/test_shared_prompt.py"
    command = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", test,
               "-k", "matches_the_stock_forward"]  # fmt: skip
    env = os.environ | {TEST_DEVICE_ENV: device}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    cases = [
        line.split("[", 1)[1].split("]", 1)[0] + (" passed" if "PASSED" in line else " FAILED")
        for line in lines
        if "::" in line and ("PASSED" in line or "FAILED" in line)
    ]
    skipped = sum("SKIPPED" in line for line in lines)
    summary = lines[-1].strip("= ") if lines else ""
    facts = {"cases": ", ".join(cases), "pytest exit": done.returncode, "summary": summary}
    ok = done.returncode == 0 and len(cases) >= 4 and not skipped
    if not ok:
        facts["tail"] = (done.stdout + done.stderr)[-3000:]
    return {"ok": ok, "facts": facts}


def step_observe_eval(device: str, work: Path) -> dict:
    import torch
    from typer.testing import CliRunner

    from observe_r1.cli import app

    trained = work / "grpo-tiny-qwen2.5-vl" / "final"
    model = str(trained) if trained.is_dir() else "tiny-qwen2.5-vl"
    rows = work / "rows" / "train.jsonl"
    if not rows.is_file():
        from observe_r1.demo import draw_counting_rows

        draw_counting_rows(rows.parent, 8)
    out = work / "observe-eval"
    args = ["eval", "--model", model, "--data", str(rows), "--out", str(out), "--overwrite",
            "--max-new-tokens", "32", "--batch-size", "8", "--device", device]  # fmt: skip
    started = time.perf_counter()
    result = CliRunner().invoke(app, args)
    seconds = time.perf_counter() - started
    report = json.loads((out / "eval.json").read_text()) if (out / "eval.json").is_file() else {}
    used_gpu = device == "cpu" or torch.cuda.max_memory_allocated() > 0
    facts = {
        "model": "the tiny Qwen2.5-VL trained above" if trained.is_dir() else model,
        "rows": report.get("rows"),
        "precision": report.get("precision"),
        "accuracy (random model)": report.get("accuracy"),
        "seconds": round(seconds, 1),
        "peak GPU memory GiB": _peak_gib(device),
    }
    ok = result.exit_code == 0 and bool(report) and used_gpu
    if not ok:
        facts["output"] = result.output[-2000:]
    return {"ok": ok, "facts": facts}


def step_eager_stage1(device: str, work: Path) -> dict:
    from eager_llm.toy import toy_index
    from eager_llm.training.config import load_config
    from eager_llm.training.stages import METRICS, run
    from model_zoo import resolve

    index = toy_index(work / "eager")
    out = work / "eager-stage1"
    overrides = [
        f"index={index}",
        f"output_dir={out}",
        f"use_cpu={str(device == 'cpu').lower()}",
        "bf16=true",
        f"max_steps={EAGER_STEPS}",
        f"save_steps={EAGER_STEPS}",
    ]
    config = load_config(EAGER_TINY, "train", overrides)
    started = time.perf_counter()
    final = run(config, overwrite=True)
    wall = time.perf_counter() - started
    records = [json.loads(line) for line in (out / METRICS).read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    speeds = [r["samples_per_second"] for r in records if "samples_per_second" in r]
    changes = weight_changes(_safetensors(resolve(config.model)), _safetensors(final))
    facts = {
        "steps": max((r.get("step", 0) for r in records), default=0),
        "bf16 (after the CPU rule)": config.bf16,
        "final weight dtypes": ", ".join(changes["dtypes"]),
        "tensors moved": f"{changes['moved']} of {changes['compared']}",
        "unmoved (first 6)": ", ".join(changes["unmoved"][:6]) or "none",
        "samples/s (trainer's, at the last log)": speeds[-1] if speeds else None,
        "steps/s (run() wall, with loading)": round(EAGER_STEPS / wall, 3),
        "first and last loss": [round(losses[0], 3), round(losses[-1], 3)] if losses else None,
        "peak GPU memory GiB": _peak_gib(device),
    }
    ok = (
        facts["steps"] == EAGER_STEPS
        and changes["dtypes"] == ["float32"]
        and changes["moved"] > 0.5 * changes["compared"]
    )
    return {"ok": ok, "facts": facts}


def step_eager_eval(device: str, work: Path) -> dict:
    import torch

    from eager_llm.evaluate import load_users, rank_with_run
    from eager_llm.metrics import evaluate_rankings
    from eager_llm.run_decoder import RunDecoder, load_run
    from model_zoo.hardware import cuda_has_bf16, weights_dtype

    run = load_run(work / "eager-stage1")
    users = load_users(run.index, "test", run.max_history)
    dtype = weights_dtype("auto", device, cuda_has_bf16())
    started = time.perf_counter()
    decoder = RunDecoder(run, dtype, device)
    loaded = time.perf_counter() - started
    ranked = rank_with_run(decoder, users, beams=10, batch_size=16, progress=False)
    seconds = time.perf_counter() - started - loaded
    targets = [e.target for e in users.examples]
    metrics = evaluate_rankings(ranked, targets, ks=(5, 10), hit_ks=(1,))
    parameter = next(decoder.model.parameters())
    facts = {
        "users": len(targets),
        "weights": f"{str(parameter.dtype).removeprefix('torch.')} on {parameter.device}",
        "autocast": run.precision,
        "ranking s": round(seconds, 2),
        "metrics (random tiny model)": {k: round(v, 3) for k, v in metrics.items()},
        "peak GPU memory GiB": _peak_gib(device),
    }
    full = all(len(items) == 10 and len(set(items)) == 10 for items in ranked)
    on_device = parameter.device.type == torch.device(device).type
    return {"ok": full and on_device, "facts": facts}


STEPS = {
    "versions": (step_versions, {}),
    "grpo-tiny-qwen2.5-vl": (step_grpo, {"model": "tiny-qwen2.5-vl"}),
    "grpo-tiny-llava": (step_grpo, {"model": "tiny-llava"}),
    "grpo-shared-prompt": (step_grpo, {"model": "tiny-qwen2.5-vl", "shared": True}),
    "shared-prompt": (step_shared_prompt, {}),
    "observe-eval": (step_observe_eval, {}),
    "eager-stage1": (step_eager_stage1, {}),
    "eager-eval": (step_eager_eval, {}),
}


def run_step(name: str, device: str, work: Path) -> None:
    """Child process: run one step and write its result to ``work/NAME.json``."""
    import torch

    torch.manual_seed(0)
    function, kwargs = STEPS[name]
    result = function(device, work, **kwargs)
    (work / f"{name}.json").write_text(json.dumps(result, default=str))


# ---- the parent: steps in processes, then the page ---------------------------------------


def spawn(name: str, device: str, work: Path, limit: float) -> dict:
    """Run step ``name`` in a child process of at most ``limit`` seconds, its output in
    ``work/NAME.log``."""
    command = [sys.executable, __file__, "--step", name, "--device", device, "--work", str(work)]
    started = time.perf_counter()
    returncode, timed_out = None, False
    with (work / f"{name}.log").open("w") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=limit)
            returncode = done.returncode
        except subprocess.TimeoutExpired:
            timed_out = True
    seconds = time.perf_counter() - started
    path = work / f"{name}.json"
    result = json.loads(path.read_text()) if path.is_file() else None
    status = status_of(returncode, timed_out, result)
    print(f"{name}: {status} in {seconds:.1f} s", flush=True)
    return {"name": name, "status": status, "seconds": round(seconds, 1), "result": result}


def _commit() -> str:
    """``$GPU_CHECK_COMMIT`` when set (a copy without .git), else the checkout's commit."""
    if given := os.environ.get("GPU_CHECK_COMMIT"):
        return given
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True)  # fmt: skip
        return done.stdout.strip() or "unknown (no git here)"
    except OSError:
        return "unknown (no git here)"


def _cell(value) -> str:
    return str(value).replace("|", "/").replace("\n", " ")


def render_page(device: str, steps: list[dict], args, total: float) -> str:
    """The results page: command, machine, table of steps, versions, details."""
    versions = next((s["result"] for s in steps if s["name"] == "versions" and s["result"]), None)
    facts = versions["facts"] if versions else {}
    failed = [s["name"] for s in steps if s["status"] != "ok"]
    lines = [
        "# GPU check: Observe-R1 and EAGER-LLM on one device",
        "",
        "```bash",
        f"make gpu-check GPU_DEVICE={device} GPU_OUT={args.out}",
        f"# = PYTHONPATH=src python experiments/gpu_check.py --device {device} --out {args.out}",
        "```",
        "",
    ]
    if device == "cpu":
        lines += [
            "**This page has NOT run on a GPU.** It is the CPU rehearsal (`--device cpu`): the "
            "same steps on the CPU, so that the GPU run finds the check itself working. No "
            "number below says anything about a GPU.",
            "",
        ]
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    cpu = f"{cpu_model()}, {os.cpu_count()} cores, OMP_NUM_THREADS {threads}"
    lines += [
        f"- **Device**: {device}; GPU: {facts.get('gpu', 'unknown')}"
        + (
            f", {facts['gpu_memory_gib']} GiB, compute capability {facts['capability']}, "
            f"native bf16 {facts['bf16_native']}"
            if "capability" in facts
            else ""
        ),  # fmt: skip
        f"- **Host**: {cpu}; Python {facts.get('python', platform.python_version())}, torch's "
        f"CUDA {facts.get('torch_cuda')}",
        f"- **Commit**: {_commit()}; whole check {total:.0f} s (budget {args.budget:.0f} s, each "
        f"step at most {args.step_limit:.0f} s, in its own process)",
        f"- **Budget**: GRPO {GRPO_STEPS} steps of `configs/observe_r1/tiny.yaml` (8 completions "
        f"each) per model; EAGER-LLM stage 1 {EAGER_STEPS} steps of `configs/eager_llm/tiny.yaml`; "
        "tiny random zoo models, built on the spot",
        "",
        "| step | result | seconds | key numbers |",
        "| --- | --- | ---: | --- |",
    ]
    keys = {
        "grpo": ("steps/s (after the first)", "tensors moved", "final weight dtypes"),
        "eager-stage1": (
            "steps/s (run() wall, with loading)",
            "tensors moved",
            "final weight dtypes",
        ),  # fmt: skip
        "eager-eval": ("weights", "ranking s"),
        "observe-eval": ("precision", "seconds"),
        "shared-prompt": ("summary",),
        "versions": ("gpu",),
    }
    for step in steps:
        result = step["result"] or {}
        chosen = next((v for k, v in keys.items() if step["name"].startswith(k)), ())
        found = result.get("facts", {})
        summary = "; ".join(f"{k}: {found[k]}" for k in chosen if k in found)
        lines.append(
            f"| {step['name']} | {step['status']} | {step['seconds']} | {_cell(summary)} |"
        )
    lines += ["", "## Versions against the project's pins", ""]
    if versions:
        lines += [
            "| package | here | pin (pyproject.toml) | verdict |",
            "| --- | --- | --- | --- |",
        ]
        lines += [f"| {' | '.join(map(_cell, row))} |" for row in versions["versions"]]
    else:
        lines.append("The versions step did not run or failed; see the log.")
    lines += ["", "## Each step", ""]
    for step in steps:
        lines.append(f"### {step['name']}: {step['status']} ({step['seconds']} s)")
        lines.append("")
        result = step["result"]
        if result:
            for key, value in result.get("facts", {}).items():
                if key in ("tail", "output"):
                    lines += ["", "```text", str(value).strip(), "```"]
                else:
                    lines.append(f"- {key}: {_cell(value)}")
        else:
            lines += ["No result written (crash or time limit); the end of its log:", "", "```text",
                      step.get("log_tail", ""), "```"]  # fmt: skip
        lines.append("")
    lines += [
        "## How to read it",
        "",
        "- `ok` means the step ran and its checks held: GRPO and EAGER-LLM runs finished "
        "their steps, moved the weights and kept them fp32 (bf16 autocast, fp32 master "
        "weights); the shared-prompt forward equalled TRL's stock forward at fp32 "
        "tolerances (TF32 off) on the device; evaluation ran on the device.",
        "- The models are tiny and random: the speeds say the path runs, not how fast a real "
        "model trains; accuracies and ranking metrics are noise.",
        "- On a CPU without native bf16 units `bf16=true` is turned off (the CPU rule, "
        "`model_zoo.hardware.cpu_bf16`), so a CPU rehearsal trains in fp32.",
        f"- Failed steps: {', '.join(failed) if failed else 'none'}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), required=True)
    parser.add_argument("--out", type=Path, help="Folder for gpu_check.md and gpu_check.log.")
    parser.add_argument("--work", type=Path, help="Folder for the runs (default: a temp one).")
    parser.add_argument("--budget", type=float, help="Seconds for all steps (cuda 420, cpu 1800).")
    parser.add_argument("--step-limit", type=float, help="Seconds per step (cuda 150, cpu 600).")
    parser.add_argument("--steps", help="Comma-separated subset of the steps (default: all).")
    parser.add_argument("--step", help=argparse.SUPPRESS)  # child process: run this one step
    args = parser.parse_args()
    if args.step:
        run_step(args.step, args.device, args.work)
        return 0
    chosen = args.steps.split(",") if args.steps else list(STEPS)
    if args.out is None or (unknown := [s for s in chosen if s not in STEPS]):
        what = "--out is required" if args.out is None else f"--steps: unknown {unknown[0]!r}"
        print(f"error: {what} (steps: {', '.join(STEPS)})", file=sys.stderr)
        return 2
    budget, limit = LIMITS[args.device]
    args.budget = budget if args.budget is None else args.budget
    args.step_limit = limit if args.step_limit is None else args.step_limit
    if args.budget <= 0 or args.step_limit <= 0:
        print("error: --budget and --step-limit must be positive seconds", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    steps = []
    with (args.out / "gpu_check.log").open("w") as log:
        for name in chosen:
            left = args.budget - (time.perf_counter() - started)
            if left < 10:
                steps.append({"name": name, "status": "SKIPPED (budget spent)", "seconds": 0,
                              "result": None, "log_tail": ""})  # fmt: skip
                continue
            step = spawn(name, args.device, work, min(args.step_limit, left))
            text = (work / f"{name}.log").read_text(errors="replace")
            log.write(f"===== {name}: {step['status']} in {step['seconds']} s\n{text}\n")
            step["log_tail"] = "\n".join(text.splitlines()[-15:])
            steps.append(step)
    total = time.perf_counter() - started
    page = args.out / "gpu_check.md"
    page.write_text(render_page(args.device, steps, args, total))
    print(f"page: {page} ({total:.0f} s)")
    return 0 if all(s["status"] == "ok" for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
