"""Padded graph batches for SPE: every graph padded to the same node / edge budget, plus its Laplacian spectrum.

Layout (``B`` graphs, node budget ``N``, edge budget ``E``, eigen width ``k``) — every leading axis is a multiple of
``B``, so a :class:`GraphBatch` shards over a ``"data"`` mesh axis with ``eigenkit.train.shard_batch``:

* ``graphs``: a ``jraph.GraphsTuple`` with ``n_node = [N] * B`` and ``n_edge = [E] * B``: graph ``b`` owns flat
  nodes ``b·N … b·N + N − 1`` (its real nodes first, then isolated padding nodes) and flat edges
  ``b·E … b·E + E − 1`` (padding edges are self-loops on the graph's first node with type 0). ``nodes`` = int node
  types ``[B·N]``, ``edges`` = int edge types ``[B·E]``, ``globals`` = targets ``[B]``. Flat ↔ padded is a reshape.
* ``node_mask [B·N]``, ``edge_mask [B·E]``: real entries.
* ``eigvals [B, k]``, ``eigvecs [B, N, k]``, ``eig_mask [B, k]``: graph ``b`` holds ``d_b`` eigenpairs in slots
  ``0 … d_b − 1``; slots ``d_b … k − 1`` are zero and masked. Computed: the ``d_b = min(n_b, k)`` smallest pairs of
  the symmetric normalised Laplacian (``eigenkit.graph.laplacian_eigs``), exactly the official preprocessing
  (Graph-COM/SPE ``zinc/trainer.py``, ``pre_transform``: ``d = min(n, D)``, trivial pair included, ``Lambda`` and
  ``V`` zero-padded to ``D``). ``k`` may exceed ``N``: the eigen axis is then padded to the PE width ``D = k``
  whatever the batch's largest graph, as the official ``Lambda [B, D]`` always is. Or given: see
  :func:`make_graph_batch` (``eigvals=`` / ``eigvecs=``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jraph
import numpy as np
from jaxtyping import Float

from eigenkit import graph as eg
from eigenkit.methods.spe._pairs import PairIndex, pair_index

__all__ = ["GraphBatch", "make_graph_batch", "take_graph_batch", "unbatch_graph_batch", "dense_adjacency_of_batch",
           "with_pair_index"]


class GraphBatch(NamedTuple):
    """A padded batch of graphs with spectra (see module docstring for the layout)."""

    graphs: jraph.GraphsTuple
    node_mask: np.ndarray
    edge_mask: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray
    eig_mask: np.ndarray
    pairs: PairIndex | None = None  # real node-pair rows for ρ (:func:`with_pair_index`); None: dense ρ

    @property
    def num_graphs(self) -> int:
        return int(self.eigvals.shape[0])

    @property
    def max_nodes(self) -> int:
        return int(self.eigvecs.shape[1])


def make_graph_batch(graphs: jraph.GraphsTuple, *, max_nodes: int, max_edges: int, k: int | None = None,
                     kind: eg.LaplacianKind = eg.LaplacianKind.SYM_NORM, dtype=np.float32,
                     eigvals: Sequence[Float[np.ndarray, " d_b"]] | None = None,
                     eigvecs: Sequence[Float[np.ndarray, "n_b d_b"]] | None = None) -> GraphBatch:
    """Host-side: an unpadded ``jraph`` batch (``jraph.batch`` of single graphs, int node / edge types) → a
    :class:`GraphBatch` with per-graph padding to ``max_nodes`` / ``max_edges`` and an eigen axis of width ``k``.

    Eigenpairs are computed (default: the ``min(n_b, k)`` smallest pairs of the ``kind`` Laplacian, as the official
    preprocessing) or **given** per graph with ``eigvals`` / ``eigvecs``, which are then stored verbatim (cast to
    ``dtype``; not re-sorted, re-signed or re-normalised — e.g. the official ``Lambda`` / ``V`` of a preprocessed
    dataset, or spectra of another operator). Either way graph ``b``'s pairs fill slots ``0 … d_b − 1`` and the rest
    of the ``k`` slots are zero and masked (``eig_mask``), so ``W = V diag(φ(λ)) Vᵀ`` never sees them.

    ``k`` may exceed ``max_nodes`` (slots beyond every graph's size are padding). This is the official layout when
    the PE width ``D`` exceeds the batch's largest graph (``Lambda [B, D]``, ``V [N_sum, D]``): with
    ``BatchNormMode.OFFICIAL`` φ's train-mode BatchNorm statistics run over all ``B × k`` slots, padded ones
    included, exactly as the official code's run over ``B × D``; so pad to ``k = D`` to reproduce official
    train-mode outputs (``k = max_nodes`` gives other statistics whenever ``D > max_nodes``). In eval mode and with
    ``BatchNormMode.MASKED`` the PE does not depend on ``k`` as long as ``k >= max(n_b)``.

    Args:
      graphs: ``G`` graphs, ``jraph.batch`` layout (``n_node [G]``, ``n_edge [G]``, global ``senders`` /
        ``receivers``).
      max_nodes, max_edges: per-graph padding budgets ``N``, ``E``.
      k: eigen axis width (default ``max_nodes``), ``>= 1``; any size, also ``> max_nodes``.
      kind: Laplacian of the computed spectra (ignored when ``eigvals`` / ``eigvecs`` are given).
      dtype: float dtype of ``eigvals`` / ``eigvecs``.
      eigvals: optional, ``G`` arrays ``[d_b]`` (a ``[G, d]`` array also works), ``d_b <= min(n_b, k)``.
      eigvecs: optional, ``G`` arrays ``[n_b, d_b]``: column ``i`` belongs to ``eigvals[b][i]``, rows are graph
        ``b``'s nodes in the order of ``graphs``. Given together with ``eigvals``.

    Raises:
      ValueError: a graph has more than ``max_nodes`` nodes or ``max_edges`` edges, ``nodes`` holds NaN, ``k < 1``,
        or given eigenpairs have the wrong number / shape (the message names the graph and the expected shape),
        more pairs than ``min(n_b, k)``, or NaN/Inf.

    Example:
      >>> import jraph, numpy as np
      >>> g = jraph.GraphsTuple(nodes=np.array([0, 1, 2]), edges=np.array([1, 1]), senders=np.array([0, 1]),
      ...     receivers=np.array([1, 0]), n_node=np.array([3]), n_edge=np.array([2]), globals=np.array([0.5]))
      >>> b = make_graph_batch(g, max_nodes=4, max_edges=4, k=4)
      >>> b.graphs.nodes.shape, b.node_mask.tolist(), b.eig_mask.tolist()
      ((4,), [True, True, True, False], [[True, True, True, False]])
      >>> b = make_graph_batch(g, max_nodes=4, max_edges=4, k=6)   # pad to a PE width D = 6 > max_nodes
      >>> b.eigvecs.shape, b.eig_mask.tolist()
      ((1, 4, 6), [[True, True, True, False, False, False]])

      Official preprocessed eigenpairs (``Lambda [G, D]``, ``V [N_sum, D]``, ``d_b = min(n_b, D)``), used as given:

      >>> lam = np.array([[0.0, 1.0, 2.0, 0.0, 0.0]])                      # D = 5, graph of 3 nodes
      >>> V = np.linalg.eigh(np.array([[1.0, -1, 0], [-1, 1, 0], [0, 0, 1]]))[1]
      >>> d = [min(int(n), 5) for n in g.n_node]
      >>> vecs = [v[:, :db] for v, db in zip(np.split(V, np.cumsum(g.n_node)[:-1]), d)]
      >>> b = make_graph_batch(g, max_nodes=4, max_edges=4, k=5, eigvals=[l[:db] for l, db in zip(lam, d)],
      ...                      eigvecs=vecs)
      >>> b.eigvals.tolist(), b.eig_mask.tolist()
      ([[0.0, 1.0, 2.0, 0.0, 0.0]], [[True, True, True, False, False]])
    """
    n_node = np.asarray(graphs.n_node, np.int64)
    n_edge = np.asarray(graphs.n_edge, np.int64)
    g = n_node.shape[0]
    if n_node.size and n_node.max() > max_nodes:
        i = int(np.argmax(n_node))
        raise ValueError(f"graph {i} has {int(n_node[i])} nodes, more than the padding budget max_nodes={max_nodes}")
    if n_edge.size and n_edge.max() > max_edges:
        i = int(np.argmax(n_edge))
        raise ValueError(f"graph {i} has {int(n_edge[i])} edges, more than the padding budget max_edges={max_edges}")
    nodes = np.asarray(graphs.nodes)
    if np.issubdtype(nodes.dtype, np.floating) and not np.all(np.isfinite(nodes)):
        raise ValueError("graphs.nodes contains NaN/Inf")
    k = max_nodes if k is None else k
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a Python int >= 1 (the eigen axis width; it may exceed max_nodes), got {k!r}")
    k = int(k)
    if (eigvals is None) != (eigvecs is None):
        raise ValueError("eigvals and eigvecs must be given together (or both left None to compute the spectra)")
    no = np.concatenate([[0], np.cumsum(n_node)])
    eo = np.concatenate([[0], np.cumsum(n_edge)])
    gid_n = np.repeat(np.arange(g), n_node)
    pos_n = np.arange(no[-1]) - no[gid_n]
    gid_e = np.repeat(np.arange(g), n_edge)
    pos_e = np.arange(eo[-1]) - eo[gid_e]
    flat_n = gid_n * max_nodes + pos_n
    flat_e = gid_e * max_edges + pos_e
    out_nodes = np.zeros((g * max_nodes,) + nodes.shape[1:], nodes.dtype)
    out_nodes[flat_n] = nodes
    node_mask = np.zeros(g * max_nodes, bool)
    node_mask[flat_n] = True
    edges = np.asarray(graphs.edges)
    out_edges = np.zeros((g * max_edges,) + edges.shape[1:], edges.dtype)
    out_edges[flat_e] = edges
    edge_mask = np.zeros(g * max_edges, bool)
    edge_mask[flat_e] = True
    base = np.repeat(np.arange(g) * max_nodes, max_edges)
    snd, rcv = base.copy(), base.copy()
    local_s = np.asarray(graphs.senders) - no[gid_e]
    local_r = np.asarray(graphs.receivers) - no[gid_e]
    snd[flat_e] = gid_e * max_nodes + local_s
    rcv[flat_e] = gid_e * max_nodes + local_r
    if eigvals is None:
        lam, vec, eig_mask = _computed_eigenpairs(graphs, max_nodes, k, kind, dtype)
    else:
        lam, vec, eig_mask = _given_eigenpairs(eigvals, eigvecs, n_node, max_nodes, k, dtype)
    glob = None if graphs.globals is None else np.asarray(graphs.globals)
    padded = jraph.GraphsTuple(nodes=out_nodes, edges=out_edges, senders=snd.astype(np.int32),
                               receivers=rcv.astype(np.int32), n_node=np.full(g, max_nodes, np.int32),
                               n_edge=np.full(g, max_edges, np.int32), globals=glob)
    return GraphBatch(padded, node_mask, edge_mask, lam, vec, eig_mask)


def _computed_eigenpairs(graphs, max_nodes: int, k: int, kind, dtype):
    """``min(n_b, k)`` smallest Laplacian pairs per graph, eigen axis zero-padded (and masked) from
    ``min(k, max_nodes)`` to ``k`` — the official ``Lambda [B, D]`` / ``V [n, D]`` zero padding."""
    spec = eg.laplacian_eigs(graphs, max_nodes, min(k, max_nodes), kind, dtype=dtype)
    lam, vec, mask = np.asarray(spec.eigvals), np.asarray(spec.eigvecs), np.asarray(spec.eig_mask)
    extra = k - lam.shape[1]
    if extra > 0:
        lam = np.pad(lam, ((0, 0), (0, extra)))
        vec = np.pad(vec, ((0, 0), (0, 0), (0, extra)))
        mask = np.pad(mask, ((0, 0), (0, extra)))
    return lam, vec, mask


def _given_eigenpairs(eigvals, eigvecs, n_node, max_nodes: int, k: int, dtype):
    """Checked, padded copies of per-graph eigenpairs: ``eigvals[b] [d_b]``, ``eigvecs[b] [n_b, d_b]``."""
    g = n_node.shape[0]
    for name, seq in (("eigvals", eigvals), ("eigvecs", eigvecs)):
        try:
            count = len(seq)
        except TypeError:
            raise ValueError(f"{name} must be a sequence of one array per graph (G = {g}), got "
                             f"{type(seq).__name__}") from None
        if count != g:
            raise ValueError(f"{name} must hold one array per graph (G = {g}), got {count}")
    lam = np.zeros((g, k), dtype)
    vec = np.zeros((g, max_nodes, k), dtype)
    mask = np.zeros((g, k), bool)
    for b in range(g):
        n = int(n_node[b])
        lb, vb = np.asarray(eigvals[b]), np.asarray(eigvecs[b])
        if lb.ndim != 1:
            raise ValueError(f"eigvals[{b}] must have shape (d_{b},) (one eigenvalue per eigenpair of graph {b}), "
                             f"got {lb.shape}")
        d = lb.shape[0]
        if vb.shape != (n, d):
            raise ValueError(f"eigvecs[{b}] must have shape (n_{b}, d_{b}) = ({n}, {d}) (graph {b}'s nodes × "
                             f"len(eigvals[{b}])), got {vb.shape}")
        for name, x in ((f"eigvals[{b}]", lb), (f"eigvecs[{b}]", vb)):
            if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)) and x.size:
                raise ValueError(f"{name} must be real (float), got dtype {x.dtype}")
            if x.size and not np.all(np.isfinite(x)):
                raise ValueError(f"{name} contains NaN/Inf")
        if d > min(n, k):
            raise ValueError(f"graph {b} has {n} nodes but {d} eigenpairs were given; at most min(n_{b}, k) = "
                             f"{min(n, k)} fit (for official zero-padded Lambda / V pass the first min(n, D) columns)")
        lam[b, :d] = lb
        vec[b, :n, :d] = vb
        mask[b, :d] = True
    return lam, vec, mask


def take_graph_batch(batch: GraphBatch, index) -> GraphBatch:
    """Host-side: the graphs ``index`` (int array, repeats allowed) of a :class:`GraphBatch`, re-based, same budgets.

    Build the spectra of a whole dataset once with :func:`make_graph_batch`, then draw training batches with this.
    """
    index = np.asarray(index, np.int64)
    g, n = batch.num_graphs, batch.max_nodes
    e = int(np.asarray(batch.graphs.edges).shape[0]) // max(g, 1)
    b = index.shape[0]
    shift = ((np.arange(b) - index) * n)[:, None]

    def rows(x, width):
        x = np.asarray(x)
        return x.reshape((g, width) + x.shape[1:])[index].reshape((b * width,) + x.shape[1:])

    snd = (np.asarray(batch.graphs.senders).reshape(g, e)[index] + shift).reshape(-1).astype(np.int32)
    rcv = (np.asarray(batch.graphs.receivers).reshape(g, e)[index] + shift).reshape(-1).astype(np.int32)
    glob = None if batch.graphs.globals is None else np.asarray(batch.graphs.globals)[index]
    graphs = jraph.GraphsTuple(nodes=rows(batch.graphs.nodes, n), edges=rows(batch.graphs.edges, e), senders=snd,
                               receivers=rcv, n_node=np.full(b, n, np.int32), n_edge=np.full(b, e, np.int32),
                               globals=glob)
    return GraphBatch(graphs, rows(batch.node_mask, n), rows(batch.edge_mask, e), np.asarray(batch.eigvals)[index],
                      np.asarray(batch.eigvecs)[index], np.asarray(batch.eig_mask)[index])


def with_pair_index(batch: GraphBatch, *, row_budget: int | None = None, degree_budget: int | None = None,
                    granule: int = 512) -> GraphBatch:
    """Host-side: ``batch`` with its :class:`~eigenkit.methods.spe.PairIndex` attached (``batch.pairs``), so that
    SPE's ρ runs on the real node pairs only (``BatchNormMode.MASKED``; see :func:`~eigenkit.methods.spe.pair_index`
    for the arguments). :func:`take_graph_batch` drops it: attach it per drawn batch."""
    return batch._replace(pairs=pair_index(batch, row_budget=row_budget, degree_budget=degree_budget,
                                           granule=granule))


def unbatch_graph_batch(batch: GraphBatch) -> list[jraph.GraphsTuple]:
    """Inverse of :func:`make_graph_batch` on the graph part: the list of unpadded single graphs (local indices)."""
    g, n = batch.num_graphs, batch.max_nodes
    e = int(np.asarray(batch.graphs.edges).shape[0]) // max(g, 1)
    out = []
    nodes, edges = np.asarray(batch.graphs.nodes), np.asarray(batch.graphs.edges)
    snd, rcv = np.asarray(batch.graphs.senders), np.asarray(batch.graphs.receivers)
    for b in range(g):
        nm = batch.node_mask[b * n:(b + 1) * n]
        em = batch.edge_mask[b * e:(b + 1) * e]
        glob = None if batch.graphs.globals is None else np.asarray(batch.graphs.globals)[b:b + 1]
        out.append(jraph.GraphsTuple(
            nodes=nodes[b * n:(b + 1) * n][nm], edges=edges[b * e:(b + 1) * e][em],
            senders=snd[b * e:(b + 1) * e][em] - b * n, receivers=rcv[b * e:(b + 1) * e][em] - b * n,
            n_node=np.array([int(nm.sum())], np.int32), n_edge=np.array([int(em.sum())], np.int32), globals=glob))
    return out


def dense_adjacency_of_batch(batch: GraphBatch, dtype=jnp.float32) -> jax.Array:
    """``[B, N, N]`` adjacency (``adj[b, v, u]`` = number of real edges ``u → v``), jit-safe."""
    g, n = batch.eigvecs.shape[0], batch.eigvecs.shape[1]
    snd, rcv = jnp.asarray(batch.graphs.senders), jnp.asarray(batch.graphs.receivers)
    w = jnp.asarray(batch.edge_mask).astype(dtype)
    gid = rcv // n
    adj = jnp.zeros((g, n, n), dtype)
    return adj.at[gid, rcv % n, snd % n].add(w)
