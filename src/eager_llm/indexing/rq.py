"""Residual k-means (RQ-KMeans) codes of one embedding source.

Level 1 clusters the embeddings with k-means; each later level clusters the residuals (the
embedding minus the centroids chosen so far). Unlike hierarchical k-means, every level shares
one codebook of ``K`` centroids across all items, so a code token means the same direction
wherever it appears; clusters are not balanced and different items may get the same code
(collisions, resolved by :mod:`eager_llm.indexing.dki`).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from .kmeans import code_length


def residual_kmeans_codes(embeddings: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """(n, d) embeddings -> (n, ceil(log_k n)) int64 codes, one k-means codebook per level
    (``min(k, distinct residuals)`` centroids)."""
    residual = embeddings.astype(np.float64)
    codes = np.zeros((len(residual), code_length(len(residual), k)), dtype=np.int64)
    for level in range(codes.shape[1]):
        clusters = min(k, len(np.unique(residual, axis=0)))
        kmeans = KMeans(clusters, n_init=1, random_state=seed).fit(residual)
        codes[:, level] = kmeans.labels_
        residual = residual - kmeans.cluster_centers_[kmeans.labels_]
    return codes
