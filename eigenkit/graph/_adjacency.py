"""Dense, zero-padded per-graph adjacency matrices of a batched ``jraph.GraphsTuple``."""

from __future__ import annotations

import jax.numpy as jnp
import jraph
import numpy as np
from jaxtyping import Array, Bool, Float

from eigenkit._validate import check_array, check_finite
from eigenkit.graph._batching import (
    _check_fits,
    _check_max_nodes,
    _graph_mask,
    _is_concrete,
    _n_node,
    _node_mask,
    _total_nodes,
    node_graph_index,
    node_position,
)

__all__ = ["dense_adjacency"]


def _check_edges(senders, receivers, gidx, n_total: int) -> None:
    """Eager check: indices in range and every edge inside one graph (skipped under ``jit``)."""
    if not (_is_concrete(senders) and _is_concrete(receivers) and _is_concrete(gidx)):
        return
    s, r = np.asarray(senders), np.asarray(receivers)
    for name, idx in (("senders", s), ("receivers", r)):
        bad = np.flatnonzero((idx < 0) | (idx >= n_total))
        if bad.size:
            raise ValueError(
                f"graphs.{name}[{int(bad[0])}] = {int(idx[bad[0]])} is out of range for N_total={n_total} nodes"
            )
    g = np.asarray(gidx)
    cross = np.flatnonzero(g[s] != g[r])
    if cross.size:
        e = int(cross[0])
        raise ValueError(
            f"edge {e} joins node {int(s[e])} (graph {int(g[s[e]])}) and node {int(r[e])} (graph {int(g[r[e]])}); "
            "edges must stay within one graph"
        )


def dense_adjacency(
    graphs: jraph.GraphsTuple,
    max_nodes: int,
    *,
    edge_weight=None,
    symmetrize: bool = True,
    keep_self_loops: bool = False,
    graph_mask=None,
    dtype=None,
) -> tuple[Float[Array, "G max_nodes max_nodes"], Bool[Array, "G max_nodes"]]:
    """Zero-padded dense adjacency matrix of every graph in a batch.

    ``adj[g, i, j] = sum of w_e over edges e with sender = node i and receiver = node j of graph g`` (positions
    inside the graph, see ``node_position``), then, with ``symmetrize=True``, ``adj <- max(adj, adjᵀ)``
    elementwise. Conventions (the ones of ``torch_geometric.utils.get_laplacian`` + ``to_dense_adj``, used by
    the SPE reference code):

    * **Multi-edges** (the same sender/receiver pair listed several times) are **summed** (weight 2 for a double
      edge).
    * **Self-loops** are **dropped** by default (``keep_self_loops=False``, as ``get_laplacian`` does); with
      ``keep_self_loops=True`` they land on the diagonal (a self-loop adds ``w`` once to ``adj[i, i]`` and so
      once to the degree used by ``laplacian``).
    * **Directed input** is symmetrised with the elementwise maximum, so an undirected graph stored with both
      directions (jraph / PyG convention) is unchanged, and one stored with a single direction per edge gets
      the same matrix. ``symmetrize=False`` keeps ``adj[g, sender, receiver]`` as given (a directed graph then
      has a non-symmetric adjacency, which ``dense_laplacian_eigs`` rejects).
    * Padded rows/columns (``i >= n_node[g]``), graphs with ``n_node = 0`` and graphs with ``graph_mask=False``
      are all-zero.

    Args:
      graphs: batch with ``n_node [G]``, ``senders``/``receivers`` ``int[E]`` (global node indices).
      max_nodes: static block size, ``>= max(n_node)`` over unmasked graphs (checked eagerly; under ``jit`` nodes
        at positions ``>= max_nodes`` and their edges are dropped).
      edge_weight: optional ``float[E]`` non-negative weights (default 1). NaN/Inf raise eagerly and propagate
        under ``jit``.
      symmetrize: symmetrise with the elementwise max (see above).
      keep_self_loops: keep self-loops on the diagonal instead of dropping them.
      graph_mask: optional ``bool[G]``; ``False`` graphs (jraph padding graphs:
        ``real_graph_mask(graphs)``) are zeroed, masked and not size-checked.
      dtype: floating dtype when ``edge_weight`` is None (default float32); ignored otherwise (the weights'
        dtype is kept).

    Returns:
      ``(adj[G, max_nodes, max_nodes], node_mask bool[G, max_nodes])``.

    Raises:
      ValueError: bad shapes, out-of-range or cross-graph edges, a graph larger than ``max_nodes`` (eager).

    Example:
      >>> import jraph, jax.numpy as jnp
      >>> from eigenkit.graph import dense_adjacency
      >>> g = jraph.GraphsTuple(nodes=jnp.zeros((3, 1)), edges=None, senders=jnp.array([0, 1]),
      ...     receivers=jnp.array([1, 2]), n_node=jnp.array([3]), n_edge=jnp.array([2]), globals=None)
      >>> adj, mask = dense_adjacency(g, 4)
      >>> adj[0].astype(int).tolist()
      [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    """
    max_nodes = _check_max_nodes(max_nodes)
    n_node = _n_node(graphs)
    n_graph = n_node.shape[0]
    n_total = _total_nodes(graphs)
    gmask = _graph_mask(graph_mask, n_graph)
    senders = check_array(graphs.senders, "graphs.senders", ndim=1, kind="integer").astype(jnp.int32)
    receivers = check_array(graphs.receivers, "graphs.receivers", ndim=1, kind="integer").astype(jnp.int32)
    n_e = senders.shape[0]
    if receivers.shape[0] != n_e:
        raise ValueError(
            f"graphs.senders and graphs.receivers must have the same length, got {n_e} and {receivers.shape[0]}"
        )
    if edge_weight is None:
        dt = jnp.dtype(jnp.float32 if dtype is None else dtype)
        if not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(f"dtype must be a floating dtype, got {dt}")
        w = jnp.ones((n_e,), dt)
    else:
        w = check_array(edge_weight, "edge_weight", ndim=1, shape=(n_e,), kind="floating")
        check_finite(edge_weight, "edge_weight")
    _check_fits(graphs.n_node, max_nodes, graph_mask)

    gidx = node_graph_index(graphs)
    pos = node_position(graphs)
    _check_edges(graphs.senders, graphs.receivers, gidx, n_total)
    gs = jnp.take(gidx, senders, mode="fill", fill_value=n_graph)
    gr = jnp.take(gidx, receivers, mode="fill", fill_value=n_graph)
    ps = jnp.take(pos, senders, mode="fill", fill_value=max_nodes)
    pr = jnp.take(pos, receivers, mode="fill", fill_value=max_nodes)
    valid = (gs == gr) & (ps < max_nodes) & (pr < max_nodes)
    if not keep_self_loops:
        valid = valid & (senders != receivers)
    if gmask is not None:
        valid = valid & jnp.take(gmask, gs, mode="fill", fill_value=False)
    w = jnp.where(valid, w, jnp.zeros((), w.dtype))
    adj = jnp.zeros((n_graph, max_nodes, max_nodes), w.dtype).at[gs, ps, pr].add(w, mode="drop")
    if symmetrize:
        adj = jnp.maximum(adj, jnp.swapaxes(adj, -1, -2))
    return adj, _node_mask(n_node, max_nodes, gmask)

