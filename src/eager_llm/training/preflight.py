"""Everything a training run reads, checked before any model is loaded or file written.

:func:`check_run_inputs` raises :class:`~yaml_config.ConfigError` naming the file, or the
config key to blame (the CLI then names the ``--set``, option or config file that gave it),
and the problem: no index, an index file that is missing, not JSON or not an item index
(codes that are not index tokens), embeddings that do not match the items, a dataset that
differs from the one the index was built on, only review tasks on a dataset without review
text, an unknown model, or a ``max_length`` too short for the shortest seqrec row.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from eager_llm.data import review_file
from eager_llm.indexing import index_vocabulary, load_item_index
from eager_llm.tasks import REVIEW_TASKS, recommendation_prompt
from model_zoo.lookup import model_problem
from yaml_config import ConfigError

from .config import EagerConfig
from .index_files import IndexFiles, load_index, load_indexed_dataset

JSON_FILES = ("items.json", "index_stats.json")
ARRAYS = ("semantic_embeddings.npy", "behaviour_embeddings.npy")


def _index_error(detail: str) -> ConfigError:
    return ConfigError(detail)  # names its file: no config key to blame


def read_index(folder: str | Path) -> IndexFiles:
    """The index folder's files, each checked so that an error names the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise _index_error(f"{folder}: no such index folder (build it with `eager-llm index`)")
    item_index = folder / "item_index.json"
    for path in [item_index, *(folder / name for name in (*JSON_FILES, *ARRAYS))]:
        if not path.is_file():
            raise _index_error(f"{path}: missing (build the index with `eager-llm index`)")
    for path in (item_index, *(folder / name for name in JSON_FILES)):
        try:
            json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise _index_error(f"{path}: not valid JSON ({error})") from None
    try:
        index = load_item_index(item_index)
    except (ValueError, TypeError, AttributeError) as error:
        raise _index_error(f"{item_index}: not an item index ({error})") from None
    if not isinstance(index, dict) or not all(
        isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens)
        for tokens in index.values()
    ):
        raise _index_error(f"{item_index}: not an item index (item id -> list of tokens)")
    try:
        index_vocabulary(index)  # every code a token the model can learn: <letter_number>
    except ValueError as error:
        raise _index_error(f"{item_index}: not an item index ({error})") from None
    for name in ARRAYS:
        try:
            array = np.load(folder / name, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise _index_error(f"{folder / name}: not a NumPy array file ({error})") from None
        if array.ndim != 2:
            raise _index_error(f"{folder / name}: not a 2-d array (shape {array.shape})")
    try:
        return load_index(folder)
    except (ValueError, KeyError, TypeError) as error:
        detail = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        raise _index_error(f"{folder}: not a usable index: {detail}") from None


def shortest_row(tokenizer, levels: int, template: str) -> int:
    """Tokens of the shortest seqrec row: leading specials, the prompt with one history
    item of ``levels`` index tokens, the target's ``levels`` tokens and EOS (each index
    token is one added token)."""
    from eager_llm.prompt_ids import encode_prompts

    lead, [prompt] = encode_prompts(tokenizer, [recommendation_prompt([], template)])
    return len(lead) + len(prompt) + 2 * levels + 1


def check_run_inputs(config: EagerConfig, base: str | None = None) -> IndexFiles:
    """Check the index, its dataset, the model (``base``: stage 1's ``final/``) and that
    ``max_length`` fits a row; return the index files."""
    if not config.index:
        raise ConfigError("no index folder: set 'index' or pass --index", key="index")
    model = base or config.model
    if problem := model_problem(model):
        raise ConfigError(f"'model' {model}: {problem}", key="model")
    files = read_index(config.index)
    try:
        load_indexed_dataset(files)
    except (ValueError, FileNotFoundError) as error:
        raise _index_error(f"{config.index}: the index's dataset: {error}") from None
    if set(config.tasks) <= set(REVIEW_TASKS) and review_file(files.dataset) is None:
        raise ConfigError(
            f"'tasks' holds only review tasks ({', '.join(config.tasks)}), which need review "
            f"text; {files.dataset} has none (only Amazon review files have it): add another "
            "task such as seqrec",
            key="tasks",
        )
    from transformers import AutoTokenizer

    from model_zoo import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve(model))
    levels = max(len(tokens) for tokens in files.item_index.values())
    needed = shortest_row(tokenizer, levels, config.template)
    if config.max_length < needed:
        raise ConfigError(
            f"'max_length' {config.max_length} is too small: the shortest seqrec row (the "
            f"{config.template!r} prompt with one history item of {levels} index tokens, the "
            f"target's {levels} and EOS) takes {needed} tokens",
            key="max_length",
        )
    return files


def check_trained_run(folder: str | Path) -> None:
    """Check the files ``eager-llm eval`` / ``recommend`` read from a run folder (its
    ``final/item_index.json`` and ``run_settings.json``, and the index folder these name)
    so that an error names the file; a missing file is left to the reader's own message."""
    final = Path(folder) / "final"
    settings_path = final / "run_settings.json"
    for path in (final / "item_index.json", settings_path):
        if not path.is_file():
            return
        try:
            json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not valid JSON ({error})") from None
    try:
        load_item_index(final / "item_index.json")
    except (ValueError, TypeError, AttributeError) as error:
        raise ConfigError(f"{final / 'item_index.json'}: not an item index ({error})") from None
    settings = json.loads(settings_path.read_text())
    if not isinstance(settings, dict) or not isinstance(settings.get("index"), str):
        raise ConfigError(f"{settings_path}: names no index folder ('index')")
    read_index(settings["index"])
