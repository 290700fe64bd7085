"""experiments/eager_recipe_test.py on hand-made evaluation and baselines reports: the users of
the two sources are checked, the strongest baseline comes from validation, the pairs are right.
No model, no data set."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "eager_recipe_test", REPO / "experiments" / "eager_recipe_test.py"
)
page = importlib.util.module_from_spec(spec)
sys.modules["eager_recipe_test"] = page
spec.loader.exec_module(page)

N = 40
VALID = {"Markov (co-occurrence)": 0.2, "SASRec-200 (CE)": 0.3, "SASRec-50 (CE)": 0.25,
         "ItemKNN": 0.1, "most popular": 0.05}  # fmt: skip


def row(method: str, ranks, **extra) -> dict:
    return {"method": method, "ranks": [int(r) for r in ranks], **extra}


def write_run(root: Path, popular_ranks, llm_ranks, seen: str = "keep") -> Path:
    """A run folder with an evaluation report and a baselines folder with its tuned ranks."""
    rng = np.random.default_rng(0)
    run, baselines = root / "run", root / "baselines"
    (run / "anneal").mkdir(parents=True, exist_ok=True)
    results = [row("EAGER-LLM (anneal)", llm_ranks, seconds=1.0),
               row("most popular", popular_ranks, seconds=0.0),
               row("w/o annealing (stage 1)", rng.integers(-1, 20, N), seconds=1.0)]  # fmt: skip
    name = page.PROTOCOLS[seen][0]
    report = {"seen": seen, "n_users": N, "n_items": 50, "beams": 20, "dtype": "float32",
              "threads": 1, "results": results}  # fmt: skip
    (run / "anneal" / name).write_text(json.dumps(report))
    tuned = []
    for method, valid in VALID.items():
        ranks = popular_ranks if method == "most popular" else np.zeros(N)  # always first
        tuned.append(row(method, ranks) | {"valid_recall@10": valid})
    (baselines / f"test-{seen}").mkdir(parents=True, exist_ok=True)
    (baselines / f"test-{seen}" / "baselines.json").write_text(
        json.dumps({"seen": seen, "results": tuned})
    )
    return run


def test_the_two_sources_must_hold_the_same_users(tmp_path):
    popular = np.arange(N) % 15
    write_run(tmp_path, popular, np.full(N, -1))
    ranks, _, _ = page.load_protocol(tmp_path / "run", tmp_path / "baselines", "keep")
    assert np.isinf(ranks["EAGER-LLM, both stages"]).all()  # -1 = outside the list
    assert ranks["Markov (co-occurrence)"].tolist() == [0.0] * N
    report = json.loads((tmp_path / "run" / "anneal" / "eval.json").read_text())
    report["results"][1]["ranks"] = np.roll(popular, 1).tolist()  # another user order
    (tmp_path / "run" / "anneal" / "eval.json").write_text(json.dumps(report))
    with pytest.raises(ValueError, match="not the same users in the same order"):
        page.load_protocol(tmp_path / "run", tmp_path / "baselines", "keep")


def test_a_method_that_always_hits_first_beats_one_that_never_hits():
    never, always = np.full(N, np.inf), np.zeros(N)
    found = page.compare(never, always)
    assert found["recall@10"][0] == -1.0 and found["ndcg@10"][0] == -1.0
    assert (found["gained"], found["lost"]) == (0, N) and found["p"] < 1e-6


def test_the_page_pairs_every_row_with_the_best_baseline_on_validation(tmp_path, monkeypatch):
    run = write_run(tmp_path, np.arange(N) % 15, np.full(N, 3))
    for stage, steps in (("stage1", (0, 10)), ("anneal", (0, 4))):
        lines = [{"step": steps[1], "samples": 8 * steps[1], "samples_per_second": 1.0}]
        lines += [{"step": s, "samples": 8 * s, "eval_recall@10": 0.1, "seconds": 5.0}
                  for s in steps]  # fmt: skip
        (run / stage).mkdir(exist_ok=True)
        (run / stage / "metrics.jsonl").write_text("\n".join(map(json.dumps, lines)))
    (run / "anneal" / "final").mkdir()
    (run / "anneal" / "final" / "run_settings.json").write_text('{"best_checkpoint": null}')
    out = tmp_path / "page.md"
    monkeypatch.setattr(sys, "argv", ["x", "--run", str(run), "--baselines",
                                      str(tmp_path / "baselines"), "--page", str(out)])  # fmt: skip
    page.main()
    text = out.read_text()
    assert "Reference: **SASRec-200 (CE)** (strongest on validation)." in text
    assert "| SASRec-200 (CE) | 1.0000 | 1.0000 | reference |" in text
    assert "| EAGER-LLM, both stages vs Markov (co-occurrence) | -1.0000 [" not in text  # rank 3
    assert "| EAGER-LLM, both stages vs Markov (co-occurrence) |" in text
    assert "its last step 4" in text  # no best checkpoint recorded: final/ is the last step
