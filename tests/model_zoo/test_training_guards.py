"""training_guards: a failed checkpoint write named as an OSError, NaN-free JSON lines."""

import errno
import json

import pytest
from safetensors import SafetensorError

from model_zoo.training_guards import (
    append_record,
    json_line,
    read_records,
    truncate_after,
    written,
)


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC),
        (SafetensorError("Error while serializing: I/O error: (os error 28)"), errno.ENOSPC),
        (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704"), errno.EIO),
        (RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"), 5),
    ],
)
def test_a_failed_write_is_an_os_error_naming_the_folder(tmp_path, raised, code):
    folder = tmp_path / "checkpoint-3"
    with pytest.raises(OSError, match="could not be written") as caught, written(folder):
        raise raised
    assert caught.value.errno == code and caught.value.filename == str(folder)


def test_other_errors_pass_through(tmp_path):
    with pytest.raises(RuntimeError, match="share memory"), written(tmp_path):
        raise RuntimeError("Some tensors share memory")


def test_json_lines_have_no_bare_nan():
    line = json_line({"loss": float("nan"), "parts": {"gct": [1.0, float("-inf")]}, "step": 3})
    assert json.loads(line) == {"loss": None, "parts": {"gct": [1.0, None]}, "step": 3}


def test_append_record_names_the_file_it_could_not_write(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_record(path, {"step": 1, "loss": float("inf")})
    assert path.read_text() == '{"step": 1, "loss": null}\n'
    missing = tmp_path / "gone" / "metrics.jsonl"
    with pytest.raises(OSError, match="could not be written") as caught:
        append_record(missing, {"step": 2})
    assert caught.value.filename == str(missing)


def test_truncate_after_keeps_the_records_up_to_the_step_as_written(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for step, loss in ((1, 0.5), (2, float("nan")), (2, 0.25), (3, 0.125)):
        append_record(path, {"step": step, "loss": loss})
    before = path.read_text().splitlines()
    truncate_after(path, 2)
    assert path.read_text().splitlines() == before[:3]
    assert [r["loss"] for r in read_records(path)] == [0.5, None, 0.25]
    truncate_after(tmp_path / "absent.jsonl", 2)  # a run without this log: nothing to cut
    assert not (tmp_path / "absent.jsonl").exists()
