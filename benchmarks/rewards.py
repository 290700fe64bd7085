"""Throughput and worst-case latency of the Observe-R1 rewards.

Realistic mix: GRPO-like groups of 8 completions per prompt (integers, decimals, fractions,
LaTeX, percentages, multiple-choice letters, ~5% malformed), fresh data on every repeat. Ours is
`format_reward` + `accuracy_reward`; the peer, measured in the same run on the same answers, calls
math-verify's ``parse`` + ``verify`` directly (in this process, its own signal timeouts on).
Medians over the repeats. The parent waits while the worker computes: one core's worth of work.

Adversarial set: the slowest single call (format + accuracy) over inputs built to hang or bloat.

    .venv/bin/python benchmarks/rewards.py [--groups 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import time
from collections.abc import Callable
from fractions import Fraction

from math_verify import parse, verify

from observe_r1.rewards import accuracy_reward, extract_answer, format_reward
from observe_r1.rewards.safe_verify import math_equal, start_workers, stats

GROUP_SIZE = 8
LATEX = [  # (gold, an equivalent way to write it)
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\frac{\\pi}{4}", "\\pi/4"),
    ("x^2+1", "1+x^2"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"),
    ("3\\sqrt{2}", "\\sqrt{18}"),
    ("(1, 4)", "(1,4)"),
    ("\\{1, 3\\}", "\\{3, 1\\}"),
    ("2\\pi", "2 \\pi"),
    ("x=5", "5"),
    ("\\frac{7}{3}", "\\dfrac{7}{3}"),
]
FILLER = "Looking at the figure, the triangle has sides 3, 4 and 5, so the angle is right. "


def realistic_answers(rng: random.Random) -> tuple[str, list[str]]:
    """One prompt's gold and the answers its group of 8 gave: the right one in a form or two,
    one or two wrong ones."""
    kind = rng.choices(
        ["integer", "decimal", "fraction", "latex", "percent", "choice"],
        weights=[35, 10, 15, 15, 5, 20],
    )[0]
    if kind == "integer":
        gold = rng.randint(0, 500)
        right, wrong = [str(gold)], [str(gold + rng.randint(1, 9)), str(gold * 2 + 1)]
    elif kind == "decimal":
        gold = rng.randint(1, 999) / 100
        right, wrong = [f"{gold:.2f}", f"{gold:g}"], [f"{gold + 0.1:.2f}"]
    elif kind == "fraction":
        value = Fraction(rng.randint(1, 9), rng.randint(2, 12))
        gold = f"\\frac{{{value.numerator}}}{{{value.denominator}}}"
        right = [gold, f"{value.numerator}/{value.denominator}"]
        wrong = [f"{value.numerator + 1}/{value.denominator}", f"{float(value):.2f}"]
    elif kind == "latex":
        index = rng.randrange(len(LATEX))
        gold, equivalent = LATEX[index]
        right, wrong = [gold, gold, equivalent], [LATEX[(index + 1) % len(LATEX)][0]]
    elif kind == "percent":
        gold = rng.randint(1, 99)
        right, wrong = [f"{gold}\\%", f"{gold}%"], [f"{gold + 5}%"]
        gold = f"{gold}\\%"
    else:
        gold = rng.choice("ABCD")
        right = [gold, f"({gold})", f"{gold}. {rng.randint(1, 90)}"]
        wrong = [rng.choice([letter for letter in "ABCD" if letter != gold])]
    answers = [rng.choice(right) if rng.random() < 0.5 else rng.choice(wrong) for _ in range(8)]
    return str(gold), answers


def realistic_completion(answer: str, rng: random.Random) -> str:
    think = FILLER * rng.randint(3, 15)
    roll = rng.random()
    if roll < 0.02:
        return f"<observe>a figure</observe><think>{think}</think> The answer is {answer}."
    if roll < 0.04:
        return f"<think>{think}</think><answer>{answer}"
    if roll < 0.05:
        return f"<answer>{answer}</answer><answer>{answer}</answer>"
    return f"<observe>a figure</observe>\n<think>{think}</think>\n<answer>{answer}</answer>"


def realistic_mix(groups: int, seed: int) -> list[tuple[str, str]]:
    """(completion, gold) pairs, `groups` prompts x 8 samples."""
    rng = random.Random(seed)
    mix = []
    for _ in range(groups):
        gold, answers = realistic_answers(rng)
        mix += [(realistic_completion(answer, rng), gold) for answer in answers]
    return mix


def ours(completion: str, gold: str) -> float:
    return format_reward(completion) + accuracy_reward(completion, gold)


def ours_accuracy_only(completion: str, gold: str) -> float:
    return accuracy_reward(completion, gold)


def peer(completion: str, gold: str) -> float:
    """math-verify called directly on the same extracted answer, no fast paths, no worker."""
    answer = extract_answer(completion)
    if not answer:
        return 0.0
    return float(verify(parse(f"${gold}$"), parse(f"${answer}$")))


def rate(score: Callable[[str, str], float], mix: list[tuple[str, str]]) -> float:
    """Completions per second of `score` over `mix`, starting from cold answer caches."""
    math_equal.cache_clear()
    started = time.perf_counter()
    for completion, gold in mix:
        score(completion, gold)
    return len(mix) / (time.perf_counter() - started)


def adversarial_set() -> dict[str, tuple[str, str]]:
    """name -> (completion, gold)."""

    def wrapped(answer: str) -> str:
        return f"<observe>o</observe><think>t</think><answer>{answer}</answer>"

    return {
        "power tower 9^{9^{9^{9}}}": (wrapped("9^{9^{9^{9}}}"), "3"),
        "python power 9**9**9**9": (wrapped("9**9**9**9"), "3"),
        "factorial (10^{10})!": (wrapped("(10^{10})!"), "3"),
        "400 nested parentheses": (wrapped("(" * 400 + "1" + ")" * 400), "1"),
        "10k nested parentheses": (wrapped("(" * 10_000 + "1" + ")" * 10_000), "1"),
        "100k-digit number": (wrapped("9" * 100_000), "9"),
        "1 MB answer": (wrapped("x + " * 250_000), "x"),
        "1 MB think": ("<observe>o</observe><think>" + "a" * 1_000_000 + "</think>", "1"),
        "1 MB of whitespace": ("<observe>" + " " * 1_000_000 + "</observe>", "1"),
        "140k tags": ("<think>" * 140_000, "1"),
        "unbalanced LaTeX": (wrapped("\\frac{1}{2"), "3"),
        "unbalanced braces": (wrapped("\\sqrt{{{{{{{{2}"), "3"),
        "NUL bytes": (wrapped("1\0 2\0\0"), "1"),
    }


def worst_case() -> list[tuple[str, float]]:
    """Seconds for each adversarial input (format in both modes + accuracy), slowest first."""
    timings = []
    for name, (completion, gold) in adversarial_set().items():
        started = time.perf_counter()
        format_reward(completion)
        format_reward(completion, compat="official")
        accuracy_reward(completion, gold)
        timings.append((name, time.perf_counter() - started))
    return sorted(timings, key=lambda timing: -timing[1])


def main() -> None:
    logging.disable(logging.WARNING)  # math-verify logs every timeout of the peer
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200, help="prompts per repeat (x8 samples)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    start_workers()
    accuracy_reward("<answer>x^2</answer>", "x^2+0")  # wait for the worker's imports
    results: dict[str, list[float]] = {"ours": [], "ours_accuracy_only": [], "peer": []}
    sent_to_worker = 0
    for repeat in range(args.repeats):
        mix = realistic_mix(args.groups, seed=repeat)
        requests_before = stats.requests
        results["ours"].append(rate(ours, mix))
        sent_to_worker += stats.requests - requests_before
        results["ours_accuracy_only"].append(rate(ours_accuracy_only, mix))
        results["peer"].append(rate(peer, mix))
    total = args.groups * GROUP_SIZE * args.repeats

    medians = {name: statistics.median(rates) for name, rates in results.items()}
    print(
        f"realistic mix: {args.groups * GROUP_SIZE} completions x {args.repeats} repeats (medians)"
    )
    print(f"  ours  format+accuracy    {medians['ours']:10,.0f} completions/s")
    print(f"  ours  accuracy only      {medians['ours_accuracy_only']:10,.0f} completions/s")
    print(f"  peer  math-verify direct {medians['peer']:10,.0f} completions/s")
    print(
        f"  ratio ours/peer (accuracy only): {medians['ours_accuracy_only'] / medians['peer']:.1f}x"
    )
    print(f"  sent to the math-verify worker: {sent_to_worker / total:.1%} of completions")

    timeouts_before = stats.timeouts
    timings = worst_case()
    print(f"adversarial set: {len(timings)} inputs, {stats.timeouts - timeouts_before} timeouts")
    for name, seconds in timings:
        print(f"  {seconds * 1000:8.1f} ms  {name}")
    print(f"  worst case: {timings[0][1]:.3f} s (target <= 1 s)")


if __name__ == "__main__":
    main()
