"""``eager-llm eval`` and ``recommend`` on a real tiny pipeline, and the baselines by hand.

The module fixture runs the real commands on the toy dataset of the training tests:
``eager-llm index`` (MiniLM + 2 SASRec epochs, K = 4), ``train`` and ``anneal`` on
tiny-llama (2 steps each); a copy of the stage-1 run plays the TIGER-style sibling and a
one-epoch ``eager-llm tiger`` the TIGER (T5) sibling.
"""

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from eager_llm.baselines import most_popular, popularity, sasrec_rankings
from eager_llm.cli import app
from eager_llm.evaluate import (
    METRICS,
    SIBLINGS,
    compared_runs,
    decode_users,
    evaluate,
    load_run,
    load_users,
    markdown_table,
    rank_with_run,
    write_report,
)
from eager_llm.metrics import evaluate_rankings
from eager_llm.run_decoder import RunDecoder
from eager_llm.sharding import Shard, merge
from eager_llm.tiger import tiger_rankings
from eager_llm.training import load_config
from tests.eager_llm.training.toy import CONFIG, N_ITEMS, SEQUENCES, write_dataset

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(*args):
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = write_dataset(root / "data")
    ok("index", "--dataset", data, "--out", root / "index", "--k", 4, "--k-core", 1,
       "--epochs", 2, "--cache-dir", root / "cache")  # fmt: skip
    ok("train", "--config", CONFIG, "--index", root / "index", "--output-dir", root / "stage1",
       "--max-steps", 2)  # fmt: skip
    ok("anneal", "--config", CONFIG, "--from", root / "stage1", "--index", root / "index",
       "--output-dir", root / "anneal", "--max-steps", 2)  # fmt: skip
    shutil.copytree(root / "stage1" / "final", root / "tiger" / "final")
    ok("tiger", "--index", root / "index", "--output-dir", root / "tiger-t5", "--epochs", 1,
       "--layers", 1, "--d-model", 16, "--d-ff", 32, "--heads", 1)  # fmt: skip
    (root / "no-gct").mkdir()  # no final/: not a run, not evaluated
    return root


def test_popularity_counts_training_items_and_breaks_ties_by_index():
    train = [np.array([0, 1, 2]), np.array([1, 2]), np.array([2, 3])]
    assert popularity(train, 5).tolist() == [1, 2, 3, 1, 0]
    ranked = most_popular(train, 5, n_users=3, k=4)
    assert ranked == [[2, 1, 0, 3]] * 3
    metrics = evaluate_rankings(ranked, [0, 3, 2], ks=(1, 3))
    assert metrics["recall@1"] == pytest.approx(1 / 3)
    assert metrics["recall@3"] == pytest.approx(2 / 3)
    assert metrics["ndcg@3"] == pytest.approx((1 / np.log2(4) + 1) / 3)  # ranks 3 and 1


def test_run_settings_name_the_index_template_and_history(root):
    run = load_run(root / "anneal")
    assert run.index == (root / "index").resolve()
    assert run.template == "short" and run.max_history == 20
    assert set(run.item_index) == {f"i{i}" for i in range(N_ITEMS)}


def test_siblings_with_final_are_found_and_compare_is_checked(root):
    found = compared_runs(root / "anneal", ["mine=" + str(root / "stage1")])
    assert found == {
        SIBLINGS["stage1"]: root / "stage1",
        SIBLINGS["tiger"]: root / "tiger",
        "TIGER (T5 from scratch)": root / "tiger-t5",
        "mine": root / "stage1",
    }
    assert SIBLINGS["stage1"] not in compared_runs(root / "stage1")  # not itself
    with pytest.raises(ValueError, match="NAME=FOLDER"):
        compared_runs(root / "anneal", ["nofolder"])
    with pytest.raises(FileNotFoundError, match="no folder"):
        compared_runs(root / "anneal", ["x=" + str(root / "missing")])


@pytest.fixture(scope="module")
def report(root):
    ok("eval", "--run", root / "anneal", "--beams", 5, "--batch-size", 4,
       "--compare", f"again={root / 'stage1'}")  # fmt: skip
    return json.loads((root / "anneal" / "eval.json").read_text())


def test_eval_table_has_the_run_the_baselines_and_present_siblings(root, report):
    methods = [r["method"] for r in report["results"]]
    assert methods == [
        "EAGER-LLM (anneal)",
        "most popular",
        "SASRec",
        SIBLINGS["stage1"],
        SIBLINGS["tiger"],
        "again",
        "TIGER (T5 from scratch)",
    ]
    assert report["n_users"] == len(SEQUENCES) and report["split"] == "test"
    markdown = (root / "anneal" / "eval.md").read_text()
    for method in methods:
        assert f"| {method} |" in markdown
    assert (root / "anneal" / "eval.png").stat().st_size > 0
    by_method = {r["method"]: r for r in report["results"]}
    keys = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
    for result in report["results"]:
        assert all(0 <= result[key] <= 1 for key in keys) and result["n_users"] == 6
    same = [by_method[name] for name in (SIBLINGS["stage1"], SIBLINGS["tiger"], "again")]
    assert all([r[k] for k in keys] == [same[0][k] for k in keys] for r in same)
    for result in report["results"]:  # per-user ranks reproduce the means
        ranks = np.array(result["ranks"])
        assert len(ranks) == 6 and result["recall@5"] == pytest.approx(
            np.mean((ranks >= 0) & (ranks < 5))
        )
    assert "| TIGER (T5 from scratch) | most popular | " in markdown
    assert "| SASRec | most popular | " in markdown and "| most popular | SASRec |" in markdown


def test_hit_at_1_and_20_stand_beside_recall_and_ndcg(root, report):
    markdown = (root / "anneal" / "eval.md").read_text()
    header = "| method | Hit@1 | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | Hit@20 | seconds | run |"
    assert header in markdown
    assert "Hit@k equals Recall@k" in markdown and "Lists hold 5 items" in markdown
    assert report["processes"] == 1 and report["instructions"] == [0]
    for result in report["results"]:
        ranks = np.array(result["ranks"])
        assert result["hit@1"] == pytest.approx(np.mean(ranks == 0))
        assert result["hit@20"] == result["recall@5"]  # lists of 5 beams
    old = {"method": "m", "run": "", "recall@5": 0.5, "recall@10": 0.5, "ndcg@5": 0.25,
           "ndcg@10": 0.25, "seconds": 1.0}  # fmt: skip
    assert markdown_table([old]).splitlines()[0] == (
        "| method | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | seconds | run |"
    )  # an eval.json from before Hit@k keeps its table


def test_the_table_names_a_folder_inside_the_working_directory_relatively(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    row = {"method": "SASRec", "recall@5": 0.5, "recall@10": 0.5, "ndcg@5": 0.25,
           "ndcg@10": 0.25, "seconds": 1.0}  # fmt: skip
    inside = markdown_table([{**row, "run": str(tmp_path.resolve() / "index" / "sasrec")}])
    assert inside.splitlines()[-1].endswith("| index/sasrec |")
    outside = markdown_table([{**row, "run": "/elsewhere/index/sasrec"}])
    assert outside.splitlines()[-1].endswith("| /elsewhere/index/sasrec |")


def test_several_instructions_report_each_and_their_spread(root, report, tmp_path):
    result = evaluate(root / "anneal", beams=5, batch_size=4, instructions=(0, 3), progress=False)
    assert result["instructions"] == [0, 3]
    default = {r["method"]: r for r in report["results"]}
    llm_rows = [r for r in result["results"] if "instructions" in r]
    assert [r["method"] for r in llm_rows] == [
        "EAGER-LLM (anneal)", SIBLINGS["stage1"], SIBLINGS["tiger"]
    ]  # fmt: skip
    for row in result["results"]:
        assert row["ranks"] == default[row["method"]]["ranks"]  # the row: instruction 0
    for row in llm_rows:
        first, second = row["instructions"]
        assert (first["instruction"], second["instruction"]) == (0, 3)
        assert first["ranks"] == row["ranks"]
        for key in METRICS:
            values = (first[key], second[key])
            assert row["across_instructions"]["mean"][key] == pytest.approx(np.mean(values))
            assert row["across_instructions"]["min"][key] == min(values)
            assert row["across_instructions"]["max"][key] == max(values)
    assert any(r["instructions"][0]["ranks"] != r["instructions"][1]["ranks"] for r in llm_rows)
    markdown = write_report(result, tmp_path).read_text()
    assert "Across seqrec instructions, mean [min, max]" in markdown
    assert "| EAGER-LLM (anneal) | 0,3 | " in markdown


def test_bad_instructions_are_one_error_line(root):
    result = cli("eval", "--run", root / "anneal", "--instructions", "0,9")
    assert result.exit_code == 2
    assert "error: --instructions '0,9': no instruction 9" in result.output


def test_two_shards_decode_each_user_once_and_merge_to_one_process(root):
    run = load_run(root / "anneal")
    users = load_users(run.index, "test", run.max_history)
    decoder = RunDecoder(run)
    options = {"beams": 5, "batch_size": 2, "progress": False}
    one = rank_with_run(decoder, users, **options)
    parts = [decode_users(decoder, users, shard=Shard(rank, 2), **options) for rank in (0, 1)]
    assert [len(part) for part in parts] == [4, 2]  # batches 0 and 2, then batch 1
    assert merge(parts, len(users.examples)) == one


def test_most_popular_row_matches_counts_by_hand(report):
    """Counts over the training part s[:-2] of each toy sequence; targets are s[-1]; the
    list has 5 items (--beams 5)."""
    counts = np.zeros(N_ITEMS, dtype=int)
    for items in SEQUENCES.values():
        np.add.at(counts, items[:-2], 1)
    top = np.argsort(-counts, kind="stable")[:5].tolist()
    ranks = [top.index(s[-1]) + 1 for s in SEQUENCES.values() if s[-1] in top]
    expected = {
        "recall@5": len(ranks) / len(SEQUENCES),
        "ndcg@10": sum(1 / np.log2(r + 1) for r in ranks) / len(SEQUENCES),
    }
    assert 0 < expected["recall@5"] < 1
    [row] = [r for r in report["results"] if r["method"] == "most popular"]
    assert row["recall@5"] == pytest.approx(expected["recall@5"])
    assert row["ndcg@10"] == pytest.approx(expected["ndcg@10"])


def test_sasrec_row_is_the_index_sasrec(root, report):
    [row] = [r for r in report["results"] if r["method"] == "SASRec"]
    ranked = sasrec_rankings(root / "index" / "sasrec", [s[:-1] for s in SEQUENCES.values()], 5)
    assert all(len(items) == 5 for items in ranked)
    targets = [s[-1] for s in SEQUENCES.values()]
    assert row["recall@5"] == pytest.approx(evaluate_rankings(ranked, targets)["recall@5"])


def test_valid_split_and_user_limit(root):
    result = evaluate(root / "stage1", split="valid", beams=3, limit_users=2, progress=False)
    assert result["split"] == "valid" and result["n_users"] == 2
    assert [r["method"] for r in result["results"]][:3] == [
        "EAGER-LLM (stage1)", "most popular", "SASRec"
    ]  # fmt: skip


def test_recommend_prints_titles_and_scores(root):
    result = ok("recommend", "--run", root / "anneal", "--history", "i1, i2,i3", "--k", 3)
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "history: Movie 1; Movie 2; Movie 3"
    assert len(lines) == 4
    for rank, line in enumerate(lines[1:], 1):
        assert line.lstrip().startswith(f"{rank}. Movie ") and "log p = -" in line


def test_recommend_rejects_unknown_ids_and_an_empty_history(root):
    result = cli("recommend", "--run", root / "anneal", "--history", "i1,nope,i99")
    assert result.exit_code == 2
    assert "unknown item ids (not in the run's index): nope, i99" in result.output
    result = cli("recommend", "--run", root / "anneal", "--history", " , ")
    assert result.exit_code == 2 and "--history is empty" in result.output


def test_eval_of_a_folder_without_a_run_is_a_clear_error(root):
    result = cli("eval", "--run", root / "no-gct")
    assert result.exit_code == 2 and "no final/config.json" in result.output


def test_tiger_config_is_one_seqrec_stage_without_gct_on_a_semantic_index():
    config = load_config(CONFIG.parent / "tiger-ml100k.yaml", "train")
    assert config.tasks == ["seqrec"] and not config.use_gct and config.lora is None
    assert config.index.endswith("index-semantic") and config.output_dir.endswith("/tiger")


def test_a_run_indexing_other_items_is_refused(root, tmp_path):
    shutil.copytree(root / "stage1" / "final", tmp_path / "other" / "final")
    index = json.loads((root / "index" / "item_index.json").read_text())
    index["i99"] = index.pop("i9")
    (tmp_path / "other" / "final" / "item_index.json").write_text(json.dumps(index))
    result = cli("eval", "--run", root / "stage1", "--compare", f"x={tmp_path / 'other'}")
    assert result.exit_code == 2
    assert "1 items without an index, 1 unknown to the dataset" in result.output


def test_seen_items_are_everything_before_the_target(root):
    run = load_run(root / "anneal")
    for split, before in (("test", 1), ("valid", 2)):
        users = load_users(run.index, split, max_history=2)
        assert users.seen == [s[:-before] for s in SEQUENCES.values()]
        assert [list(e.history) for e in users.examples] == [
            s[:-before][-2:] for s in SEQUENCES.values()
        ]


def test_the_protocol_is_recorded_and_printed(root, report):
    assert report["seen"] == "keep" and report["beam_scores"] == "vocabulary"
    markdown = (root / "anneal" / "eval.md").read_text()
    assert (
        "**protocol: seen items kept; beam scores: log-softmax over the whole vocabulary**"
        in markdown
    )


def test_seen_remove_keeps_every_history_item_out_of_every_list(root, tmp_path):
    shutil.copytree(root / "stage1", tmp_path / "stage1")
    shutil.copytree(root / "tiger-t5", tmp_path / "tiger-t5")
    (tmp_path / "stage1" / "eval.json").write_text('{"an earlier": "report"}')
    result = ok("eval", "--run", tmp_path / "stage1", "--beams", 5, "--batch-size", 4,
                "--seen", "remove", "--beam-scores", "allowed")  # fmt: skip
    assert result.stdout.startswith(
        "protocol: seen items removed; beam scores: log-softmax over the trie's allowed tokens"
    )
    removed = json.loads((tmp_path / "stage1" / "eval-remove-allowed.json").read_text())
    assert (removed["seen"], removed["beam_scores"]) == ("remove", "allowed")
    markdown = (tmp_path / "stage1" / "eval-remove-allowed.md").read_text()
    assert "**protocol: seen items removed;" in markdown
    assert "![eval](eval-remove-allowed.png)" in markdown
    assert (tmp_path / "stage1" / "eval.json").read_text() == '{"an earlier": "report"}'
    assert [r["method"] for r in removed["results"]] == [
        "EAGER-LLM (stage1)", "most popular", "SASRec", "TIGER (T5 from scratch)"
    ]  # fmt: skip
    run = load_run(root / "stage1")
    users = load_users(run.index, "test", run.max_history)
    lists = {
        "EAGER-LLM": rank_with_run(RunDecoder(run), users, beams=5, seen="remove", progress=False),
        "TIGER": tiger_rankings(root / "tiger-t5", users.item_ids,
                                [list(e.history) for e in users.examples], 5, exclude=users.seen),
        "most popular": most_popular(users.train, N_ITEMS, len(users.seen), 5,
                                     histories=users.seen, seen="remove"),
    }  # fmt: skip
    for method, ranked in lists.items():
        for items, seen in zip(ranked, users.seen, strict=True):
            assert not set(items) & set(seen), method
            assert len(items) == min(5, N_ITEMS - len(set(seen))) == len(set(items)), method
    # u2 has seen 6 of the 10 items: 4 are left for 5 slots
    assert len(lists["EAGER-LLM"][2]) == 4
    result = cli("eval", "--run", tmp_path / "stage1", "--seen", "drop")
    assert result.exit_code == 2
    assert "error: --seen must be keep or remove, got 'drop'" in result.output
    result = cli("eval", "--run", tmp_path / "stage1", "--beam-scores", "full")
    assert "error: --beam-scores must be vocabulary or allowed, got 'full'" in result.output


def test_eval_device_must_be_auto_cpu_or_an_available_cuda(tmp_path):
    bad = cli("eval", "--run", tmp_path, "--device", "gpu")
    assert bad.exit_code == 2 and "error: --device: must be auto, cpu, cuda" in bad.output
    if not torch.cuda.is_available():
        bad = cli("eval", "--run", tmp_path, "--device", "cuda")
        assert bad.exit_code == 2 and "error: --device: cuda: no CUDA device" in bad.output


def test_tiger_resumes_a_finished_run_and_refuses_to_start_over_it(root):
    tiny = ("--layers", 1, "--d-model", 16, "--d-ff", 32, "--heads", 1)
    again = cli("tiger", "--index", root / "index", "--output-dir", root / "tiger-t5",
                "--epochs", 1, *tiny)  # fmt: skip
    assert again.exit_code == 2 and "--overwrite" in again.output
    resumed = ok("tiger", "--index", root / "index", "--output-dir", root / "tiger-t5",
                 "--epochs", 1, *tiny, "--resume")  # fmt: skip
    assert "resumed after epoch 1" in resumed.output and "best epoch 1 of 1" in resumed.output
    other = cli("tiger", "--index", root / "index", "--output-dir", root / "tiger-t5",
                "--epochs", 1, "--layers", 2, "--d-model", 16, "--d-ff", 32, "--heads", 1,
                "--resume")  # fmt: skip
    assert other.exit_code == 2 and "other settings (layers 1 -> 2)" in other.output
