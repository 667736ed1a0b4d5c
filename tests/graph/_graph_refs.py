"""Float64 NumPy references and small graph builders shared by tests/graph (independent of eigenkit.graph)."""

from __future__ import annotations

import jraph
import networkx as nx
import numpy as np


def nx_edges(g: nx.Graph) -> tuple[int, list[tuple[int, int]]]:
    """(n, both-direction edge list) of a networkx graph with nodes relabelled 0..n-1."""
    g = nx.convert_node_labels_to_integers(g)
    edges = [(int(u), int(v)) for u, v in g.edges()]
    return g.number_of_nodes(), edges + [(v, u) for u, v in edges]


def single(n: int, edges, weights=None, feat: int = 2) -> jraph.GraphsTuple:
    edges = list(edges)
    s = np.array([e[0] for e in edges], np.int32).reshape(-1)
    r = np.array([e[1] for e in edges], np.int32).reshape(-1)
    return jraph.GraphsTuple(
        nodes=np.arange(n * feat, dtype=np.float32).reshape(n, feat),
        edges=None if weights is None else np.asarray(weights),
        senders=s,
        receivers=r,
        n_node=np.array([n], np.int32),
        n_edge=np.array([len(edges)], np.int32),
        globals=None,
    )


def batch(specs) -> jraph.GraphsTuple:
    """specs: list of (n, edges[, weights]); local node indices."""
    # jraph.batch (jnp) trips strict dtype promotion (int32 + int64 offsets); batch_np is the same on host.
    return jraph.batch_np([single(*spec) for spec in specs])


def ref_adj(n, edges, weights=None, *, keep_self_loops=False, symmetrize=True) -> np.ndarray:
    a = np.zeros((n, n))
    weights = np.ones(len(edges)) if weights is None else np.asarray(weights, np.float64)
    for (s, r), w in zip(edges, weights):
        if s == r and not keep_self_loops:
            continue
        a[s, r] += w
    return np.maximum(a, a.T) if symmetrize else a


def ref_lap(a: np.ndarray, kind: str, isolated_value: float = 1.0) -> np.ndarray:
    d = a.sum(1)
    if kind == "comb":
        return np.diag(d) - a
    diag = np.where(d > 0, 1.0, isolated_value)
    if kind == "sym":
        dis = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
        return np.diag(diag) - dis[:, None] * a * dis[None, :]
    dinv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)
    return np.diag(diag) - dinv[:, None] * a


def clusters(w: np.ndarray, tol: float) -> list[np.ndarray]:
    """Index groups of (sorted) eigenvalues closer than tol to their neighbour."""
    if w.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(w) > tol) + 1
    return np.split(np.arange(w.size), cuts)


def assert_same_eigenspaces(w_ref, v_ref, w, v, *, cluster_tol, atol, rtol_w=0.0, atol_w=None):
    """Eigenvalues allclose and, for each eigenvalue cluster of the reference, equal spectral projectors."""
    w_ref, v_ref, w, v = (np.asarray(x, np.float64) for x in (w_ref, v_ref, w, v))
    np.testing.assert_allclose(w, w_ref, rtol=rtol_w, atol=atol if atol_w is None else atol_w)
    for g in clusters(w_ref, cluster_tol):
        p_ref = v_ref[:, g] @ v_ref[:, g].T
        p = v[:, g] @ v[:, g].T
        np.testing.assert_allclose(p, p_ref, atol=atol, err_msg=f"projector of eigenvalues {w_ref[g]}")


TOLS = {  # (cluster_tol, atol) per dtype for spectra
    np.float32: (1e-3, 2e-3),
    np.float64: (1e-8, 1e-8),
}
