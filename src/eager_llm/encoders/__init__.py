"""Item encoders for the DKI index: behaviour (SASRec) and semantics (sentence embeddings).

Modules: ``behaviour`` (SASRec: training, full-ranking scores, save/load; also the SASRec
baseline), ``semantic`` (item text -> sentence-transformers embeddings), ``cache`` (disk cache
keyed by dataset identity and encoder configuration).
"""

from .behaviour import SASRec, SASRecConfig, TrainConfig, evaluate, train_sasrec
from .cache import cached_folder, dataset_fingerprint
from .semantic import encode_texts, item_text, item_texts

__all__ = [
    "SASRec",
    "SASRecConfig",
    "TrainConfig",
    "cached_folder",
    "dataset_fingerprint",
    "encode_texts",
    "evaluate",
    "item_text",
    "item_texts",
    "train_sasrec",
]
