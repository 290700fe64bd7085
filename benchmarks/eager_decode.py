"""EAGER-LLM decoding: trie-constrained beam search vs beam search + post-filtering.

Compares, at the same beam count, on SmolLM2-135M with a synthetic catalogue:

- ``trie``: :func:`eager_llm.decoding.recommend` (own beam loop over the item trie, each
  prompt encoded once, beams read the prompt cache in place);
- ``generate+trie``: the reference, ``model.generate`` beam search with
  :class:`~eager_llm.decoding.TrieLogitsProcessor` (generate repeats every prompt per beam);
- ``peer``: the public EAGER-LLM / LC-Rec evaluation: ``generate`` beam search where each
  output position may only hold tokens seen at that position in some index
  (``prefix_allowed_tokens_fn``), EOS after the last position, ``early_stopping=True``,
  then every decoded string that is not an item is scored -1000 (pushed to the bottom).

It prints users/s (median over repeats), the share of valid items among the k returned
per user, the time of the two ways to plug the trie into ``generate``
(``prefix_allowed_tokens_fn`` vs a ``LogitsProcessor``, per call on a full beam batch)
and the extrapolated time of an ML-100K test evaluation (943 users).

The catalogue imitates EAGER-LLM indices for ~1.3k items with K=256 codebooks: two
sources x two levels, ``<a_i><b_j>`` semantic + ``<c_i><d_j>`` behaviour, where ``a``/``c``
are uniform random first-level clusters and ``b``/``d`` the item's rank inside its
cluster. The new token embeddings are mean-initialised (untrained), so the peer's valid
share here is that of a model that knows nothing about the catalogue.

    .venv/bin/python benchmarks/eager_decode.py [--users 32] [--peer-users 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections import defaultdict

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PrefixConstrainedLogitsProcessor

from eager_llm.decoding import (
    ItemTrie,
    TrieLogitsProcessor,
    recommend,
    recommend_with_generate,
)
from model_zoo import resolve

ML100K_TEST_USERS = 943
PEER_INVALID_SCORE = -1000.0


def synthetic_catalogue(n_items: int, codebook: int, rng: random.Random) -> dict[int, list[str]]:
    """item -> ``[<a_i>, <b_j>, <c_k>, <d_l>]``: random clusters a, c; in-cluster ranks b, d."""
    clusters_a = [rng.randrange(codebook) for _ in range(n_items)]
    clusters_c = [rng.randrange(codebook) for _ in range(n_items)]
    seen_a: dict[int, int] = defaultdict(int)
    seen_c: dict[int, int] = defaultdict(int)
    index = {}
    for item, (a, c) in enumerate(zip(clusters_a, clusters_c, strict=True)):
        index[item] = [f"<a_{a}>", f"<b_{seen_a[a]}>", f"<c_{c}>", f"<d_{seen_c[c]}>"]
        seen_a[a] += 1
        seen_c[c] += 1
    return index


def user_prompts(
    tokenizer, index: dict[int, list[str]], n_users: int, history: int, rng: random.Random
) -> list[str]:
    """Chat-formatted seqrec prompts over random histories of ``history`` items."""
    prompts = []
    for _ in range(n_users):
        items = rng.sample(list(index), history)
        text = (
            "The user has interacted with items "
            + ", ".join("".join(index[item]) for item in items)
            + " in order. Predict the next item the user will interact with."
        )
        prompts.append(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        )
    return prompts


class PositionalAllowedTokens:
    """The public code's ``prefix_allowed_tokens_fn``: at output position i, any token that
    occurs at position i of some index; after the last position, EOS only."""

    def __init__(self, index: dict[int, list[str]], tokenizer, prompt_length: int) -> None:
        by_position: dict[int, set[int]] = defaultdict(set)
        for tokens in index.values():
            for position, token in enumerate(tokens):
                by_position[position].add(tokenizer.convert_tokens_to_ids(token))
        self.allowed = [sorted(by_position[i]) for i in range(len(by_position))]
        self.allowed.append([tokenizer.eos_token_id])
        self.prompt_length = prompt_length

    def __call__(self, batch_id: int, input_ids: torch.Tensor) -> list[int]:
        position = min(input_ids.shape[0] - self.prompt_length, len(self.allowed) - 1)
        return self.allowed[position]


@torch.inference_mode()
def peer_recommend(model, tokenizer, prompts, index, k: int, batch_size: int):
    """Beam search restricted per position, then invalid strings scored -1000 and sorted
    last. Returns per user ``[(item or None, score)]`` of length k."""
    item_of = {tuple(tokenizer.convert_tokens_to_ids(t) for t in v): i for i, v in index.items()}
    tokenizer.padding_side = "left"
    results = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(
            prompts[start : start + batch_size],
            padding=True,
            add_special_tokens=False,
            return_tensors="pt",
        )
        prompt_length = batch["input_ids"].shape[1]
        out = model.generate(
            **batch,
            max_new_tokens=10,
            prefix_allowed_tokens_fn=PositionalAllowedTokens(index, tokenizer, prompt_length),
            num_beams=k,
            num_return_sequences=k,
            output_scores=True,
            return_dict_in_generate=True,
            early_stopping=True,
            pad_token_id=tokenizer.pad_token_id,
        )
        sequences = out.sequences[:, prompt_length:].tolist()
        scores = out.sequences_scores.tolist()
        for user in range(len(sequences) // k):
            ranked = []
            for ids, score in zip(
                sequences[user * k : (user + 1) * k], scores[user * k : (user + 1) * k], strict=True
            ):
                end = ids.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in ids else None
                item = item_of.get(tuple(ids[:end]))
                ranked.append((item, score if item is not None else PEER_INVALID_SCORE))
            results.append(sorted(ranked, key=lambda pair: pair[1], reverse=True))
    return results


def timed(fn, repeats: int):
    """(median seconds, last result) of ``repeats`` calls of ``fn()``."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def valid_share(results, index) -> float:
    """Share of the returned items (k per user) that are distinct catalogue items."""
    valid = sum(len({i for i, _ in ranked if i in index}) for ranked in results)
    return valid / sum(len(ranked) for ranked in results)


def processor_overhead(trie: ItemTrie, vocab: int, n_users: int, k: int, repeats: int = 5):
    """Seconds per call of the two trie plug-ins of ``generate`` on (n_users * k, vocab)
    scores, with beams at depth 2 of the trie (random valid paths)."""
    prompt_length = 8
    rng = random.Random(0)
    paths = [trie.sequences[rng.choice(trie.items)][:2] for _ in range(n_users * k)]
    input_ids = torch.tensor([[0] * prompt_length + path for path in paths])
    scores = torch.randn(n_users * k, vocab)

    def allowed(batch_id: int, ids: torch.Tensor) -> list[int]:
        node = trie.walk(ids[prompt_length:].tolist())
        return [trie.terminator] if node is None else trie.allowed_tokens(node).tolist()

    plugins = {
        "TrieLogitsProcessor": TrieLogitsProcessor(trie, prompt_length),
        "prefix_allowed_tokens_fn": PrefixConstrainedLogitsProcessor(allowed, num_beams=k),
    }
    return {
        name: timed(lambda p=p: p(input_ids, scores), repeats)[0] for name, p in plugins.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1300)
    parser.add_argument("--users", type=int, default=32, help="users decoded with the trie")
    parser.add_argument("--peer-users", type=int, default=2, help="users for generate-based runs")
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--beams", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rng = random.Random(0)
    folder = resolve("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, args.dtype)).eval()
    index = synthetic_catalogue(args.items, 256, rng)
    tokenizer.add_tokens(sorted({token for tokens in index.values() for token in tokens}))
    model.resize_token_embeddings(len(tokenizer))
    trie = ItemTrie(index, tokenizer)
    prompts = user_prompts(tokenizer, index, args.users, args.history, rng)
    peer_prompts = prompts[: args.peer_users]
    prompt_tokens = statistics.median(
        len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]
    )
    print(
        f"SmolLM2-135M {args.dtype}, {args.threads} threads, load average "
        f"{os.getloadavg()[0]:.1f}; {len(trie)} items, {len(tokenizer)} tokens, "
        f"~{prompt_tokens} prompt tokens, {args.beams} beams, {args.repeats} repeats"
    )

    k, batch = args.beams, args.batch_size
    runs = {
        "trie": (prompts, lambda: recommend(model, tokenizer, prompts, trie, k, batch)),
        "generate+trie": (
            peer_prompts,
            lambda: recommend_with_generate(model, tokenizer, peer_prompts, trie, k, batch),
        ),
        "peer": (
            peer_prompts,
            lambda: peer_recommend(model, tokenizer, peer_prompts, index, k, batch),
        ),
    }
    speed = {}
    for name, (users, run) in runs.items():
        seconds, results = timed(run, args.repeats)
        speed[name] = len(users) / seconds
        print(
            f"{name:>14}: {speed[name]:6.2f} users/s ({seconds:6.2f} s for {len(users)} users), "
            f"valid items {valid_share(results, index):.1%} of {k} per user"
        )
    print(f"trie / peer speed: {speed['trie'] / speed['peer']:.1f}x")
    print(f"trie / generate+trie speed: {speed['trie'] / speed['generate+trie']:.1f}x")
    print(
        f"ML-100K test ({ML100K_TEST_USERS} users x {k} beams), extrapolated: "
        f"trie {ML100K_TEST_USERS / speed['trie'] / 60:.1f} min, "
        f"peer {ML100K_TEST_USERS / speed['peer'] / 60:.1f} min"
    )
    for name, seconds in processor_overhead(trie, len(tokenizer), batch, k).items():
        print(f"{name:>25}: {seconds * 1e3:6.1f} ms per call on {batch * k} beams")


if __name__ == "__main__":
    main()
