"""Bad inputs to the ``observe-r1`` CLI: each ends in one ``error: <where>: <what>`` line on
stderr and exit status 2, before any work, and leaves the files as they were (issue 19)."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import signal
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from observe_r1.cli import app
from observe_r1.data.rows import (
    MAX_ANSWER_CHARS,
    MAX_IMAGE_PIXELS,
    MAX_LINE_BYTES,
    MAX_QUESTION_CHARS,
    read_rows,
)

MODEL = "tiny-llava"  # a zoo name: accepted without building anything


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares `width` x `height` pixels and holds none (a header, nothing else)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b""))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b""))
    return path


def truncated(path: Path, image_format: str) -> Path:
    buffer = io.BytesIO()
    Image.effect_noise((160, 160), 60).convert("RGB").save(buffer, image_format)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


@pytest.fixture
def work(tmp_path) -> Path:
    Image.new("RGB", (8, 8), "white").save(tmp_path / "good.png")
    truncated(tmp_path / "cut.png", "PNG")
    truncated(tmp_path / "cut.jpg", "JPEG")
    png_header(tmp_path / "huge.png", 5000, 5000)  # 25 MP: over our limit, under PIL's bomb check
    png_header(tmp_path / "bomb.png", 20000, 20000)  # PIL's DecompressionBombError
    Image.new("RGB", (401, 2)).save(tmp_path / "thin.png")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "a-file").write_text("not a folder\n")
    return tmp_path


def row(**fields) -> str:
    return json.dumps(
        {"id": "r", "image": "good.png", "question": "How many?", "answer": "3"} | fields
    )


GOOD = row()


def rows_file(work: Path, *lines: str | bytes, name: str = "rows.jsonl") -> Path:
    data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    (work / name).write_bytes(data)
    return work / name


def evaluate(work: Path, *lines: str | bytes, extra: tuple[str, ...] = ()) -> list[str]:
    data = rows_file(work, *lines)
    return ["eval", "--model", MODEL, "--data", str(data), "--out", str(work / "report"), *extra]


def eval_options(*extra: str) -> Callable[[Path], list[str]]:
    return lambda work: evaluate(work, GOOD, extra=extra)


def ladder(*extra: str, lines: tuple[str, ...] = (GOOD,)) -> Callable[[Path], list[str]]:
    def args(work: Path) -> list[str]:
        data = rows_file(work, *lines)
        out = ["--out", str(work / "ladder.jsonl")]
        return ["ladder", "--input", str(data), "--model", MODEL, *out, *extra]

    return args


def synth(*extra: str) -> Callable[[Path], list[str]]:
    return lambda work: ["synth", "--out", str(work / "synth"), "--n", "3", *extra]


def official(*records: dict | str) -> Callable[[Path], list[str]]:
    def args(work: Path) -> list[str]:
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        source = rows_file(work, *lines, name="official.jsonl")
        return ["import", "--format", "official", "--input", str(source), "--out", str(work / "o")]

    return args


def chat(*parts, content=None) -> dict:
    parts = parts or ({"type": "image", "image": "good.png"}, {"type": "text", "text": "q?"})
    message = [{"role": "user", "content": list(parts) if content is None else content}]
    return {"message": message, "answer": "1"}


def deep(depth: int) -> str:
    return (
        '{"image": "good.png", "question": "q", "answer": "1", "x": '
        + "[" * depth
        + "]" * depth
        + "}"
    )


def gzipped(work: Path) -> list[str]:
    data = work / "rows.jsonl.gz"
    data.write_bytes(gzip.compress((GOOD + "\n").encode())[:-8])  # truncated, too
    return ["eval", "--model", MODEL, "--data", str(data), "--out", str(work / "report")]


def out_is_file(command: str) -> Callable[[Path], list[str]]:
    def args(work: Path) -> list[str]:
        data = rows_file(work, GOOD)
        if command == "eval":
            return ["eval", "--model", MODEL, "--data", str(data), "--out", str(work / "a-file")]
        if command == "synth":
            return ["synth", "--out", str(work / "a-file"), "--n", "2"]
        return [
            "import",
            "--format",
            "official",
            "--input",
            str(data),
            "--out",
            str(work / "a-file"),
        ]

    return args


def report_file_is_folder(work: Path) -> list[str]:
    (work / "report" / "eval.json").mkdir(parents=True)
    return evaluate(work, GOOD, extra=("--overwrite",))


def corrupt_cache(work: Path) -> list[str]:
    (work / "ladder.cache").mkdir()
    (work / "ladder.cache" / "rollouts.jsonl").write_text('{"key": "k", "completions": 3}\n')
    return ladder()(work)


LONG_QUESTION = "How many? " * (MAX_QUESTION_CHARS // 10 + 1)
LONG_ANSWER = "1" * (MAX_ANSWER_CHARS + 1)

# id: (arguments built in the work folder, fragments the error line must contain)
CASES: dict[str, tuple[Callable[[Path], list[str]], list[str]]] = {
    # item 4: unbounded inputs
    "line_over_1_mib": (
        lambda w: evaluate(w, GOOD, row(question="x" * (MAX_LINE_BYTES + 10))),
        ["rows.jsonl:2: line of", f"over the limit of {MAX_LINE_BYTES:,} bytes"],
    ),
    "question_too_long": (
        lambda w: evaluate(w, row(question=LONG_QUESTION)),
        ["rows.jsonl:1: field 'question':", f"over the limit of {MAX_QUESTION_CHARS:,}"],
    ),
    "answer_too_long": (
        lambda w: evaluate(w, row(answer=LONG_ANSWER)),
        ["rows.jsonl:1: field 'answer':", f"over the limit of {MAX_ANSWER_CHARS:,}"],
    ),
    "choice_too_long": (
        lambda w: evaluate(w, row(answer="A", choices=[LONG_ANSWER, "2"])),
        ["rows.jsonl:1: field 'choices':", "over the limit"],
    ),
    "caption_not_text": (
        lambda w: evaluate(w, row(caption={"a": 1})),
        ["rows.jsonl:1: field 'caption' must be a string"],
    ),
    "image_over_pixel_limit": (
        lambda w: evaluate(w, row(image="huge.png")),
        ["rows.jsonl:1: field 'image':", "5000 x 5000", f"limit of {MAX_IMAGE_PIXELS:,} pixels"],
    ),
    "image_decompression_bomb": (
        lambda w: evaluate(w, GOOD, row(image="bomb.png")),
        ["rows.jsonl:2: field 'image':", "400,000,000 pixels", "downscale"],
    ),
    # item 6: truncated images
    "truncated_png": (
        lambda w: evaluate(w, GOOD, row(image="cut.png")),
        ["rows.jsonl:2: field 'image': unreadable image", "cut.png", "truncated"],
    ),
    "truncated_jpeg": (
        lambda w: evaluate(w, row(image="cut.jpg"), GOOD),
        ["rows.jsonl:1: field 'image': unreadable image", "cut.jpg", "truncated"],
    ),
    "truncated_image_in_ladder": (
        ladder(lines=(GOOD, row(image="cut.png"))),
        ["rows.jsonl:2: field 'image': unreadable image"],
    ),
    "image_too_elongated": (
        lambda w: evaluate(w, row(image="thin.png")),
        ["rows.jsonl:1: field 'image':", "thin.png is 401 x 2, more elongated than 200:1"],
    ),
    "image_is_a_folder": (
        lambda w: evaluate(w, row(image="folder.png")),
        ["rows.jsonl:1: field 'image':", "is a folder"],
    ),
    # item 7: what used to be tracebacks
    "image_is_a_number": (
        lambda w: evaluate(w, GOOD, row(image=123)),
        ["rows.jsonl:2: field 'image' must be a path (a string), not a number"],
    ),
    "invalid_utf8": (
        lambda w: evaluate(w, GOOD, b'{"question": "\xff\xfe", "answer": "1"}'),
        ["rows.jsonl:2: not UTF-8 text (byte 0xff at column 15)"],
    ),
    "json_100k_deep": (
        lambda w: evaluate(w, deep(100_000)),
        ["rows.jsonl:1: ", "nested too deeply"],
    ),
    "gzip_file": (gzipped, ["rows.jsonl.gz: a gzip-compressed file; decompress it first"]),
    "unknown_model": (
        lambda w: evaluate(w, GOOD)[:2] + ["gpt-7"] + evaluate(w, GOOD)[3:],
        ["--model gpt-7: no such model", "tiny-llava"],
    ),
    "model_folder_without_config": (
        lambda w: ["eval", "--model", str(w / "folder.png"), *evaluate(w, GOOD)[3:]],
        ["--model", "folder.png: not a model folder"],
    ),
    "eval_out_is_a_file": (out_is_file("eval"), ["--out", "a-file: exists and is not a folder"]),
    "eval_report_file_is_a_folder": (report_file_is_folder, ["--out's eval.json", "is a folder"]),
    "eval_samples_0": (eval_options("--samples", "0"), ["--samples: must be at least 1, got 0"]),
    "eval_batch_size_0": (eval_options("--batch-size", "0"), ["--batch-size: must be at least 1"]),
    "eval_limit_0": (eval_options("--limit", "0"), ["--limit: must be at least 1, got 0"]),
    "eval_temperature_nan": (
        eval_options("--temperature", "nan"),
        ["--temperature: must be a positive number, got nan"],
    ),
    "eval_unknown_format": (
        eval_options("--response-format", "poem"),
        ["--response-format: 'poem' is not observe or think"],
    ),
    "official_content_is_a_number": (
        official(chat(content=7)),
        ["official.jsonl:1: field 'message': message 1: 'content' must be a string or a list"],
    ),
    "official_part_is_a_string": (
        official(chat("just text")),
        ["official.jsonl:1: field 'message': message 1:", "list of parts"],
    ),
    "official_image_is_a_number": (
        official(chat({"type": "image", "image": 5}, {"type": "text", "text": "q"})),
        ["official.jsonl:1: field 'message': message 1: the image part's 'image' must be a string"],
    ),
    "official_message_deeply_nested": (
        official({"message": "[" * 100_000, "answer": "1"}),
        ["official.jsonl:1: field 'message'"],
    ),
    "official_message_is_a_number": (
        official({"message": 12, "answer": "1"}),
        ["official.jsonl:1: field 'message' must be a list of chat messages"],
    ),
    "import_out_is_a_file": (
        out_is_file("import"),
        ["--out", "a-file: exists and is not a folder"],
    ),
    "import_limit_negative": (
        lambda w: ["import", "--format", "easy-vqa", "--out", str(w / "e"), "--limit", "-3"],
        ["--limit: must be at least 1, got -3"],
    ),
    "hf_input_is_no_dataset": (
        lambda w: [
            "import",
            "--format",
            "hf",
            "--input",
            str(w / "folder.png"),
            "--out",
            str(w / "h"),
        ],
        ["folder.png: not a saved Hugging Face dataset"],
    ),
    "ladder_out_is_the_input": (
        lambda w: ladder()(w)[:5] + ["--out", str(w / "rows.jsonl")],
        ["--out", "rows.jsonl: is the input file"],
    ),
    "ladder_out_is_a_folder": (
        lambda w: ladder()(w)[:5] + ["--out", str(w / "folder.png")],
        ["--out", "folder.png: is a folder, not a file"],
    ),
    "ladder_rollouts_0": (ladder("--rollouts", "0"), ["--rollouts: must be at least 1, got 0"]),
    "ladder_size_0": (ladder("--size", "0"), ["--size: must be at least 1, got 0"]),
    "ladder_temperature_0": (ladder("--temperature", "0"), ["--temperature: must be a positive"]),
    "ladder_own_share_nan": (ladder("--own-share", "nan"), ["--own-share: must lie in [0, 1]"]),
    "ladder_unknown_model": (
        lambda w: ladder()(w)[:3] + ["--model", "nobody/nothing"] + ladder()(w)[5:],
        ["--model nobody/nothing: no such model"],
    ),
    "ladder_corrupt_cache": (corrupt_cache, ["ladder.cache/rollouts.jsonl:1: corrupt cache line"]),
    # item 8: nonsense that used to be accepted
    "synth_n_negative": (synth("--n", "-5"), ["--n: must be at least 1, got -5"]),
    "synth_choice_share_2.5": (
        synth("--choice-share", "2.5"),
        ["--choice-share: must lie in [0, 1]"],
    ),
    "synth_choice_share_nan": (synth("--choice-share", "nan"), ["--choice-share: must lie in"]),
    "synth_test_n_negative": (synth("--test-n", "-1"), ["--test-n: must be at least 0, got -1"]),
    "synth_out_is_a_file": (out_is_file("synth"), ["--out", "a-file: exists and is not a folder"]),
    "question_is_an_object": (
        lambda w: evaluate(w, GOOD, row(question={"text": "How many?"})),
        ["rows.jsonl:2: field 'question' must be a string, not an object"],
    ),
    "answer_nan": (
        lambda w: evaluate(w, GOOD, GOOD.replace('"answer": "3"', '"answer": NaN')),
        ["rows.jsonl:2: field 'answer': nan is not a finite number"],
    ),
    "level_infinity": (
        lambda w: evaluate(w, row(level=1).replace('"level": 1', '"level": -Infinity')),
        ["rows.jsonl:1: field 'level': -inf is not a finite number"],
    ),
    "answer_is_a_boolean": (
        lambda w: evaluate(w, row(answer=True)),
        ["rows.jsonl:1: field 'answer' must be a string or a number, not a boolean"],
    ),
    "id_is_a_list": (
        lambda w: evaluate(w, row(id=[1])),
        ["rows.jsonl:1: field 'id' must be a string or an integer, not an array"],
    ),
    "choices_repeated": (
        lambda w: evaluate(w, row(answer="B", choices=["1", "2", "1"])),
        ["rows.jsonl:1: field 'choices' lists '1' twice"],
    ),
    "image_is_a_device": (
        lambda w: evaluate(w, row(image="/dev/zero")),
        ["rows.jsonl:1: field 'image': /dev/zero is not a regular file"],
    ),
    "ladder_input_is_a_folder": (
        lambda w: ["ladder", "--input", str(w / "folder.png"), *ladder()(w)[3:]],
        ["folder.png: is a folder, not a JSONL file"],
    ),
    "field_nested_too_deeply": (
        lambda w: evaluate(w, deep(200)),
        ["rows.jsonl:1: field 'x': nested deeper than 64 levels"],
    ),
    "question_lone_surrogate": (
        lambda w: evaluate(w, GOOD.replace("How many?", "How many\\ud800?")),
        ["rows.jsonl:1: field 'question': holds a lone surrogate U+D800"],
    ),
    "official_lone_surrogate_in_message": (
        official(chat({"type": "image", "image": "good.png"}, {"type": "text", "text": "\ud83d"})),
        ["official.jsonl:1: field 'question': holds a lone surrogate U+D83D"],
    ),
    "row_is_an_array": (
        lambda w: evaluate(w, "[1, 2]"),
        ["rows.jsonl:1: a row must be a JSON object"],
    ),
    "choices_are_booleans": (
        lambda w: evaluate(w, row(answer="A", choices=[True, False])),
        ["rows.jsonl:1: field 'choices' must hold strings or numbers"],
    ),
}


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    return {
        str(path.relative_to(root)): (path.is_dir(), path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize(("make_args", "fragments"), CASES.values(), ids=list(CASES))
def test_bad_input_is_one_error_line_exit_2_and_nothing_written(work, make_args, fragments):
    args = make_args(work)
    before = snapshot(work)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output and result.stdout == ""
    assert snapshot(work) == before


def test_skip_invalid_skips_truncated_and_oversized_images_and_counts_them(work):
    lines = [GOOD, row(image="cut.png"), row(image="cut.jpg"), row(image="bomb.png"), GOOD]
    loaded = read_rows(rows_file(work, *lines), skip_invalid=True)
    assert len(loaded.rows) == 2 and loaded.skipped == 3
    assert [reason.split(": ")[0].rsplit(":", 1)[1] for reason in loaded.reasons] == ["2", "3", "4"]


def test_a_bom_and_blank_lines_are_fine(work):
    data = rows_file(work, "\ufeff" + GOOD, "", "   ", GOOD)
    assert len(read_rows(data).rows) == 2


def test_images_at_the_pixel_limit_pass(work):
    side = int(MAX_IMAGE_PIXELS**0.5)
    Image.new("RGB", (side, side)).save(work / "edge.png")
    assert len(read_rows(rows_file(work, row(image="edge.png"))).rows) == 1


def test_math_workers_ignore_ctrl_c(capfd):
    """Ctrl-C in a terminal signals its whole foreground process group; the math workers are
    outside it, and ignore SIGINT sent to them directly: no traceback, still answering."""
    from observe_r1.rewards.safe_verify import _Worker

    worker = _Worker()
    try:
        assert os.getpgid(worker.process.pid) != os.getpgid(0)
        assert worker.wait_ready(60)
        os.kill(worker.process.pid, signal.SIGINT)
        assert worker.ask("\\frac{1}{2}", "0.5", 60) == b"1\n"
    finally:
        worker.stop()
    assert "Traceback" not in capfd.readouterr().err


def test_a_full_disk_during_the_work_is_one_error_line(work, monkeypatch):
    import observe_r1.data.synth as synth_module

    def full(path, rows):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(synth_module, "write_rows", full)
    result = CliRunner().invoke(app, synth()(work))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr == f"error: {work / 'synth' / 'rows.jsonl'}: No space left on device\n"
