"""Seqrec instructions for evaluation: parsing ``--instructions``, the prompts, the spread."""

import pytest

from eager_llm.instructions import parse_instructions, seqrec_instructions, spread
from eager_llm.tasks import prompt_pools, recommendation_prompt


def test_parse_all_and_lists():
    count = len(prompt_pools()["seqrec"])
    assert count >= 2 and len(seqrec_instructions()) == count
    assert parse_instructions("all") == tuple(range(count))
    assert parse_instructions("0") == (0,)
    assert parse_instructions("3, 1") == (3, 1)  # order kept: the first is the table's row


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "give 'all' or ids"),
        ("1,,2", "give 'all' or ids"),
        ("-1", "give 'all' or ids"),
        ("a", "give 'all' or ids"),
        ("99", "no instruction 99 (the seqrec pool has 5: 0 to 4)"),
        ("1,1", "given twice"),
    ],
)
def test_bad_lists_name_the_option(text, message):
    with pytest.raises(ValueError, match="--instructions") as error:
        parse_instructions(text)
    assert message in str(error.value)


def test_instruction_zero_is_the_inference_prompt_and_others_differ():
    history = ["<a_1><b_2>", "<a_0><b_3>"]
    for template in ("short", "alpaca"):
        opening = prompt_pools()["seqrec"][0].split("{history}")[0]
        assert opening in recommendation_prompt(history, template)  # the default: the first
        count = len(seqrec_instructions())
        prompts = {recommendation_prompt(history, template, i) for i in range(count)}
        assert len(prompts) == len(seqrec_instructions())
        assert all("<a_1><b_2>, <a_0><b_3>" in prompt for prompt in prompts)


def test_spread_by_hand():
    rows = [{"recall@5": 0.2, "hit@1": 0.0}, {"recall@5": 0.4, "hit@1": 0.1}]
    assert spread(rows, ["recall@5", "hit@1"]) == {
        "mean": {"recall@5": pytest.approx(0.3), "hit@1": pytest.approx(0.05)},
        "min": {"recall@5": 0.2, "hit@1": 0.0},
        "max": {"recall@5": 0.4, "hit@1": 0.1},
    }
