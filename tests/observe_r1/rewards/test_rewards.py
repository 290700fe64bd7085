"""Table-driven tests for the Observe-R1 format and accuracy rewards and the TRL callables.

Cases named ``public_defect_*`` show the fixed behaviour where the public Observe-R1 code differs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from math_verify import parse, verify

from observe_r1.rewards import (
    MAX_ANSWER_CHARS,
    OBSERVE_THINK_ANSWER,
    THINK_ANSWER,
    accuracy_reward,
    extract_answer,
    format_reward,
    make_accuracy_reward,
    make_format_reward,
)
from observe_r1.rewards.answer_match import MAX_MATCH_CHARS, answers_match, unwrap
from observe_r1.rewards.safe_verify import start_workers, stats

GENEROUS_TIMEOUT_S = 10.0  # table cases must not flake on a busy machine; no case comes close
ADVERSARIAL_BOUND_S = 3.0  # the target is 1 s; 3 s leaves room for a loaded CI machine


@pytest.fixture(scope="module", autouse=True)
def warm_workers():
    start_workers()


def completion_with(answer: str) -> str:
    return f"<observe>a diagram</observe>\n<think>let me see</think>\n<answer>{answer}</answer>"


# --- format ---------------------------------------------------------------------------------

GOOD = "<observe>a cat</observe><think>count legs</think><answer>4</answer>"
NESTED = "<think>first <observe>a cat</observe> then</think><answer>4</answer>"

# (completion, strict, official) for the default observe/think/answer tags.
FORMAT_CASES = {
    "canonical": (GOOD, 0.5, 0.5),
    "whitespace_around_and_between": (
        "\n <observe>a</observe>\n\n<think>b</think>\t<answer>c</answer>\n",
        0.5,
        0.5,
    ),
    "multiline_content": (
        "<observe>a\nb</observe><think>c\nd</think><answer>e\nf</answer>",
        0.5,
        0.5,
    ),
    "nul_bytes_in_content": ("<observe>\0</observe><think>\0</think><answer>\0</answer>", 0.5, 0.5),
    "official_unanchored_leading_text": ("Sure! " + GOOD, 0.0, 0.5),
    "official_unanchored_trailing_text": (GOOD + " Hope this helps.", 0.0, 0.5),
    "text_between_blocks": (
        "<observe>a</observe> so <think>b</think><answer>c</answer>",
        0.0,
        0.0,
    ),
    "empty_observe": ("<observe></observe><think>b</think><answer>c</answer>", 0.0, 0.0),
    "blank_observe_official_passes": (
        "<observe> </observe><think>b</think><answer>c</answer>",
        0.0,
        0.5,
    ),
    "blank_answer": ("<observe>a</observe><think>b</think><answer>\n</answer>", 0.0, 0.5),
    "missing_observe": ("<think>b</think><answer>c</answer>", 0.0, 0.0),
    "missing_answer": ("<observe>a</observe><think>b</think>", 0.0, 0.0),
    "think_before_observe": ("<think>b</think><observe>a</observe><answer>c</answer>", 0.0, 0.0),
    "answer_before_think": ("<observe>a</observe><answer>c</answer><think>b</think>", 0.0, 0.0),
    "official_observe_nested_in_think": (NESTED, 0.0, 0.5),
    "nested_without_text_before_observe": (
        "<think><observe>a</observe> then</think><answer>4</answer>",
        0.0,
        0.0,
    ),
    "public_defect_nested_form_skips_uniqueness": (
        NESTED + "<answer>5</answer><answer>6</answer>",
        0.0,
        0.5,
    ),
    "duplicate_answer_block": (GOOD + "<answer>5</answer>", 0.0, 0.0),
    "duplicate_think_block": (
        "<observe>a</observe><think>b</think><think>b</think><answer>c</answer>",
        0.0,
        0.0,
    ),
    "unclosed_answer": ("<observe>a</observe><think>b</think><answer>c", 0.0, 0.0),
    "upper_case_tags": ("<OBSERVE>a</OBSERVE><THINK>b</THINK><ANSWER>c</ANSWER>", 0.0, 0.0),
    "empty_completion": ("", 0.0, 0.0),
    "over_tagged_nested_form_refused": (NESTED + "<answer>5</answer>" * 40, 0.0, 0.0),
}


@pytest.mark.parametrize(
    ("completion", "strict", "official"), FORMAT_CASES.values(), ids=FORMAT_CASES
)
def test_format_reward_observe_think_answer(completion, strict, official):
    assert format_reward(completion) == strict
    assert format_reward(completion, compat="official") == official


# (completion, strict, official) for the GRPO baseline's think/answer tags.
THINK_ANSWER_CASES = {
    "canonical": ("<think>b</think><answer>c</answer>", 0.5, 0.5),
    "observe_block_is_foreign_text": (GOOD, 0.0, 0.5),
    "observe_inside_think_is_content": (NESTED, 0.5, 0.5),
    "trailing_text": ("<think>b</think><answer>c</answer>.", 0.0, 0.5),
    "two_answers": ("<think>b</think><answer>c</answer><answer>d</answer>", 0.0, 0.0),
}


@pytest.mark.parametrize(
    ("completion", "strict", "official"), THINK_ANSWER_CASES.values(), ids=THINK_ANSWER_CASES
)
def test_format_reward_think_answer(completion, strict, official):
    assert format_reward(completion, tags=THINK_ANSWER) == strict
    assert format_reward(completion, compat="official", tags=THINK_ANSWER) == official


def test_format_value_is_configurable():
    assert format_reward(GOOD, value=1.0) == 1.0
    assert format_reward("no tags", value=1.0) == 0.0


@pytest.mark.parametrize(
    ("compat", "tags"), [("lenient", OBSERVE_THINK_ANSWER), ("official", ("observe", "answer"))]
)
def test_format_rejects_unknown_settings(compat, tags):
    with pytest.raises(ValueError):
        format_reward(GOOD, compat=compat, tags=tags)


# The public Observe-R1 patterns, verbatim, as the oracle for compat="official".
PUBLIC_THINK_ANSWER_REGEX = (
    r"^(?=(?:.*<think>){1})(?=(?:.*<\/think>){1})"
    r"(?=(?:.*<answer>){1})(?=(?:.*<\/answer>){1})"
    r"(?!.*<think>.*<think>)"
    r"(?!.*<\/think>.*<\/think>)"
    r"(?!.*<answer>.*<answer>)"
    r"(?!.*<\/answer>.*<\/answer>)"
    r".*<think>(.+?)</think>\s*<answer>.+?</answer>.*$"
)
PUBLIC_OBSERVE_REGEX = (
    r"^(?=(?:.*<think>){1})(?=(?:.*<\/think>){1})"
    r"(?=(?:.*<answer>){1})(?=(?:.*<\/answer>){1})"
    r"(?=(?:.*<observe>){1})(?=(?:.*<\/observe>){1})"
    r"(?!.*<think>.*<think>)"
    r"(?!.*<\/think>.*<\/think>)"
    r"(?!.*<answer>.*<answer>)"
    r"(?!.*<\/answer>.*<\/answer>)"
    r"(?!.*<observe>.*<observe>)"
    r"(?!.*<\/observe>.*<\/observe>)"
    r".*<observe>(.+?)<\/observe>\s*<think>(.+?)</think>\s*<answer>.+?</answer>.*"
    r"|.*<think>(.+?)<observe>(.+?)<\/observe>(.+?)<\/think>\s*<answer>.+?</answer>.*$"
)
TOKENS = [f"<{s}{t}>" for t in OBSERVE_THINK_ANSWER for s in ("", "/")] + ["a", " ", "\n", "<"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=16).map("".join))
def test_official_compat_agrees_with_the_public_regex(text):
    for tags, public in (
        (OBSERVE_THINK_ANSWER, PUBLIC_OBSERVE_REGEX),
        (THINK_ANSWER, PUBLIC_THINK_ANSWER_REGEX),
    ):
        expected = 0.5 if re.search(public, text, re.DOTALL) else 0.0
        assert format_reward(text, compat="official", tags=tags) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_format_and_extract_never_raise(text):
    assert format_reward(text) in (0.0, 0.5)
    answer = extract_answer(text)
    assert answer is None or answer in text


# --- extract_answer ------------------------------------------------------------------------

EXTRACT_CASES = {
    "single_block": ("<answer>42</answer>", "42"),
    "stripped": ("<answer>  42 \n</answer>", "42"),
    "text_around": ("so <answer>x = 1</answer> done", "x = 1"),
    "empty_block": ("<answer></answer>", ""),
    "no_block": ("the answer is 42", None),
    "two_blocks": ("<answer>1</answer><answer>2</answer>", None),
    "public_defect_unclosed_answer_is_none": ("<think>t</think><answer>42", None),
    "closing_tag_only": ("42</answer>", None),
    "reversed_tags": ("</answer>42<answer>", None),
    "extra_closing_tag": ("<answer>42</answer></answer>", None),
}


@pytest.mark.parametrize(("completion", "expected"), EXTRACT_CASES.values(), ids=EXTRACT_CASES)
def test_extract_answer(completion, expected):
    assert extract_answer(completion) == expected


# --- accuracy ------------------------------------------------------------------------------

# (gold, answer inside <answer>, expected reward)
ACCURACY_CASES = {
    "integer": ("42", "42", 1.0),
    "wrong_integer": ("42", "43", 0.0),
    "integer_vs_decimal": ("2", "2.0", 1.0),
    "trailing_zero_decimal": ("1.50", "1.5", 1.0),
    "negative": ("-3", "-3", 1.0),
    "sign_matters": ("3", "-3", 0.0),
    "large_integers_differ": ("1000000", "1000001", 0.0),
    "fraction_vs_decimal": ("1/2", "0.5", 1.0),
    "decimal_vs_fraction": ("0.75", "3/4", 1.0),
    "math_verify_rounds_decimals": ("1/3", "0.333333", 1.0),
    "different_decimals": ("0.5", "0.6", 0.0),
    "thousands_separator": ("1,000", "1000", 1.0),
    "latex_frac_vs_decimal": ("\\frac{1}{2}", "0.5", 1.0),
    "latex_frac_shorthand": ("\\frac{1}{2}", "\\frac12", 1.0),
    "latex_boxed_answer": ("\\frac{3}{4}", "\\boxed{0.75}", 1.0),
    "latex_in_dollars": ("$\\frac{3}{4}$", "$0.75$", 1.0),
    "polynomial_reordered": ("x^2+1", "1+x^2", 1.0),
    "sqrt_as_power": ("\\sqrt{2}", "2^{1/2}", 1.0),
    "bare_latex_is_not_its_leading_number": ("2\\pi", "2", 0.0),
    "pi_multiple": ("2\\pi", "2 \\pi", 1.0),
    "percentage_vs_fraction": ("0.5", "50%", 1.0),
    "percentage_vs_number": ("50", "50\\%", 1.0),
    "set_order": ("\\{1,2\\}", "\\{2,1\\}", 1.0),
    "equation_rhs": ("x=3", "3", 1.0),
    "wrong_latex": ("\\frac{1}{2}", "\\frac{1}{3}", 0.0),
    "mc_letter": ("C", "C", 1.0),
    "mc_parenthesised": ("C", "(C)", 1.0),
    "mc_letter_dot": ("C", "C.", 1.0),
    "mc_letter_with_content": ("C", "C. 12", 1.0),
    "mc_parenthesised_with_content": ("C", "(C) 12", 1.0),
    "mc_option_prefix": ("C", "Option C", 1.0),
    "mc_answer_prefix": ("C", "Answer: C", 1.0),
    "mc_boxed": ("C", "\\boxed{C}", 1.0),
    "mc_gold_parenthesised": ("(B)", "B", 1.0),
    "mc_hedging_is_not_a_choice": ("C", "A or C", 0.0),
    "mc_letter_then_words": ("C", "C 12", 0.0),
    "mc_wrong_letter": ("C", "A", 0.0),
    "mc_lower_case_is_not_a_choice": ("C", "c", 0.0),
    "mc_option_content_only": ("C", "12", 0.0),
    "prose_case_insensitive": ("Paris", "paris", 1.0),
    "prose_final_full_stop": ("Paris", "Paris.", 1.0),
    "prose_anagram_is_not_sympy_product": ("Paris", "sirap", 0.0),
    "prose_yes_no": ("yes", "No", 0.0),
    "public_defect_unparseable_gold_is_not_free_reward": ("\\frac{1}{2", "7", 0.0),
    "unparseable_gold_same_text": ("\\frac{1}{2", " \\frac{1}{2 ", 1.0),
    "unparseable_gold_normalised_text": ("\\text{N/A}?", "\\text{n/a}?", 1.0),
    "empty_answer_block": ("42", "", 0.0),
}


@pytest.mark.parametrize(
    ("gold", "answer", "expected"), ACCURACY_CASES.values(), ids=ACCURACY_CASES
)
def test_accuracy_reward(gold, answer, expected):
    completion = completion_with(answer)
    assert accuracy_reward(completion, gold, timeout_s=GENEROUS_TIMEOUT_S) == expected


NO_ANSWER_CASES = {
    "public_defect_no_answer_block_scores_0": "<think>so it is 42</think> 42",
    "public_defect_unclosed_answer_scores_0": "<think>t</think><answer>42",
    "two_answer_blocks": "<answer>42</answer><answer>42</answer>",
}


@pytest.mark.parametrize("completion", NO_ANSWER_CASES.values(), ids=NO_ANSWER_CASES)
def test_accuracy_needs_a_single_answer_block(completion):
    assert accuracy_reward(completion, "42") == 0.0


NUMBER_PAIRS = [
    ("7", "7"),
    ("7", "8"),
    ("12", "012"),
    ("0.5", "1/2"),
    ("3/4", "0.75"),
    ("2/4", "1/2"),
    ("4/2", "3"),
    ("-1", "1"),
    ("0.1", "0.10"),
    ("100", "100.0"),
    ("5.77", "5.87"),
    ("\\frac{7}{9}", "0.78"),
    ("\\frac{7}{9}", "0.777778"),
    ("1/6", "0.1666667"),
    ("3.14159265", "3.1415926"),
    ("19%", "24\\%"),
    ("19.5%", "19.50001%"),
    ("19.5%", "19.6%"),
    ("50%", "0.5"),
    ("0.5", "50"),
]


@pytest.mark.parametrize(("gold", "answer"), NUMBER_PAIRS)
def test_number_fast_path_agrees_with_math_verify(gold, answer):
    direct = verify(
        parse(f"${gold}$", parsing_timeout=None), parse(f"${answer}$", parsing_timeout=None)
    )
    assert answers_match(gold, answer, GENEROUS_TIMEOUT_S) == direct


def test_fast_paths_never_reach_the_worker():
    before = stats.requests
    cheap = [
        ("42", "42"),
        ("42", "41"),
        ("5.77", "5.87"),
        ("\\frac{3}{4}", "0.75"),
        ("19\\%", "24%"),
        ("C", "(C)"),
        ("Paris", "Lyon"),
        ("x^2 + 1", " x^2  +\n1 "),
    ]
    for gold, answer in cheap:
        accuracy_reward(completion_with(answer), gold)
    assert stats.requests == before


# --- adversarial inputs --------------------------------------------------------------------

# (answer written by the model, counter that must go up: "timeouts", "oversized" or None)
ADVERSARIAL_CASES = {
    "power_tower": ("9^{9^{9^{9}}}", "timeouts"),
    "python_power_tower": ("9**9**9**9", None),
    "huge_factorial": ("(10^{10})!", "timeouts"),
    "deep_parentheses_under_length_cap": ("(" * 400 + "1" + ")" * 400, "timeouts"),
    "digits_100k": ("9" * 100_000, "oversized"),
    "parentheses_10k": ("(" * 10_000 + "1" + ")" * 10_000, "oversized"),
    "one_megabyte": ("x + " * 250_000, "oversized"),
    "unbalanced_latex": ("\\frac{1}{2", None),
    "unbalanced_braces": ("\\sqrt{{{{{{2}", None),
    "nul_bytes": ("1\0 2\0\0", None),
}


@pytest.mark.parametrize(("answer", "counter"), ADVERSARIAL_CASES.values(), ids=ADVERSARIAL_CASES)
def test_adversarial_answers_are_bounded_scored_0_and_counted(answer, counter):
    before = replace(stats)
    started = time.monotonic()
    reward = accuracy_reward(completion_with(answer), "3")
    assert time.monotonic() - started < ADVERSARIAL_BOUND_S
    assert reward == 0.0
    for name in ("timeouts", "oversized"):
        assert getattr(stats, name) - getattr(before, name) == (name == counter)


# The regex `unwrap` used before: cubic on a run of dollars (2,000 took 28 s).
OLD_WRAPPED = re.compile(r"\$+(.*?)\$+|\\(?:boxed|text|textbf|mathrm)\{(.*)\}", re.DOTALL)


def regex_unwrap(text: str) -> str:
    text = text.strip()
    while match := OLD_WRAPPED.fullmatch(text):
        text = (match[1] if match[1] is not None else match[2]).strip()
    return text


WRAPPING_PIECES = ["$", "$$", "x", "12", " ", "\n", "{", "}", "\\", "\\boxed{", "\\text{"]
WRAPPING_PIECES += ["\\textbf{", "\\mathrm{", "\\text", "boxed"]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(WRAPPING_PIECES), max_size=14).map("".join))
def test_unwrap_by_hand_agrees_with_the_old_regex(text):
    assert unwrap(text) == regex_unwrap(text)


PATHOLOGICAL_SCRIPT = """
from observe_r1.rewards.answer_match import (
    answers_match, choice_letter, is_prose, plain_number, unwrap,
)
dollars = "$" * 6000 + "x"  # the old regex: about 4 minutes for this one call
assert unwrap(dollars) == dollars and unwrap("$" * 6000 + "x" + "$") == "x"
assert choice_letter("$" * 999 + "C") is None and plain_number("$" * 999 + "7") is None
assert not is_prose("$" * 999 + "yes")
assert choice_letter("Option" + " " * 5000 + "C") == "C"
assert choice_letter("Option" + " " * 5000 + "z") is None
assert not answers_match("C", "$" * 999 + "C", 1.0)
assert answers_match(dollars, " " + dollars, 1.0)  # over MAX_MATCH_CHARS: text equality
assert not answers_match(dollars, dollars + "y", 1.0)
print("done")
"""


def test_answer_matching_is_linear_on_pathological_text():
    """Inputs the old `_WRAPPED` regex took minutes on; the subprocess's limit is 30 times
    what they take now, so only a return to super-linear matching can exceed it."""
    run = subprocess.run(
        [sys.executable, "-c", PATHOLOGICAL_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and run.stdout == "done\n", run.stderr


def test_texts_over_the_match_cap_are_compared_as_text_only():
    before = stats.requests
    long_gold = "1" * (MAX_MATCH_CHARS + 1)
    assert answers_match(long_gold, long_gold, GENEROUS_TIMEOUT_S)
    assert not answers_match(long_gold, long_gold[:-1] + ".0", GENEROUS_TIMEOUT_S)
    assert not answers_match("2", "\\frac{4}{2}" + " " * MAX_MATCH_CHARS, GENEROUS_TIMEOUT_S)
    assert answers_match("2", "\\frac{4}{2}", GENEROUS_TIMEOUT_S)
    assert stats.requests == before


def test_one_megabyte_completion_is_fast_for_both_rewards():
    completion = "<think>" + "a" * 1_000_000 + "</think><answer>3</answer>"
    started = time.monotonic()
    assert format_reward(completion, tags=THINK_ANSWER) == 0.5
    assert accuracy_reward(completion, "3") == 1.0
    assert time.monotonic() - started < 0.5


def live_children() -> int:
    """Child processes of this test process that have not been reaped (Linux /proc)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            count += int(fields[1]) == os.getpid()
    return count


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_worker_is_replaced_after_a_timeout_without_leaking():
    accuracy_reward(completion_with("9^{9^{9^{9}}}"), "3")
    assert live_children() <= 2  # the killed worker is reaped; active + spare remain
    assert accuracy_reward(completion_with("1+x^2"), "x^2+1", timeout_s=GENEROUS_TIMEOUT_S) == 1.0


def test_timeouts_work_off_the_main_thread():
    with ThreadPoolExecutor(max_workers=2) as pool:
        hanging = pool.submit(accuracy_reward, completion_with("9^{9^{9^{9}}}"), "3")
        latex = pool.submit(
            accuracy_reward,
            completion_with("\\sqrt{8}"),
            "2\\sqrt{2}",
            timeout_s=GENEROUS_TIMEOUT_S,
        )
        assert hanging.result() == 0.0
        assert latex.result() == 1.0
    assert threading.current_thread() is threading.main_thread()


# --- TRL-style callables -------------------------------------------------------------------

CONVERSATIONAL = [[{"role": "assistant", "content": GOOD}]]
MULTIMODAL_PARTS = [[{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}]]


@pytest.mark.parametrize(
    "completions", [[GOOD], CONVERSATIONAL, MULTIMODAL_PARTS], ids=["plain", "chat", "parts"]
)
def test_reward_callables_accept_plain_and_conversational_completions(completions):
    format_fn = make_format_reward()
    accuracy_fn = make_accuracy_reward()
    assert format_fn(prompts=["p"], completions=completions, answer=["4"]) == [0.5]
    assert accuracy_fn(prompts=["p"], completions=completions, answer=["4"]) == [1.0]


def test_reward_callables_are_named_for_trl_logging():
    assert make_format_reward().__name__ == "format"
    assert make_accuracy_reward().__name__ == "accuracy"
    assert make_accuracy_reward().stats is stats


def test_format_callable_settings():
    official = make_format_reward(value=1.0, compat="official")
    assert official(prompts=["p"], completions=["Sure! " + GOOD]) == [1.0]
    think_answer = make_format_reward(tags=THINK_ANSWER)
    assert think_answer(prompts=["p"], completions=["<think>t</think><answer>1</answer>"]) == [0.5]
    with pytest.raises(ValueError):
        make_format_reward(compat="loose")


def test_accuracy_callable_scores_each_completion_against_its_answer():
    accuracy_fn = make_accuracy_reward()
    completions = [completion_with("4"), completion_with("5"), "no answer", completion_with("B")]
    assert accuracy_fn(prompts=[""] * 4, completions=completions, answer=[4, "4", "4", "B"]) == [
        1.0,
        0.0,
        0.0,
        1.0,
    ]
    with pytest.raises(ValueError):
        accuracy_fn(prompts=[""], completions=completions, answer=["4"])


def test_answer_length_cap_is_inclusive():
    at_cap = "1" * MAX_ANSWER_CHARS
    assert accuracy_reward(completion_with(at_cap), at_cap) == 1.0
