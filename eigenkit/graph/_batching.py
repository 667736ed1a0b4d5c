"""Node bookkeeping for batched ``jraph.GraphsTuple``: graph index, position, padded dense <-> flat node arrays.

A ``jraph.GraphsTuple`` stores the nodes of G graphs back to back, ``N_total = sum(n_node)`` rows (jraph's
``pad_with_graphs`` appends one padding graph holding all padding nodes, then empty graphs with ``n_node = 0``).
Dense spectral code wants one ``[max_nodes, ...]`` block per graph instead. The helpers here map between the two
layouts with a static ``max_nodes``; every function except ``pad_graphs_to`` is pure and
``jit``-able (``max_nodes`` is a Python int).

Graphs larger than ``max_nodes``: an eager call (``n_node`` a concrete array) raises ``ValueError``; under ``jit``
the check cannot run, and nodes at positions ``>= max_nodes`` are dropped (their rows are not scattered, edges that
touch them are ignored, ``from_padded`` gives them zeros). Pass ``graph_mask`` (e.g.
``real_graph_mask(graphs)``, the strict-promotion-safe twin of jraph's ``get_graph_padding_mask``) to exclude
jraph padding graphs, which may hold more than ``max_nodes`` padding nodes: masked graphs get all-``False`` masks
and zero blocks, and are not size-checked. ``pad_graphs_to`` is not ``jit``-able (host side, as jraph's).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jraph
import numpy as np
from jaxtyping import Array, Bool, Int

from eigenkit._validate import check_array, check_rank_arg

__all__ = [
    "node_graph_index",
    "node_position",
    "to_padded",
    "from_padded",
    "pad_graphs_to",
    "real_graph_mask",
]

_BIG = 2**31 - 1


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _n_node(graphs: jraph.GraphsTuple) -> jax.Array:
    n_node = check_array(graphs.n_node, "graphs.n_node", ndim=1, kind="integer")
    return n_node.astype(jnp.int32)


def _total_nodes(graphs: jraph.GraphsTuple) -> int:
    """Static ``N_total``: the leading size of ``graphs.nodes`` (or ``sum(n_node)`` when that is concrete)."""
    leaves = jax.tree.leaves(graphs.nodes)
    if leaves:
        sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
        if len(sizes) != 1 or -1 in sizes:
            raise ValueError(
                f"graphs.nodes leaves must all have the same leading size N_total, got sizes {sorted(sizes)}"
            )
        return sizes.pop()
    if _is_concrete(graphs.n_node):
        return int(np.sum(np.asarray(graphs.n_node)))
    raise ValueError(
        "graphs.nodes is None and graphs.n_node is traced, so the total node count (a shape) is unknown; "
        "give graphs.nodes an array with N_total rows (e.g. jnp.zeros((N_total, 0)))"
    )


def _graph_mask(graph_mask, n_graph: int) -> jax.Array | None:
    if graph_mask is None:
        return None
    return check_array(graph_mask, "graph_mask", shape=(n_graph,), ndim=1, kind="bool")


def _check_fits(n_node, max_nodes: int, graph_mask) -> None:
    """Eager check that every (unmasked) graph has at most ``max_nodes`` nodes; skipped under ``jit``."""
    if not _is_concrete(n_node) or (graph_mask is not None and not _is_concrete(graph_mask)):
        return
    sizes = np.asarray(n_node)
    if graph_mask is not None:
        sizes = np.where(np.asarray(graph_mask), sizes, 0)
    if sizes.size and int(sizes.max()) > max_nodes:
        i = int(np.argmax(sizes))
        hint = (
            " (if it is a jraph.pad_with_graphs padding graph, pass graph_mask=eigenkit.graph.real_graph_mask(graphs))"
            if graph_mask is None
            else ""
        )
        raise ValueError(f"graph {i} with {int(sizes[i])} nodes exceeds max_nodes={max_nodes}{hint}")
    if np.any(np.asarray(n_node) < 0):
        raise ValueError("graphs.n_node must be non-negative")


def _check_max_nodes(max_nodes: int) -> int:
    return check_rank_arg(max_nodes, "max_nodes", upper=_BIG, upper_name="2**31 - 1")


def node_graph_index(graphs: jraph.GraphsTuple) -> Int[Array, " N_total"]:
    """Which graph each node of a batched ``GraphsTuple`` belongs to.

    ``node_graph_index(graphs)[v] = g`` with ``sum(n_node[:g]) <= v < sum(n_node[:g+1])``. Nodes beyond
    ``sum(n_node)`` (not produced by jraph) get ``G = len(n_node)``, an out-of-range index that scatters drop.

    Args:
      graphs: a batch with ``n_node`` of shape ``[G]``; ``N_total`` is the leading size of ``graphs.nodes``.

    Returns:
      ``int32[N_total]``.

    Example:
      >>> import jraph, jax.numpy as jnp
      >>> from eigenkit.graph import node_graph_index
      >>> g = jraph.GraphsTuple(nodes=jnp.zeros((5, 1)), edges=None, senders=jnp.zeros(0, jnp.int32),
      ...     receivers=jnp.zeros(0, jnp.int32), n_node=jnp.array([2, 0, 3]), n_edge=jnp.array([0, 0, 0]),
      ...     globals=None)
      >>> node_graph_index(g).tolist()
      [0, 0, 2, 2, 2]
    """
    n_node = _n_node(graphs)
    n_total = _total_nodes(graphs)
    ends = jnp.cumsum(n_node, dtype=jnp.int32)
    return jnp.searchsorted(ends, jnp.arange(n_total, dtype=jnp.int32), side="right").astype(jnp.int32)


def node_position(graphs: jraph.GraphsTuple) -> Int[Array, " N_total"]:
    """Index of each node inside its own graph: ``v - sum(n_node[:node_graph_index(v)])``.

    Args:
      graphs: a ``jraph.GraphsTuple`` (``n_node [G]``, ``nodes`` with ``N_total`` rows).

    Returns:
      ``int32[N_total]``.

    Example:
      >>> import jraph, jax.numpy as jnp
      >>> from eigenkit.graph import node_position
      >>> g = jraph.GraphsTuple(nodes=jnp.zeros((5, 1)), edges=None, senders=jnp.zeros(0, jnp.int32),
      ...     receivers=jnp.zeros(0, jnp.int32), n_node=jnp.array([2, 0, 3]), n_edge=jnp.array([0, 0, 0]),
      ...     globals=None)
      >>> node_position(g).tolist()
      [0, 1, 0, 1, 2]
    """
    n_node = _n_node(graphs)
    gidx = node_graph_index(graphs)
    ends = jnp.cumsum(n_node, dtype=jnp.int32)
    starts = jnp.concatenate([ends - n_node, ends[-1:] if n_node.shape[0] else jnp.zeros(1, jnp.int32)])
    return (jnp.arange(gidx.shape[0], dtype=jnp.int32) - starts[gidx]).astype(jnp.int32)


def _node_mask(n_node: jax.Array, max_nodes: int, graph_mask) -> jax.Array:
    mask = jnp.arange(max_nodes, dtype=jnp.int32)[None, :] < n_node[:, None]
    if graph_mask is not None:
        mask = mask & graph_mask[:, None]
    return mask


def to_padded(
    node_values,
    graphs: jraph.GraphsTuple,
    max_nodes: int,
    *,
    graph_mask=None,
) -> tuple[Array, Bool[Array, "G max_nodes"]]:
    """Scatter flat node values ``[N_total, ...]`` into one zero-padded block per graph ``[G, max_nodes, ...]``.

    ``padded[g, i] = node_values[sum(n_node[:g]) + i]`` for ``i < n_node[g]``, zero elsewhere;
    ``mask[g, i] = i < n_node[g]`` (and ``graph_mask[g]`` when given). ``from_padded`` inverts it exactly.

    Args:
      node_values: array ``[N_total, ...]`` (any dtype; kept).
      graphs: the batch (``n_node`` ``[G]``).
      max_nodes: static block size; must be >= every unmasked graph's size (checked eagerly; under ``jit``
        nodes past ``max_nodes`` are dropped, see the module docstring).
      graph_mask: optional ``bool[G]``; ``False`` graphs (e.g. jraph padding graphs) give zero blocks, ``False``
        masks and are not size-checked.

    Returns:
      ``(padded[G, max_nodes, ...], mask bool[G, max_nodes])``.

    Example:
      >>> import jraph, jax.numpy as jnp
      >>> from eigenkit.graph import to_padded
      >>> g = jraph.GraphsTuple(nodes=jnp.arange(5.0), edges=None, senders=jnp.zeros(0, jnp.int32),
      ...     receivers=jnp.zeros(0, jnp.int32), n_node=jnp.array([2, 3]), n_edge=jnp.array([0, 0]),
      ...     globals=None)
      >>> padded, mask = to_padded(g.nodes, g, 3)
      >>> padded.tolist()
      [[0.0, 1.0, 0.0], [2.0, 3.0, 4.0]]
    """
    max_nodes = _check_max_nodes(max_nodes)
    n_node = _n_node(graphs)
    n_graph = n_node.shape[0]
    gmask = _graph_mask(graph_mask, n_graph)
    n_total = _total_nodes(graphs)
    x = check_array(node_values, "node_values", min_ndim=1)
    if x.shape[0] != n_total:
        raise ValueError(f"node_values must have N_total={n_total} rows (one per node), got shape {tuple(x.shape)}")
    _check_fits(graphs.n_node, max_nodes, graph_mask)
    gidx = node_graph_index(graphs)
    pos = node_position(graphs)
    if gmask is not None:
        keep = jnp.take(gmask, gidx, mode="fill", fill_value=False)
        x = jnp.where(keep.reshape((-1,) + (1,) * (x.ndim - 1)), x, jnp.zeros((), x.dtype))
    padded = jnp.zeros((n_graph, max_nodes) + x.shape[1:], x.dtype).at[gidx, pos].set(x, mode="drop")
    return padded, _node_mask(n_node, max_nodes, gmask)


def from_padded(padded, graphs: jraph.GraphsTuple) -> Array:
    """Gather per-graph blocks ``[G, max_nodes, ...]`` back to flat node values ``[N_total, ...]``.

    ``node_values[v] = padded[node_graph_index(v), node_position(v)]``; nodes whose position is ``>= max_nodes``
    (only possible under ``jit`` with too small a ``max_nodes``) get zeros. Exact inverse of ``to_padded``.

    Args:
      padded: array ``[G, max_nodes, ...]``.
      graphs: the batch (``n_node`` ``[G]``).

    Returns:
      ``[N_total, ...]``, dtype of ``padded``.

    Example:
      >>> import jraph, jax.numpy as jnp
      >>> from eigenkit.graph import from_padded, to_padded
      >>> g = jraph.GraphsTuple(nodes=jnp.arange(5.0), edges=None, senders=jnp.zeros(0, jnp.int32),
      ...     receivers=jnp.zeros(0, jnp.int32), n_node=jnp.array([2, 3]), n_edge=jnp.array([0, 0]),
      ...     globals=None)
      >>> from_padded(to_padded(g.nodes, g, 4)[0], g).tolist()
      [0.0, 1.0, 2.0, 3.0, 4.0]
    """
    n_node = _n_node(graphs)
    p = check_array(padded, "padded", min_ndim=2)
    if p.shape[0] != n_node.shape[0]:
        raise ValueError(
            f"padded must have shape (G, max_nodes, ...) with G={n_node.shape[0]} graphs, got {tuple(p.shape)}"
        )
    gidx = node_graph_index(graphs)
    pos = node_position(graphs)
    return p.at[gidx, pos].get(mode="fill", fill_value=0)


def pad_graphs_to(
    graphs: jraph.GraphsTuple,
    n_node: int,
    n_edge: int,
    n_graph: int,
    *,
    max_nodes: int | None = None,
) -> jraph.GraphsTuple:
    """``jraph.pad_with_graphs`` with clear errors: pad a batch to static totals (host side, not ``jit``-able).

    After padding, ``real_graph_mask(padded)`` marks the real graphs; pass it as ``graph_mask`` to
    ``to_padded`` / ``dense_adjacency`` / ``laplacian_eigs``.

    Args:
      graphs: a concrete (host or device) batch.
      n_node: total node budget; must exceed ``sum(graphs.n_node)`` (jraph needs >= 1 padding node).
      n_edge: total edge budget, ``>= sum(graphs.n_edge)``.
      n_graph: total graph budget, ``> len(graphs.n_node)`` (one padding graph, then empty ones).
      max_nodes: if given, also check that every graph has at most ``max_nodes`` nodes.

    Returns:
      the padded ``jraph.GraphsTuple`` with exactly ``n_node`` nodes, ``n_edge`` edges and ``n_graph`` graphs.

    Raises:
      ValueError: a budget is too small (the message names the budget and the sizes) or a graph is too large.

    Example:
      >>> import jraph, numpy as np
      >>> from eigenkit.graph import pad_graphs_to
      >>> g = jraph.GraphsTuple(nodes=np.zeros((3, 1)), edges=None, senders=np.array([0, 1]),
      ...     receivers=np.array([1, 2]), n_node=np.array([3]), n_edge=np.array([2]), globals=None)
      >>> pad_graphs_to(g, 8, 4, 3).n_node.tolist()
      [3, 5, 0]
    """
    sizes = np.asarray(jax.device_get(graphs.n_node))
    edges = np.asarray(jax.device_get(graphs.n_edge))
    tot_n, tot_e, tot_g = int(sizes.sum()), int(edges.sum()), int(sizes.shape[0])
    if n_node <= tot_n:
        raise ValueError(
            f"n_node={n_node} is too small: the batch has {tot_n} nodes and padding needs at least one more"
        )
    if n_edge < tot_e:
        raise ValueError(f"n_edge={n_edge} is too small: the batch has {tot_e} edges")
    if n_graph <= tot_g:
        raise ValueError(
            f"n_graph={n_graph} is too small: the batch has {tot_g} graphs and padding needs at least one more"
        )
    if max_nodes is not None:
        _check_fits(sizes, _check_max_nodes(max_nodes), None)
    return jraph.pad_with_graphs(graphs, n_node=n_node, n_edge=n_edge, n_graph=n_graph)


def real_graph_mask(graphs: jraph.GraphsTuple) -> Bool[Array, " G"]:
    """``True`` for the real graphs of a batch padded by ``jraph.pad_with_graphs`` / ``pad_graphs_to``.

    Same rule as ``jraph.get_graph_padding_mask`` (the last graph with nodes is the padding graph, every graph
    after it is an empty padding graph), but ``jit``-able and dtype-explicit, so it also works with
    ``jax_enable_x64`` + strict dtype promotion (where jraph's version raises a ``TypePromotionError``).
    Only meaningful for padded batches: on an unpadded batch it marks the last non-empty graph as padding.

    Args:
      graphs: a padded ``jraph.GraphsTuple`` (``n_node [G]``).

    Returns:
      ``bool[G]``.

    Example:
      >>> import jraph, numpy as np
      >>> from eigenkit.graph import pad_graphs_to, real_graph_mask
      >>> g = jraph.GraphsTuple(nodes=np.zeros((3, 1)), edges=None, senders=np.array([0, 1]),
      ...     receivers=np.array([1, 2]), n_node=np.array([3]), n_edge=np.array([2]), globals=None)
      >>> real_graph_mask(pad_graphs_to(g, 8, 4, 3)).tolist()
      [True, False, False]
    """
    n_node = _n_node(graphs)
    n_graph = n_node.shape[0]
    trailing_empty = jnp.sum(jnp.cumprod((n_node[::-1] == 0).astype(jnp.int32), dtype=jnp.int32), dtype=jnp.int32)
    return jnp.arange(n_graph, dtype=jnp.int32) < n_graph - trailing_empty - 1
