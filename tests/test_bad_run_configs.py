"""Bad configs, overrides, output folders and run folders for ``observe-r1 train``,
``eager-llm train`` / ``anneal`` / ``tiger``: each ends in one ``error: <where>: <what>``
line on stderr and exit status 2 before any model is loaded, and leaves every file as it
was (issue 19, items 1, 2, 4). Also the other verbs that write (issue 31): an output that
is or holds an input, or holds an earlier run's outputs, is refused (item 3); every size a
user types is capped (item 6). Runs nothing but the checks: seconds in all."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eager_llm.cli import app as eager_app
from eager_llm.training import load_config as load_eager_config
from observe_r1.cli import app as observe_app
from observe_r1.training.config import load_config as load_observe_config
from tests.eager_llm.training.toy import CONFIG as EAGER_CONFIG
from tests.eager_llm.training.toy import toy_index
from tests.observe_r1.training.test_trainer import TINY as OBSERVE_CONFIG
from tests.observe_r1.training.test_trainer import write_rows

APPS = {"observe": observe_app, "eager": eager_app}
FINGERPRINT = "run_fingerprint.json"  # model_zoo.run_folder.FINGERPRINT


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Rows (with images) for observe-r1 and a toy index for eager-llm, built once."""
    root = tmp_path_factory.mktemp("inputs")
    write_rows(root / "rows", n=3)
    toy_index(root)
    return root


@pytest.fixture
def work(tmp_path, inputs) -> Path:
    shutil.copytree(inputs, tmp_path, dirs_exist_ok=True)
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "bad.jsonl").write_text('{"image": "x.png", "question": \n')
    return tmp_path


def observe(*extra: str, rows: str = "rows/train.jsonl", out: str = "run"):
    def args(work: Path) -> list[str]:
        return [
            "train", "--config", str(OBSERVE_CONFIG), "--output-dir", str(work / out),
            "--set", f"train_file={work / rows}", *extra,
        ]  # fmt: skip

    return "observe", args


def eager(*extra: str, index: str = "index", out: str = "erun", verb: str = "train"):
    def args(work: Path) -> list[str]:
        stage = ["--from", str(work / "stage1")] if verb == "anneal" else []
        if verb == "anneal":
            (work / "stage1").mkdir(exist_ok=True)
        return [
            verb, "--config", str(EAGER_CONFIG), *stage, "--index", str(work / index),
            "--output-dir", str(work / out), *extra,
        ]  # fmt: skip

    return "eager", args


def with_file(name: str, text: str, make) -> tuple[str, Callable[[Path], list[str]]]:
    """``make``'s case, after writing ``text`` to ``work/name``."""
    app, build = make

    def args(work: Path) -> list[str]:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
        return build(work)

    return app, args


def earlier_run(folder: str, make, fingerprint: Callable[[Path], dict | str] | None = None):
    """``make``'s case with ``work/folder`` holding a run: a whole checkpoint-1, records
    and (when given) a fingerprint (a dict, or the file's text)."""
    app, build = make

    def args(work: Path) -> list[str]:
        run = work / folder
        (run / "checkpoint-1").mkdir(parents=True)
        (run / "checkpoint-1" / "trainer_state.json").write_text('{"global_step": 1}')
        (run / "checkpoint-1" / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")
        (run / "metrics.jsonl").write_text('{"step": 1}\n')
        if fingerprint:
            stored = fingerprint(work)
            text = stored if isinstance(stored, str) else json.dumps(stored)
            (run / FINGERPRINT).write_text(text)
        return build(work)

    return app, args


def observe_print(work: Path, *overrides: str, rows: str = "rows/train.jsonl") -> dict:
    """The fingerprint of the observe case's config with ``overrides``."""
    from observe_r1.training.train import run_fingerprint

    settings = [f"train_file={work / rows}", f"output_dir={work / 'run'}", *overrides]
    return run_fingerprint(load_observe_config(OBSERVE_CONFIG, settings))


def older_rows(work: Path) -> dict:
    """The fingerprint of a run on other rows (the first of the train file only)."""
    rows = work / "rows" / "train.jsonl"
    (work / "rows" / "older.jsonl").write_text(rows.read_text().splitlines()[0] + "\n")
    return observe_print(work, rows="rows/older.jsonl")


def eager_print(work: Path, *overrides: str) -> dict:
    from model_zoo.run_folder import config_fingerprint

    config = load_eager_config(
        EAGER_CONFIG, "train", list(overrides), index=str(work / "index"), output_dir="x"
    )
    data = {"index": config.index}
    return config_fingerprint("eager-llm", config.to_dict(), data, ["index"])


def corrupt_index(change: Callable[[Path], None], make=None):
    app, build = make or eager(index="bad-index")

    def args(work: Path) -> list[str]:
        shutil.copytree(work / "index", work / "bad-index")
        change(work / "bad-index")
        return build(work)

    return app, args


def trained_run(item_index: str, verb: str = "eval", settings: str | None = None):
    """``eager-llm eval`` / ``recommend`` of a run folder whose final/ holds
    ``item_index`` (text) and run settings naming the toy index."""

    def args(work: Path) -> list[str]:
        final = work / "trained" / "final"
        final.mkdir(parents=True)
        (final / "config.json").write_text("{}")
        (final / "item_index.json").write_text(item_index)
        text = settings or json.dumps(
            {"index": str(work / "index"), "template": "short", "max_history": 20}
        )
        (final / "run_settings.json").write_text(text)
        extra = ["--history", "i1,i2"] if verb == "recommend" else []
        return [verb, "--run", str(work / "trained"), *extra]

    return "eager", args


SET = "--set"
CASES: dict[str, tuple[tuple[str, Callable[[Path], list[str]]], list[str]]] = {
    # observe-r1 train: config values, in range (item 4)
    "observe_batch_size_0": (
        observe(SET, "per_device_train_batch_size=0"),
        ["--set per_device_train_batch_size=0: 'per_device_train_batch_size' must be an integer"],
    ),
    "observe_batch_size_negative": (
        observe(SET, "per_device_train_batch_size=-8"),
        ["'per_device_train_batch_size' must be an integer >= 1 and <= 65536, got -8"],
    ),
    "observe_num_generations_0": (
        observe(SET, "num_generations=0"),
        ["--set num_generations=0: 'num_generations' must be an integer >= 2 and <= 65536, got 0"],
    ),
    "observe_num_generations_yes": (
        observe(SET, "num_generations=yes"),
        ["--set num_generations=yes: 'num_generations' must be int, got True"],
    ),
    "observe_lr_nan": (
        observe(SET, "learning_rate=.nan"),
        ["--set learning_rate=.nan: 'learning_rate' must be a number > 0, got nan"],
    ),
    "observe_lr_negative": (
        observe(SET, "learning_rate=-1e-5"),
        ["'learning_rate' must be a number > 0, got -1e-05"],
    ),
    "observe_max_completion_length_0": (
        observe(SET, "max_completion_length=0"),
        ["'max_completion_length' must be an integer >= 1 and <= 131072, got 0"],
    ),
    "observe_lora_r_0": (
        observe(SET, "lora={r: 0}"),
        ["--set lora={r: 0}: 'lora.r' must be an integer >= 1 and <= 4096, got 0"],
    ),
    "observe_lora_dropout_1": (
        observe(SET, "lora={dropout: 1.0}"),
        ["'lora.dropout' must be a number >= 0 and < 1, got 1.0"],
    ),
    "observe_temperature_0": (
        observe(SET, "temperature=0"),
        ["'temperature' must be a number > 0 and <= 100, got 0"],
    ),
    "observe_bool_field_given_a_number": (
        observe(SET, "use_bonus=2"),
        ["--set use_bonus=2: 'use_bonus' must be true or false, got 2"],
    ),
    "observe_max_steps_option_0": (
        observe("--max-steps", "0"),
        ["--max-steps 0: 'max_steps' must be an integer >= 1 and <= 10000000 (or -1), got 0"],
    ),
    # sizes over their caps fail before the run folder is touched (issue 31, items 6, 7)
    "observe_seed_over_2_32": (
        observe(SET, "seed=4294967296"),
        ["--set seed=4294967296: 'seed' must be an integer >= 0 and <= 4294967295"],
    ),
    "observe_temperature_1e308": (
        observe(SET, "temperature=1e308"),
        ["--set temperature=1e308: 'temperature' must be a number > 0 and <= 100"],
    ),
    "observe_batch_size_a_billion": (
        observe(SET, "per_device_train_batch_size=1000000000"),
        ["'per_device_train_batch_size' must be an integer >= 1 and <= 65536"],
    ),
    "observe_rollout_larger_than_the_train_file": (
        observe(SET, "per_device_train_batch_size=1000"),
        [
            "--set per_device_train_batch_size=1000: 'per_device_train_batch_size' 1000 makes a "
            "rollout of 250 prompts",
            "more than the 3 rows of",
        ],  # fmt: skip
    ),
    "observe_max_pixels_1e12": (
        observe(SET, "max_pixels=1000000000000"),
        ["'max_pixels' must be an integer >= 1 and <= 100000000, got 1000000000000"],
    ),
    "observe_lora_r_a_billion": (
        observe(SET, "lora={r: 1000000000}"),
        ["--set lora={r: 1000000000}: 'lora.r' must be an integer >= 1 and <= 4096"],
    ),
    "observe_max_steps_1e20": (
        observe("--max-steps", str(10**20)),
        [f"--max-steps {10**20}: 'max_steps' must be an integer >= 1 and <= 10000000"],
    ),
    "observe_epochs_1e300": (
        observe(SET, "max_steps=-1", SET, "num_train_epochs=1e300"),
        ["'num_train_epochs' must be a number > 0 and <= 10000"],
    ),
    # a name or path of the wrong kind (issue 31, item 9)
    "observe_model_a_number": (
        observe(SET, "model=5"),
        ["--set model=5: 'model' must be a string"],
    ),
    "observe_model_null": (observe(SET, "model=null"), ["'model' must not be null"]),
    "observe_eval_file_a_number": (
        observe(SET, "eval_file=5"),
        ["--set eval_file=5: 'eval_file' must be a string, got 5"],
    ),
    "eager_model_a_number": (eager(SET, "model=5"), ["--set model=5: 'model' must be a string"]),
    "observe_set_dotted_lora_r_0": (
        observe(SET, "lora.r=0"),
        ["--set lora.r=0: 'lora.r' must be an integer >= 1 and <= 4096, got 0"],
    ),
    "observe_set_dotted_unknown_lora_key": (
        observe(SET, "lora.rank=4"),
        ["--set lora.rank=4: unknown key 'lora.rank' (known: alpha, dropout, r, targets)"],
    ),
    "eager_anneal_set_dotted_lora_dropout": (
        eager(SET, "lora.dropout=2", verb="anneal", out="arun"),
        ["--set lora.dropout=2: 'lora.dropout' must be a number >= 0 and < 1, got 2"],
    ),
    "observe_duplicate_yaml_key": (
        with_file(
            "dup.yaml",
            "model: tiny-qwen2.5-vl\nseed: 0\nlearning_rate: 1e-5\nseed: 1\n",
            ("observe", lambda w: ["train", "--config", str(w / "dup.yaml")]),
        ),
        ["dup.yaml:4: duplicate key 'seed' (first given on line 2)"],
    ),
    "observe_duplicate_key_in_a_block": (
        observe(SET, "lora={r: 4, r: 8}"),
        ["--set lora={r: 4, r: 8}: ", "duplicate key 'r'"],
    ),
    # --set errors are the override's, not the config file's
    "observe_set_unknown_key": (
        observe(SET, "learning_rat=1"),
        ["--set learning_rat=1: unknown config key 'learning_rat'"],
    ),
    "observe_set_not_yaml": (observe(SET, "lora={r: 4"), ["--set lora={r: 4: "]),
    "observe_set_without_equals": (observe(SET, "beta"), ["--set beta: is not key=value"]),
    "observe_set_string_for_number": (
        observe(SET, "beta=high"),
        ["--set beta=high: 'beta' must be float, got 'high'"],
    ),
    "observe_set_bad_choice": (
        observe(SET, "curriculum=random"),
        ["--set curriculum=random: curriculum must be 'ordered' or 'shuffled'"],
    ),
    # outputs, models, inputs
    "observe_output_dir_is_a_file": (
        observe(out="a-file"),
        ["--output-dir", "a-file: exists and is not a folder"],
    ),
    "observe_output_dir_under_a_file": (
        observe(out="a-file/run"),
        ["a-file is not a folder"],
    ),
    "observe_unknown_model": (
        observe(SET, "model=gpt-7"),
        ["--set model=gpt-7: 'model' gpt-7: no such model"],
    ),
    "observe_no_train_file": (
        ("observe", lambda w: ["train", "--config", str(OBSERVE_CONFIG), "--output-dir", str(w)]),
        ["tiny.yaml: no train_file: set 'train_file'"],
    ),
    # run folders (items 1, 2)
    "observe_rerun_into_an_earlier_run": (
        earlier_run("run", observe()),
        ["run: holds an earlier run (checkpoint-1/, metrics.jsonl)", "--resume", "--overwrite"],
    ),
    "observe_resume_with_another_lr": (
        earlier_run("run", observe("--resume"), lambda w: observe_print(w, "learning_rate=3e-5")),
        ["--resume refused: config key 'learning_rate' differs: 3e-05 when the run started"],
    ),
    "observe_resume_with_another_train_file": (
        earlier_run("run", observe("--resume"), older_rows),
        ["--resume refused: the content of 'train_file' differs"],
    ),
    "observe_resume_with_a_damaged_fingerprint": (
        earlier_run("run", observe("--resume"), lambda w: '{"system": '),
        ["run_fingerprint.json: not valid JSON"],
    ),
    "observe_malformed_train_file_keeps_the_earlier_run": (
        earlier_run("run", observe("--overwrite", rows="bad.jsonl")),
        ["bad.jsonl:1: "],
    ),
    "observe_resume_and_overwrite": (
        observe("--resume", "--overwrite"),
        ["--resume continues the run in the folder, --overwrite replaces it: give one"],
    ),
    # eager-llm train / anneal: config values (item 4)
    "eager_batch_size_0": (
        eager(SET, "per_device_train_batch_size=0"),
        ["--set per_device_train_batch_size=0: 'per_device_train_batch_size' must be an integer"],
    ),
    "eager_max_history_0": (
        eager(SET, "max_history=0"),
        ["--set max_history=0: 'max_history' must be an integer >= 1 and <= 131072, got 0"],
    ),
    "eager_gct_negatives_negative": (
        eager(SET, "gct_negatives=-1"),
        ["--set gct_negatives=-1: 'gct_negatives' must be an integer >= 0 and <= 10000000, got -1"],
    ),
    "eager_max_length_4": (
        eager(SET, "max_length=4"),
        ["--set max_length=4: 'max_length' 4 is too small", "2 index tokens", "takes"],
    ),
    "eager_gct_temperature_0": (
        eager(SET, "gct_temperature=0"),
        ["'gct_temperature' must be a number > 0, got 0"],
    ),
    "eager_lr_nan": (
        eager(SET, "learning_rate=.nan"),
        ["'learning_rate' must be a number > 0, got nan"],
    ),
    "eager_prefixes_per_user_yes": (
        eager(SET, "prefixes_per_user=yes"),
        ["--set prefixes_per_user=yes: 'prefixes_per_user' must be int, got True"],
    ),
    "eager_max_steps_option_0": (
        eager("--max-steps", "-3"),
        ["--max-steps -3: 'max_steps' must be an integer >= 1 and <= 10000000 (or -1), got -3"],
    ),
    "eager_anneal_lora_r_0": (
        eager(SET, "lora={r: 0}", verb="anneal", out="arun"),
        ["--set lora={r: 0}: 'lora.r' must be an integer >= 1 and <= 4096, got 0"],
    ),
    "eager_anneal_without_a_stage1_model": (
        eager(verb="anneal", out="arun"),
        ["stage1: no final/config.json"],
    ),
    "eager_set_string_for_number": (
        eager(SET, "learning_rate=fast"),
        ["--set learning_rate=fast: 'learning_rate' must be float, got 'fast'"],
    ),
    "eager_seed_over_2_32": (
        eager(SET, "seed=4294967296"),
        ["--set seed=4294967296: 'seed' must be an integer >= 0 and <= 4294967295"],
    ),
    "eager_batch_size_a_billion": (
        eager(SET, "per_device_train_batch_size=1000000000"),
        ["'per_device_train_batch_size' must be an integer >= 1 and <= 65536"],
    ),
    "eager_max_steps_1e20": (
        eager("--max-steps", str(10**20)),
        [f"--max-steps {10**20}: 'max_steps' must be an integer >= 1 and <= 10000000"],
    ),
    "eager_anneal_lora_r_a_billion": (
        eager(SET, "lora={r: 1000000000}", verb="anneal", out="arun"),
        ["'lora.r' must be an integer >= 1 and <= 4096, got 1000000000"],
    ),
    "eager_duplicate_yaml_key": (
        with_file(
            "dup.yaml",
            "model: tiny-llama\nanneal:\n  learning_rate: 1e-3\n  learning_rate: 1e-4\n",
            ("eager", lambda w: ["train", "--config", str(w / "dup.yaml")]),
        ),
        ["dup.yaml:4: duplicate key 'learning_rate' (first given on line 3)"],
    ),
    "eager_unknown_model": (
        eager(SET, "model=gpt-7"),
        ["--set model=gpt-7: 'model' gpt-7: no such model"],
    ),
    "eager_output_dir_is_a_file": (eager(out="a-file"), ["a-file: exists and is not a folder"]),
    # index files: the error names the file
    "eager_corrupt_item_index": (
        corrupt_index(lambda i: (i / "item_index.json").write_text('{"i0": ["<a_0>"')),
        ["bad-index/item_index.json: not valid JSON"],
    ),
    "eager_item_index_not_a_mapping": (
        corrupt_index(lambda i: (i / "item_index.json").write_text("[1, 2]")),
        ["bad-index/item_index.json: not an item index"],
    ),
    "eager_item_index_shared_codes": (
        corrupt_index(
            lambda i: (i / "item_index.json").write_text('{"i0": ["<a>"], "i1": ["<a>"]}')
        ),
        ["bad-index/item_index.json: not an item index (items 'i0' and 'i1' share"],
    ),
    "eager_index_codes_not_tokens": (
        corrupt_index(
            lambda i: (i / "item_index.json").write_text(
                json.dumps({f"i{n}": ["hello world", f"<b_{n}>"] for n in range(10)})
            )
        ),
        ["bad-index/item_index.json: not an item index ('hello world' is not an index token"],
    ),
    "eager_missing_items_file": (
        corrupt_index(lambda i: (i / "items.json").unlink()),
        ["bad-index/items.json: missing"],
    ),
    "eager_truncated_embeddings": (
        corrupt_index(lambda i: (i / "semantic_embeddings.npy").write_bytes(b"\x93NUMPY\x01")),
        ["bad-index/semantic_embeddings.npy: not a NumPy array file"],
    ),
    "eager_index_is_missing": (eager(index="no-index"), ["no-index: no such index folder"]),
    "tiger_corrupt_item_index": (
        corrupt_index(
            lambda i: (i / "item_index.json").write_text("{"),
            (
                "eager",
                lambda w: ["tiger", "--index", str(w / "bad-index"), "--output-dir", f"{w}/t"],
            ),
        ),
        ["bad-index/item_index.json: not valid JSON"],
    ),
    "eval_corrupt_item_index": (
        trained_run('{"i0": '),
        ["trained/final/item_index.json: not valid JSON"],
    ),
    "recommend_corrupt_item_index": (
        trained_run("{", verb="recommend"),
        ["trained/final/item_index.json: not valid JSON"],
    ),
    "eval_corrupt_run_settings": (
        trained_run('{"i0": ["<a_0>"]}', settings='{"index": '),
        ["trained/final/run_settings.json: not valid JSON"],
    ),
    # run folders (items 1, 2)
    "eager_rerun_into_an_earlier_run": (
        earlier_run("erun", eager()),
        ["erun: holds an earlier run (checkpoint-1/, metrics.jsonl)", "--resume", "--overwrite"],
    ),
    "eager_resume_with_another_seed": (
        earlier_run("erun", eager("--resume"), lambda w: eager_print(w, "seed=7")),
        ["--resume refused: config key 'seed' differs: 7 when the run started, 0 now"],
    ),
    "eager_corrupt_index_keeps_the_earlier_run": (
        earlier_run(
            "erun",
            corrupt_index(
                lambda i: (i / "items.json").write_text("["),
                eager("--overwrite", index="bad-index"),
            ),
        ),
        ["bad-index/items.json: not valid JSON"],
    ),
}


def verb(app: str, line: str):
    """``app``'s command ``line`` (split on spaces), ``{w}`` standing for the work folder."""
    return app, lambda work: [word.format(w=work) for word in line.split()]


def holding(name: str, make):
    """``make``'s case after writing an earlier output ``work/name``."""
    return with_file(name, "earlier\n", make)


def with_users(line: str):
    return with_file("users.jsonl", '{"history": ["i1"]}\n', verb("eager", line))


ROWS = "{w}/rows/train.jsonl"
EVAL = f"eval --model tiny-qwen2.5-vl --data {ROWS}"
LADDER = f"ladder --input {ROWS} --model tiny-qwen2.5-vl --out {{w}}/l.jsonl"
RECOMMEND = "recommend --run {w}/index --input {w}/users.jsonl"
EARLIER = "holds an earlier run's outputs"
OUTPUT_CASES = {
    "import_out_is_the_input_folder": (
        verb("observe", f"import --format official --input {ROWS} --out {{w}}/rows"),
        ["--out", "rows: is or contains the input", "rows/train.jsonl"],
    ),
    "import_into_earlier_rows": (
        holding(
            "o/rows.jsonl",
            verb("observe", f"import --format official --input {ROWS} --out {{w}}/o"),
        ),  # fmt: skip
        ["--out", f"o: {EARLIER} (rows.jsonl); pass --overwrite"],
    ),
    "synth_into_earlier_rows": (
        holding("s/rows.jsonl", verb("observe", "synth --out {w}/s --n 2")),
        ["--out", f"s: {EARLIER} (rows.jsonl); pass --overwrite"],
    ),
    "eval_into_an_earlier_report": (
        holding("r/eval.json", verb("observe", f"{EVAL} --out {{w}}/r")),
        ["--out", f"r: {EARLIER} (eval.json); pass --overwrite"],
    ),
    "eval_out_holds_the_data": (
        verb("observe", f"{EVAL} --out {{w}}"),
        ["is or contains the input", "rows/train.jsonl"],
    ),
    "align_into_earlier_stages": (
        holding(
            "aw/projector/x",
            verb("observe", f"align --data {ROWS} --work {{w}}/aw --out {{w}}/assets"),
        ),  # fmt: skip
        ["--work", f"aw: {EARLIER} (projector); pass --overwrite"],
    ),
    "align_work_holds_the_data": (
        verb("observe", f"align --data {ROWS} --work {{w}}/rows --out {{w}}/assets"),
        ["--work", "rows: is or contains the input"],
    ),
    "tiger_into_the_index": (
        verb("eager", "tiger --index {w}/index --output-dir {w}/index"),
        ["--output-dir", "index: is or contains the input"],
    ),
    "tiger_into_an_earlier_model": (
        holding("t/tiger.json", verb("eager", "tiger --index {w}/index --output-dir {w}/t")),
        ["--output-dir", f"t: {EARLIER} (tiger.json); pass --overwrite"],
    ),
    "tiger_output_dir_is_a_file": (
        verb("eager", "tiger --index {w}/index --output-dir {w}/a-file"),
        ["--output-dir", "a-file: exists and is not a folder"],
    ),
    "index_into_the_dataset": (
        verb("eager", "index --dataset {w}/data --out {w}/data"),
        ["--out", "data: is or contains the input"],
    ),
    "index_into_an_earlier_index": (
        verb("eager", "index --dataset {w}/data --out {w}/index"),
        ["--out", f"index: {EARLIER}", "item_index.json"],
    ),
    "recommend_output_is_the_input": (
        with_users(f"{RECOMMEND} --output {{w}}/users.jsonl"),
        ["--output", "users.jsonl: is the --input file"],
    ),
    "recommend_output_is_a_folder": (
        with_users(f"{RECOMMEND} --output {{w}}/index"),
        ["--output", "index: is a folder, not a file"],
    ),
}

BIG = "1000000000"
CAP_CASES = {
    "recommend_k_1e8": (
        verb("eager", "recommend --run {w}/index --history i1 --k 100000000"),
        ["--k: 100000000 is over the cap of 1,000"],
    ),
    "eager_eval_beams_1e9": (
        verb("eager", f"eval --run {{w}}/index --beams {BIG}"),
        [f"--beams: {BIG} is over the cap of 1,000"],
    ),
    "repeat_batch_size_1e9": (
        verb(
            "eager",
            f"repeat --config {EAGER_CONFIG} --seeds 0 --output-dir {{w}}/rep --batch-size {BIG}",
        ),  # fmt: skip
        [f"--batch-size: {BIG} is over the cap of 65,536"],
    ),
    "eager_demo_stage1_steps_1e11": (
        verb("eager", f"demo --out {{w}}/demo --stage1-steps {10**11}"),
        [f"--stage1-steps: {10**11} is over the cap of 10,000,000"],
    ),
    "tiger_d_model_1e9": (
        verb("eager", f"tiger --index {{w}}/index --output-dir {{w}}/t --d-model {BIG}"),
        [f"--d-model: {BIG} is over the cap of 65,536"],
    ),
    "index_k_1e9": (
        verb("eager", f"index --dataset {{w}}/data --out {{w}}/i --k {BIG}"),
        [f"--k: {BIG} is over the cap of 65,536"],
    ),
    "observe_eval_samples_1e9": (
        verb("observe", f"{EVAL} --out {{w}}/r --samples {BIG}"),
        [f"--samples: {BIG} is over the cap of 1,024"],
    ),
    "observe_eval_seed_2_32": (
        verb("observe", f"{EVAL} --out {{w}}/r --seed {2**32}"),
        [f"--seed: {2**32} is over the cap of 4,294,967,295"],
    ),
    "synth_n_1e11": (
        verb("observe", f"synth --out {{w}}/s --n {10**11}"),
        [f"--n: {10**11} is over the cap of 10,000,000"],
    ),
    "ladder_rollouts_1e9": (
        verb("observe", f"{LADDER} --rollouts {BIG}"),
        [f"--rollouts: {BIG} is over the cap of 1,024"],
    ),
    "ladder_temperature_1e308": (
        verb("observe", f"{LADDER} --temperature 1e308"),
        ["--temperature: 1e+308 is over the cap of 100"],
    ),
}
CASES.update(OUTPUT_CASES)
CASES.update(CAP_CASES)


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    return {
        str(path.relative_to(root)): (path.is_dir(), path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize(("case", "fragments"), CASES.values(), ids=list(CASES))
def test_bad_run_is_one_error_line_exit_2_and_nothing_written(work, case, fragments):
    app, make_args = case
    args = make_args(work)
    before = snapshot(work)
    result = CliRunner().invoke(APPS[app], args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert snapshot(work) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("app", ["observe", "eager"])
def test_a_read_only_output_folder_is_refused(work, app):
    (work / "locked").mkdir()
    (work / "locked").chmod(0o555)
    _, make_args = observe(out="locked/run") if app == "observe" else eager(out="locked/run")
    result = CliRunner().invoke(APPS[app], make_args(work))
    assert result.exit_code == 2 and "locked is not writable" in result.stderr
