"""``eager-llm demo`` with tiny settings: ML-100K, tiny-llama, 2 + 2 steps, 10 users (~25 s)."""

from pathlib import Path

import torch
from typer.testing import CliRunner

from eager_llm.cli import app

TINY = Path(__file__).parents[2] / "configs" / "eager_llm" / "tiny.yaml"


def test_tiny_demo_writes_the_report_with_tables_and_plots(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(
            app,
            ["demo", "--out", str(tmp_path), "--model", "tiny-llama", "--config", str(TINY),
             "--stage1-steps", "2", "--stage2-steps", "2", "--sasrec-epochs", "1",
             "--users", "10", "--valid-users", "5", "--eval-steps", "1"],
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert f"report: {tmp_path / 'report.md'}" in result.stdout
    text = (tmp_path / "report.md").read_text()
    assert "Backbone `tiny-llama`" in text and "first 10 test users" in text
    for method in ("EAGER-LLM (anneal)", "most popular", "SASRec", "w/o annealing (stage 1)"):
        assert f"| {method} |" in text
    assert "95 % CI" in text and "Not the method's accuracy" in text
    assert "**What this run shows**" in text and "shows the pipeline, not the gain" in text
    assert "Validation Recall@10 on 5 fixed validation users" in text
    assert "(step 0, " in text and "(step 2, " in text
    assert "histories of at most 5 items" in text and "the top 8 layers" in text
    assert "Step 2 against step 0, user by user" in text
    pictures = ("stage1/loss_curve.png", "stage1/learning_curve.png", "anneal/loss_curve.png")
    for picture in (*pictures, "anneal/eval.png"):
        assert f"]({picture})" in text
        assert (tmp_path / picture).stat().st_size > 0
    assert (tmp_path / "anneal" / "eval.json").is_file()
    assert (tmp_path / "index" / "sasrec" / "model.pt").is_file()
