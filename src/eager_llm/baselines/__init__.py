"""Non-LLM baselines of the evaluation, as top-k item rankings over the whole catalogue.

- :mod:`.ranking`: top-k lists and target ranks from scores, the tie rule and the ``seen``
  protocols (``"keep"`` / ``"remove"`` the user's history items);
- :mod:`.popular`: most-popular (:func:`most_popular`, :func:`popularity`);
- :mod:`.markov`: item co-occurrence / first-order Markov over the user's last items;
- :mod:`.itemknn`: ItemKNN (item-item cosine with shrinkage);
- :mod:`.sasrec`: SASRec rankings of a saved model and full-softmax training with early
  stopping on validation under both protocols;
- :mod:`.tuning`: each baseline's grid, chosen on the validation split, then scored once on
  the test split (``eager-llm baselines``).

Every list holds item indices of the leave-one-out split, best first; training counts and
weights come from the training sequences only.
"""

from .itemknn import ItemKNNConfig, item_similarity, itemknn_rankings, itemknn_scores
from .markov import MarkovConfig, markov_rankings, markov_scores, transition_counts
from .popular import most_popular, popularity
from .ranking import SEEN, check_seen, target_ranks, top_k
from .sasrec import CETrainConfig, sasrec_rankings, sasrec_scores, train_sasrec_ce

__all__ = [
    "SEEN",
    "CETrainConfig",
    "ItemKNNConfig",
    "MarkovConfig",
    "check_seen",
    "item_similarity",
    "itemknn_rankings",
    "itemknn_scores",
    "markov_rankings",
    "markov_scores",
    "most_popular",
    "popularity",
    "sasrec_rankings",
    "sasrec_scores",
    "target_ranks",
    "top_k",
    "train_sasrec_ce",
    "transition_counts",
]
