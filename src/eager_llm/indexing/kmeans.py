"""Balanced k-means and the hierarchical k-means codes of one embedding source.

Balanced assignment: the ``n`` points go to ``k`` clusters of sizes ``n // k`` or
``n // k + 1`` (exactly ``n % k`` of the larger size). It is a greedy capacity-constrained
assignment: all (point, centroid) pairs in order of increasing distance, each pair taken when
the point is free and the cluster has room. Balanced k-means alternates it with centroid
updates, starting from the centroids of ordinary k-means (scikit-learn).

Hierarchical codes (EAGER / EAGER-LLM): split the items into ``K`` balanced clusters, recurse
into each cluster, until clusters hold one item. With balanced splits, every cluster at depth
``l`` has at most ``ceil(n / K**l)`` items, so the code length is ``ceil(log_K n)`` for every
item. Items with identical embeddings cannot be told apart by any clustering: the codes are
built for the distinct embeddings and identical items share a code (a collision, resolved and
reported by :func:`eager_llm.indexing.dki.resolve_collisions`).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans


def code_length(n: int, k: int) -> int:
    """``ceil(log_k n)`` computed exactly in integers; at least 1."""
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    length, capacity = 1, k
    while capacity < n:
        length, capacity = length + 1, capacity * k
    return length


def balanced_assignment(distances: np.ndarray) -> np.ndarray:
    """Greedy balanced assignment: ``distances`` (n, k) -> (n,) cluster of each point, with
    cluster sizes ``n // k`` or ``n // k + 1`` (exactly ``n % k`` clusters of the larger one).

    The greedy walks all pairs in the order of a stable argsort of the flattened matrix and
    takes a pair when its point is free and its cluster has room. Here it walks them in chunks:
    each chunk holds the pairs of the points still free and the clusters still open, up to a
    distance threshold (all ties at the threshold included), in the same order. The pairs left
    out cannot be taken: an assigned point stays assigned, and a closed cluster (``n // k + 1``
    items, or ``n // k`` once no larger slot is left) stays closed. A free point has no pair to
    an open cluster below the previous threshold (it would have been taken), so the chunk
    continues the walk exactly, and the labels equal the plain greedy's.
    """
    n, k = distances.shape
    small, larger_left = divmod(n, k)
    labels, sizes = [-1] * n, [0] * k
    free, open_clusters = np.arange(n), np.arange(k)
    while free.size:
        if free.size == n and open_clusters.size == k:
            sub = distances
        else:
            sub = distances[np.ix_(free, open_clusters)]
        # threshold: about 4 pairs per free point, estimated on a sample of the free points
        sample = sub[:: max(1, free.size // 1024)]
        rank = min(sample.size, 4 * len(sample)) - 1
        rows, columns = np.nonzero(sub <= np.partition(sample, rank, axis=None)[rank])
        if rows.size == 0:  # a NaN threshold: the rest, NaNs last as in argsort
            rows, columns = np.divmod(np.arange(sub.size), sub.shape[1])
        order = np.argsort(sub[rows, columns], kind="stable")  # ties: row-major = flat order
        points, clusters = free[rows[order]].tolist(), open_clusters[columns[order]].tolist()
        for point, cluster in zip(points, clusters, strict=True):
            if labels[point] >= 0:
                continue
            size = sizes[cluster]
            if size < small or (size == small and larger_left > 0):
                larger_left -= size == small
                labels[point] = cluster
                sizes[cluster] = size + 1
        free = free[np.asarray(labels)[free] < 0]
        counts = np.asarray(sizes)[open_clusters]
        open_clusters = open_clusters[(counts < small) | ((counts == small) & (larger_left > 0))]
    return np.asarray(labels, dtype=np.int64)


def squared_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(n, d) x (k, d) -> (n, k) squared Euclidean distances."""
    return (points**2).sum(1)[:, None] - 2 * points @ centroids.T + (centroids**2).sum(1)[None, :]


def balanced_kmeans(
    points: np.ndarray, k: int, *, seed: int = 0, iterations: int = 10
) -> np.ndarray:
    """(n, d) points -> (n,) labels in ``0..k-1`` of ``k`` balanced clusters (requires k <= n).

    k-means (scikit-learn) gives the initial centroids; then up to ``iterations`` rounds of
    balanced assignment and centroid update, stopping early when the labels are stable.
    """
    n = len(points)
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= number of points, got k={k}, n={n}")
    points = points.astype(np.float64)
    centroids = KMeans(k, n_init=1, random_state=seed).fit(points).cluster_centers_
    labels = balanced_assignment(squared_distances(points, centroids))
    for _ in range(iterations):
        centroids = np.stack([points[labels == c].mean(0) for c in range(k)])
        new_labels = balanced_assignment(squared_distances(points, centroids))
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return labels


def hierarchical_codes(embeddings: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """(n, d) embeddings -> (n, ceil(log_k m)) int64 codes by recursive balanced k-means,
    ``m`` = number of distinct embeddings. Distinct embeddings get distinct codes; identical
    ones share a code. A cluster of at most ``k`` items numbers its items ``0..size-1``
    (leaf level); a single item gets 0 at every remaining level.
    """
    distinct, inverse = np.unique(embeddings, axis=0, return_inverse=True)
    depth = code_length(len(distinct), k)
    codes = np.zeros((len(distinct), depth), dtype=np.int64)
    stack = [(np.arange(len(distinct)), 0)]
    while stack:
        members, level = stack.pop()
        if len(members) <= 1:
            continue
        if len(members) <= k:
            codes[members, level] = np.arange(len(members))
            continue
        labels = balanced_kmeans(distinct[members], k, seed=seed)
        codes[members, level] = labels
        stack.extend((members[labels == c], level + 1) for c in range(k))
    return codes[inverse.reshape(-1)]
