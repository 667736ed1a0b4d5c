"""Clustering metrics and the clustering procedures used as baselines (host-side NumPy / SciPy / scikit-learn).

* :func:`clustering_accuracy` — ACC under the best one-to-one matching of clusters to classes (Hungarian method);
* :func:`normalized_mutual_info` — NMI with the arithmetic-mean normaliser (scikit-learn's default);
* :func:`spectral_clustering` — normalised spectral clustering of an affinity (MLC's inference, Alg. 1 line 10);
* :func:`kmeans` — k-means++ with restarts (scikit-learn);
* :func:`knn_affinity` — symmetric cosine k-nearest-neighbour graph of features (the spectral baseline's graph);
* :func:`numerical_rank` — smallest ``r`` holding a fraction of the spectral energy (MLC §4).

SciPy and scikit-learn are imported when called (they belong to the ``experiments`` extra).
"""

from __future__ import annotations

import numpy as np

__all__ = ["clustering_accuracy", "kmeans", "knn_affinity", "normalized_mutual_info", "numerical_rank",
           "spectral_clustering"]


def _labels_pair(labels, pred) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(labels), np.asarray(pred)
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"labels and pred must be 1-D of equal length; got shapes {y.shape} and {p.shape}")
    if y.size == 0:
        raise ValueError("labels is empty")
    return y, p


def _contingency(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    _, yi = np.unique(y, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    table = np.zeros((yi.max() + 1, pi.max() + 1), np.int64)
    np.add.at(table, (yi, pi), 1)
    return table


def clustering_accuracy(labels, pred) -> float:
    """``max_σ (1/n) Σ_i 1[y_i = σ(p_i)]`` over one-to-one maps σ from clusters to classes (Hungarian matching of
    the contingency table; clusters left unmatched when there are more clusters than classes count as errors).

    Example:
      >>> from eigenkit.metrics import clustering_accuracy
      >>> clustering_accuracy([0, 0, 1, 1, 2], [2, 2, 0, 0, 0])
      0.8
    """
    from scipy.optimize import linear_sum_assignment

    y, p = _labels_pair(labels, pred)
    table = _contingency(y, p)
    r, c = linear_sum_assignment(-table)
    return float(table[r, c].sum() / y.size)


def normalized_mutual_info(labels, pred) -> float:
    """``NMI = I(Y; P) / mean(H(Y), H(P))`` in nats (scikit-learn's ``normalized_mutual_info_score`` default,
    ``average_method="arithmetic"``); 1 when both are a single cluster.

    Example:
      >>> from eigenkit.metrics import normalized_mutual_info
      >>> normalized_mutual_info([0, 0, 1, 1], [1, 1, 0, 0])
      1.0
    """
    y, p = _labels_pair(labels, pred)
    table = _contingency(y, p).astype(np.float64)
    n = table.sum()
    py, pp = table.sum(1) / n, table.sum(0) / n
    hy, hp = -np.sum(py * np.log(py)), -np.sum(pp * np.log(pp))
    if table.shape[0] == 1 and table.shape[1] == 1:
        return 1.0
    if hy == 0 or hp == 0:
        return 0.0
    nz = table > 0
    pxy = table[nz] / n
    mi = float(np.sum(pxy * (np.log(pxy) - np.log(np.outer(py, pp)[nz]))))
    return float(max(mi, 0.0) / ((hy + hp) / 2))


def kmeans(features, n_clusters: int, *, seed: int, n_init: int = 10) -> np.ndarray:
    """k-means++ with ``n_init`` restarts (scikit-learn ``KMeans``); returns ``(n,)`` int labels."""
    from sklearn.cluster import KMeans

    x = np.asarray(features, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (n, D), got shape {x.shape}")
    return KMeans(int(n_clusters), n_init=int(n_init), random_state=int(seed)).fit(x).labels_.astype(np.int32)


def spectral_clustering(affinity, n_clusters: int, *, seed: int, n_init: int = 10) -> np.ndarray:
    """Normalised spectral clustering (Ng, Jordan & Weiss 2001), as MLC's evaluation (CPP
    ``metrics/clustering.py``): the top ``n_clusters`` eigenvectors of ``D^{-1/2} W D^{-1/2}`` (= those of
    ``2I − L_sym``, which CPP computes), rows normalised to unit length, then :func:`kmeans`.

    ``W = (A + Aᵀ)/2`` — a deliberate deviation: MLC's ``Γ`` is only approximately symmetric after 5 Sinkhorn steps
    and CPP hands it unsymmetrised to a symmetric eigensolver (which then reads an arbitrary triangle); the
    symmetric part is what that solver assumes. Isolated nodes (zero degree) get degree 1.

    Args:
      affinity: ``(n, n)`` nonnegative affinity.
      n_clusters: number of clusters ``k < n``.
      seed: k-means seed (and the eigensolver's start vector).
      n_init: k-means restarts.

    Returns:
      ``(n,)`` int32 labels.

    Example:
      >>> import numpy as np
      >>> from eigenkit.metrics import spectral_clustering
      >>> a = np.kron(np.eye(2), np.ones((3, 3)))  # two disconnected triangles
      >>> labels = spectral_clustering(a, 2, seed=0)
      >>> bool(len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3])
      True
    """
    import scipy.linalg
    import scipy.sparse.linalg

    a = np.asarray(affinity, np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"affinity must be square (n, n), got shape {a.shape}")
    n, k = a.shape[0], int(n_clusters)
    if not 1 <= k < n:
        raise ValueError(f"n_clusters must be in [1, n) with n = {n}, got {k}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("affinity must be finite and nonnegative")
    w = (a + a.T) / 2
    deg = w.sum(1)
    inv_sqrt = 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0))
    m = w * inv_sqrt[:, None] * inv_sqrt[None, :]
    if n <= 2000:
        vecs = scipy.linalg.eigh(m, subset_by_index=(n - k, n - 1))[1]
    else:
        v0 = np.random.default_rng(seed).standard_normal(n)
        vecs = scipy.sparse.linalg.eigsh(m, k=k, which="LA", v0=v0)[1]
    emb = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    return kmeans(emb, k, seed=seed, n_init=n_init)


def knn_affinity(features, n_neighbors: int = 10) -> np.ndarray:
    """Symmetric 0/1 graph linking each row to its ``n_neighbors`` most cosine-similar rows (``max(A, Aᵀ)``; no
    self loops) — the graph of the spectral-clustering baseline on frozen features."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (n, D), got shape {x.shape}")
    n, k = x.shape[0], int(n_neighbors)
    if not 1 <= k < n:
        raise ValueError(f"n_neighbors must be in [1, n) with n = {n}, got {k}")
    xh = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    s = xh @ xh.T
    np.fill_diagonal(s, -np.inf)
    idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
    a = np.zeros((n, n))
    a[np.repeat(np.arange(n), k), idx.ravel()] = 1.0
    return np.maximum(a, a.T)


def numerical_rank(features, energy: float = 0.95) -> int:
    """Smallest ``r`` with ``Σ_{i≤r} σ_i² ≥ energy · Σ σ_i²`` over the singular values of ``features`` ``(n, D)``
    (MLC §4, "numerical rank"; the paper writes ``>``, which differs only on exact ties)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (n, D), got shape {x.shape}")
    if not 0 < energy <= 1:
        raise ValueError(f"energy must be in (0, 1], got {energy}")
    s2 = np.linalg.svd(x, compute_uv=False) ** 2
    if s2.sum() == 0:
        return 0
    frac = np.cumsum(s2) / s2.sum()
    return int(np.searchsorted(frac, energy - 1e-12) + 1)
