"""The node-pair row layout of SPE's ρ: only the real ``(v, j)`` pairs of every graph, no padding.

ρ runs a GIN over the node axis ``v`` of ``W[b, v, j, :]`` with ``j`` a batch axis. On the padded dense layout
that is ``B · N²`` rows per layer, ``N`` the padding budget; the real rows number ``Σ_b n_b²`` (ZINC-sized batches
padded to 38 nodes: 185k dense rows for 109k real ones). A :class:`PairIndex` lists the real rows, graph by graph
and ``(v, j)`` row-major inside a graph, with the neighbour tables of the aggregation
``Σ_u A[b, v, u] X[b, u, j]`` (:func:`eigenkit.graph.neighbour_sum`) and the node each row sums into
(``PE[b, v] = Σ_j H[b, v, j]``). The MLPs then see exactly the rows whose statistics
``BatchNormMode.MASKED`` keeps, so the PE equals the dense masked path's (test: ``tests/methods/test_spe_pairs.py``),
at ``Σ n_b² / (B N²)`` of its cost.

Static shapes: the row count is padded to ``row_budget`` (padding rows are masked out and have no neighbours) and
the tables to ``degree_budget``; give budgets that cover every batch of a run (:func:`pair_budgets`) so that one
compiled step serves them all.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from eigenkit import graph as eg

__all__ = ["PairIndex", "pair_index", "pair_budgets"]


class PairIndex(NamedTuple):
    """Real node-pair rows of a padded batch (``R`` = row budget, ``D`` = degree budget); host NumPy arrays.

    * ``dense_row [R]`` int32: the row's flat index ``b·N² + v·N + j`` into ``W.reshape(B·N², m)``.
    * ``row_mask [R]`` bool: real rows (padding rows: ``dense_row`` 0, no neighbours, not in any statistic).
    * ``neighbours [R, D]`` / ``reverse [R, D]`` int32: rows ``(b, u, j)`` with an edge ``u → v`` (multiplicity
      kept) and the transposed table; sentinel ``R``.
    * ``node [R]`` int32: ``b·N + v`` (padding rows: ``B·N``), the PE node each row sums into.
    """

    dense_row: np.ndarray
    row_mask: np.ndarray
    neighbours: np.ndarray
    reverse: np.ndarray
    node: np.ndarray


def _sizes_and_edges(node_mask, senders, receivers, edge_mask, num_graphs: int):
    node_mask = np.asarray(node_mask, bool)
    if node_mask.ndim != 1 or node_mask.size % max(num_graphs, 1):
        raise ValueError(f"node_mask must be flat [B·N] with B = {num_graphs}, got shape {node_mask.shape}")
    n_max = node_mask.size // max(num_graphs, 1)
    n = node_mask.reshape(num_graphs, n_max).sum(1).astype(np.int64)
    em = np.asarray(edge_mask, bool)
    snd, rcv = np.asarray(senders, np.int64)[em], np.asarray(receivers, np.int64)[em]
    return n, n_max, snd, rcv


def pair_budgets(n_node, in_degree_max: int, batch_size: int, *, draws=None, granule: int = 512
                 ) -> tuple[int, int]:
    """``(row_budget, degree_budget)`` covering every batch of ``batch_size`` graphs a run will draw.

    Args:
      n_node: ``[G]`` graph sizes of the dataset.
      in_degree_max: the largest in-degree of any node of the dataset (the degree budget).
      batch_size: graphs per batch.
      draws: optional ``[S, batch_size]`` int, the graph indices of every batch of the run (exact budget); without
        it the budget is the worst case ``batch_size · max(n)²`` (no saving over the dense layout).
      granule: the row budget is rounded up to a multiple of this (keep it a multiple of the device count).
    """
    n2 = np.asarray(n_node, np.int64) ** 2
    if draws is None:
        need = batch_size * int(n2.max(initial=0))
    else:
        need = int(n2[np.asarray(draws, np.int64)].sum(axis=-1).max(initial=0))
    return max(granule, -(-need // granule) * granule), int(in_degree_max)


def pair_index(batch, *, row_budget: int | None = None, degree_budget: int | None = None,
               granule: int = 512) -> PairIndex:
    """Host-side: the :class:`PairIndex` of a :class:`~eigenkit.methods.spe.GraphBatch` (its real edges, as
    ``dense_adjacency_of_batch`` counts them: ``adj[b, v, u]`` = number of edges ``u → v``, self-loops included).

    Args:
      batch: a padded ``GraphBatch`` (``make_graph_batch`` / ``take_graph_batch`` layout).
      row_budget: rows ``R`` (default ``Σ n_b²`` rounded up to ``granule``); below ``Σ n_b²`` raises.
      degree_budget: table width ``D`` (default: the batch's largest in-/out-count); too small raises.
      granule: rounding of the default row budget.

    Example:
      >>> import jraph, numpy as np
      >>> from eigenkit.methods.spe import make_graph_batch
      >>> g = jraph.GraphsTuple(nodes=np.array([0, 1, 2]), edges=np.array([1, 1]), senders=np.array([0, 1]),
      ...     receivers=np.array([1, 0]), n_node=np.array([3]), n_edge=np.array([2]), globals=np.array([0.5]))
      >>> p = pair_index(make_graph_batch(g, max_nodes=4, max_edges=4), granule=16)
      >>> p.dense_row.shape, int(p.row_mask.sum())          # 3² real rows of the 4² dense ones, budget 16
      ((16,), 9)
    """
    b = batch.num_graphs
    g = batch.graphs
    n, n_max, snd, rcv = _sizes_and_edges(batch.node_mask, g.senders, g.receivers, batch.edge_mask, b)
    n2 = n ** 2
    total = int(n2.sum())
    if row_budget is None:
        row_budget = max(granule, -(-total // granule) * granule)
    if row_budget < total:
        raise ValueError(f"row_budget={row_budget} is below the batch's Σ n_b² = {total} real node pairs")
    off = np.concatenate([[0], np.cumsum(n2)])
    gid = np.repeat(np.arange(b), n2)
    local = np.arange(total) - off[gid]
    nb = n[gid]
    v, j = local // np.maximum(nb, 1), local % np.maximum(nb, 1)
    dense_row = np.zeros(row_budget, np.int64)
    dense_row[:total] = gid * n_max * n_max + v * n_max + j
    row_mask = np.zeros(row_budget, bool)
    row_mask[:total] = True
    node = np.full(row_budget, b * n_max, np.int64)
    node[:total] = gid * n_max + v
    # messages: for each real edge u → v of graph e_b and each column j < n_{e_b}: row (v, j) += row (u, j)
    eb = rcv // n_max
    ev, eu = rcv % n_max, snd % n_max
    reps = n[eb]
    e_idx = np.repeat(np.arange(eb.size), reps)
    ej = np.arange(e_idx.size) - np.repeat(np.concatenate([[0], np.cumsum(reps)[:-1]]), reps)
    ebb, en = eb[e_idx], n[eb][e_idx]
    dst = off[ebb] + ev[e_idx] * en + ej
    src = off[ebb] + eu[e_idx] * en + ej
    if degree_budget is None:  # one width for both tables (one compiled shape): the largest in- or out-count
        counts = [np.bincount(x, minlength=1).max(initial=0) for x in (dst, src)] if dst.size else [0]
        degree_budget = int(max(counts))
    nbr, rev = eg.neighbour_tables(dst, src, row_budget, width=degree_budget, reverse_width=degree_budget)
    return PairIndex(dense_row.astype(np.int32), row_mask, nbr, rev, node.astype(np.int32))
