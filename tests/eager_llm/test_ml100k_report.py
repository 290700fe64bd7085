"""experiments/eager_ml100k_report.py on hand-made run folders: every number it prints comes
from the files."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "experiments" / "eager_ml100k_report.py"


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def result(method: str, ranks: list[int]) -> dict:
    hits = [0 <= r < 10 for r in ranks]
    recall = sum(hits) / len(ranks)
    return {"method": method, "run": "", "recall@5": recall, "recall@10": recall,
            "ndcg@5": recall, "ndcg@10": recall, "n_users": len(ranks), "seconds": 1.0,
            "ranks": ranks}  # fmt: skip


def fake_root(root: Path) -> None:
    results = [
        result("EAGER-LLM (anneal)", [0, -1, 3, -1] * 25),
        result("most popular", [-1, -1, 3, -1] * 25),
        result("SASRec", [0, 1, 2, -1] * 25),
    ]
    report = {"split": "test", "n_users": 100, "n_items": 50, "beams": 20, "threads": 1,
              "dtype": "float32", "dataset": "toy", "results": results}  # fmt: skip
    (root / "auto" / "anneal").mkdir(parents=True)
    (root / "auto" / "anneal" / "eval.json").write_text(json.dumps(report))
    train = {"loss": 3.0, "lm_loss": 2.5, "gct_sem": 3.5, "gct_beh": 3.0}
    write_jsonl(root / "auto" / "stage1" / "metrics.jsonl", [
        {"step": 0, "samples": 0, "eval_recall@10": 0.01, "eval_ndcg@10": 0.005},
        {"step": 10, "samples": 80, **train},
        {"step": 10, "samples": 80, "eval_recall@10": 0.02, "eval_ndcg@10": 0.01},
    ])  # fmt: skip
    baselines = {"n_users": 4, "most popular": {"recall@10": 0.25}, "SASRec": {"recall@10": 0.5}}
    (root / "auto" / "stage1" / "validation_baselines.json").write_text(json.dumps(baselines))
    curve = [{"epoch": 1, "samples": 900, "valid_recall@10": 0.3, "valid_ndcg@10": 0.1}]
    (root / "tiger-t5").mkdir()
    (root / "tiger-t5" / "tiger.json").write_text(json.dumps({"curve": curve}))
    levels = [
        {"level": 0, "source": "semantic", "items_per_prefix_mean": 7.1, "decided": 0.0},
        {"level": 1, "source": "behaviour", "items_per_prefix_mean": 1.0, "decided": 1.0},
    ]
    stats = {"k": 8, "levels": 2, "level_sources": ["semantic", "behaviour"],
             "level_statistics": levels}  # fmt: skip
    (root / "index-auto").mkdir()
    (root / "index-auto" / "index_stats.json").write_text(json.dumps(stats))
    (root / "timings.txt").write_text("12 s: eager-llm index --k auto\n")


def render_page(root: Path, out: Path) -> str:
    """The page the script writes from ``root`` (it must exit 0)."""
    done = subprocess.run([sys.executable, str(SCRIPT), str(root), "--out", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out.read_text()


def test_the_page_is_written_from_the_run_files(tmp_path):
    fake_root(tmp_path / "runs")
    page = render_page(tmp_path / "runs", tmp_path / "page.md")
    assert page.index("```bash") < page.index("| method |")  # the command comes first
    assert "all 100 users, full ranking over 50 items" in page and "12 s: eager-llm index" in page
    assert "| EAGER-LLM (anneal) | 0.5000 |" in page
    # paired differences: EAGER-LLM wins users 0, 4, 8, ... over most popular: +0.25
    assert "| EAGER-LLM (anneal) | most popular | +0.2500 [" in page
    assert "| EAGER-LLM stage 1 (K auto) | 10 | 80 | 0.020 | 0.010 |" in page
    assert "| TIGER (T5) | epoch 1 | 900 | 0.300 | 0.100 |" in page
    assert "| K auto (DKI) | 8 | 2 (semantic behaviour) | 7.1 | 0.000 / 1.000 |" in page
    assert "semantic 3.50, behaviour 3.00; chance" in page and "ln 50 = 3.91" in page
    assert (tmp_path / "page_curves.png").stat().st_size > 0


def test_the_dense_arms_join_the_table_on_the_same_users(tmp_path):
    root = tmp_path / "runs"
    fake_root(root)
    dense = [result("EAGER-LLM (anneal)", [1, 1, -1, -1] * 25), result("most popular", [0] * 100)]
    report = {"split": "test", "n_users": 100, "n_items": 50, "beams": 10, "threads": 1,
              "dtype": "float32", "dataset": "toy", "results": dense}  # fmt: skip
    (root / "dense" / "bf" / "anneal").mkdir(parents=True)
    (root / "dense" / "bf" / "anneal" / "eval.json").write_text(json.dumps(report))
    (root / "dense" / "timings.txt").write_text("99 s: eager-llm train dense\n")
    page = render_page(root, tmp_path / "page.md")
    name = "EAGER-LLM, every-item labels, behaviour first (anneal) (10 beams)"
    assert f"| {name} | 0.5000 |" in page and "99 s: eager-llm train dense" in page
    # the second "most popular" is dropped: the difference is to the first one's ranks
    assert f"| {name} | most popular | +0.2500 [" in page
    assert page.count("| most popular | 0.") == 1


def test_each_change_is_compared_with_the_run_it_changes(tmp_path):
    root = tmp_path / "runs"
    fake_root(root)
    for arm, ranks in (("bf", [1, -1, -1, -1]), ("bf-emb", [1, 1, -1, -1])):
        stage1 = result("w/o annealing (stage 1)", ranks * 25)
        report = {"split": "test", "n_users": 100, "n_items": 50, "beams": 10, "threads": 1,
                  "dtype": "float32", "dataset": "toy", "results": [stage1]}  # fmt: skip
        (root / "dense" / arm / "anneal").mkdir(parents=True)
        (root / "dense" / arm / "anneal" / "eval.json").write_text(json.dumps(report))
    page = render_page(root, tmp_path / "page.md")
    init = "behaviour first, embedding init, w/o annealing (stage 1) (10 beams)"
    order = "every-item labels, behaviour first, w/o annealing (stage 1) (10 beams)"
    assert f"| {init} | {order} | +0.2500 [" in page  # users 1, 5, 9, ... gained
    assert f"| {order} | TIGER (T5 from scratch) |" not in page  # no TIGER in this root
