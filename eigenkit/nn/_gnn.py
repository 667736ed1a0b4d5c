"""GIN / GINE message passing on ``jraph.GraphsTuple`` batches, a dense GIN for padded ``[B, N, ..., C]`` tensors,
and a GINE graph regressor with positional-encoding (PE) injection as in Graph-COM/SPE ``src/gine.py`` /
``src/model.py``.

Conventions (shapes with ``Ntot`` nodes, ``Etot`` edges, ``G`` graphs in the flattened jraph batch):

* ``graphs.nodes``: int ``[Ntot]`` node types (or float ``[Ntot, F]`` features, already embedded);
* ``graphs.edges``: int ``[Etot]`` edge types in ``1..n_edge_types`` (row 0 of the edge table is unused, as in the
  official ``Embedding(n_edge_types + 1, ·)``);
* messages flow ``senders → receivers``; undirected graphs list both directions;
* ``node_mask`` ``[Ntot]`` / ``edge_mask`` ``[Etot]`` (bool) mark real entries when the batch is padded
  (``jraph.pad_with_graphs`` or a fixed per-graph node budget). Padding edges send nothing, padding nodes are
  excluded from BatchNorm statistics and from pooling. Default: everything is real.

GIN (Xu et al. 2019, eq. 4.1): ``h_v ← MLP((1 + ε) h_v + Σ_{u→v} h_u)``.
GINE (Hu et al. 2020, "Strategies for pre-training GNNs"): ``h_v ← MLP((1 + ε) h_v + Σ_{u→v} ReLU(h_u + E[e_uv]))``.
PE injection (official SPE model): ``h⁰ = Emb(type) + Linear(PE)``; in every GINE layer ``h ← h + MLP_pe(PE)`` before
message passing; residual ``h_out = layer(h) + h``.
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp
import jraph
from flax import nnx

from eigenkit import graph as eg
from eigenkit.graph import node_graph_index
from eigenkit.nn._mlp import MLP, torch_linear_init

__all__ = [
    "Pooling",
    "graph_index",
    "pool_nodes",
    "GINLayer",
    "GINELayer",
    "DenseGINLayer",
    "GINE",
    "GINEGraphRegressor",
]


class Pooling(enum.Enum):
    """Readout over a set or sequence axis, the one pooling enum of eigenkit.

    ``MEAN`` and ``SUM`` apply to graphs (:func:`pool_nodes`) and sequences; ``LAST`` (the last position) only to
    sequences (e.g. S4D's classifier).
    """

    MEAN = "mean"
    SUM = "sum"
    LAST = "last"


def graph_index(graphs: jraph.GraphsTuple) -> jax.Array:
    """Graph id of every node, int32 ``[Ntot]`` (static length, jit-safe): the one graph-index helper,
    :func:`eigenkit.graph.node_graph_index` (nodes beyond ``sum(n_node)`` get the out-of-range id ``G``, which the
    segment sums of :func:`pool_nodes` drop)."""
    return node_graph_index(graphs)


def pool_nodes(
    x: jax.Array, graphs: jraph.GraphsTuple, *, pooling: Pooling = Pooling.MEAN, node_mask: jax.Array | None = None
) -> jax.Array:
    """Masked readout ``[Ntot, F] → [G, F]``: sum or mean over each graph's real nodes (empty graph → 0).

    Example:
      >>> import jax.numpy as jnp, jraph
      >>> g = jraph.GraphsTuple(nodes=jnp.zeros(3), edges=jnp.zeros(0), senders=jnp.zeros(0, int),
      ...     receivers=jnp.zeros(0, int), n_node=jnp.array([2, 1]), n_edge=jnp.array([0, 0]), globals=None)
      >>> pool_nodes(jnp.array([[1.0], [3.0], [5.0]]), g).ravel().tolist()
      [2.0, 5.0]
    """
    if pooling is Pooling.LAST:
        raise ValueError("pooling=Pooling.LAST has no meaning for graph nodes; use Pooling.MEAN or Pooling.SUM")
    gid = graph_index(graphs)
    g = graphs.n_node.shape[0]
    w = jnp.ones(x.shape[:1], x.dtype) if node_mask is None else node_mask.astype(x.dtype)
    s = jax.ops.segment_sum(x * w[:, None], gid, num_segments=g)
    if pooling is Pooling.SUM:
        return s
    cnt = jax.ops.segment_sum(w, gid, num_segments=g)
    return s / jnp.maximum(cnt, 1.0)[:, None]


def _eps_init(rngs: nnx.Rngs, dtype) -> nnx.Param:
    # official: torch.randn(1), a learnable scalar drawn from N(0, 1)
    return nnx.Param(jax.random.normal(rngs.params(), (1,), dtype))


class GINLayer(nnx.Module):
    """GIN layer on a jraph batch: ``h_v ← MLP((1 + ε) h_v + Σ_{u→v} h_u)``.

    Args:
      in_features, out_features: widths; the MLP is ``MLP(n_mlp_layers, in, hidden, out)``.
      hidden_features: MLP hidden width (defaults to ``out_features``).
      n_mlp_layers, use_bn, masked_bn: MLP options (see :class:`eigenkit.nn.MLP`).
      rngs: ``nnx.Rngs``.

    Example:
      >>> import jax.numpy as jnp, jraph
      >>> from flax import nnx
      >>> g = jraph.GraphsTuple(nodes=jnp.ones((3, 4)), edges=None, senders=jnp.array([0, 1]),
      ...     receivers=jnp.array([1, 2]), n_node=jnp.array([3]), n_edge=jnp.array([2]), globals=None)
      >>> GINLayer(4, 8, rngs=nnx.Rngs(0))(g.nodes, g).shape
      (3, 8)
    """

    def __init__(self, in_features: int, out_features: int, *, hidden_features: int | None = None,
                 n_mlp_layers: int = 2, use_bn: bool = True, masked_bn: bool = True, param_dtype=jnp.float32,
                 rngs: nnx.Rngs):
        self.eps = _eps_init(rngs, param_dtype)
        self.mlp = MLP(n_mlp_layers, in_features, hidden_features or out_features, out_features, use_bn=use_bn,
                       masked_bn=masked_bn, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, h: jax.Array, graphs: jraph.GraphsTuple, *, node_mask: jax.Array | None = None,
                 edge_mask: jax.Array | None = None) -> jax.Array:
        """``h[Ntot, in]`` → ``[Ntot, out]``."""
        msg = h[graphs.senders]
        if edge_mask is not None:
            msg = msg * edge_mask.astype(h.dtype)[:, None]
        agg = jax.ops.segment_sum(msg, graphs.receivers, num_segments=h.shape[0])
        z = (1.0 + self.eps[...].astype(h.dtype)) * h + agg
        return self.mlp(z, mask=node_mask)


class GINELayer(nnx.Module):
    """GINE layer with optional PE injection (Graph-COM/SPE ``GINELayer``).

    ``h ← h + MLP_pe(PE)`` (if a PE is given), ``m_{u→v} = ReLU(h_u + E[e_uv])``,
    ``h_v ← MLP((1 + ε) h_v + Σ_{u→v} m_{u→v})``.

    Args:
      n_edge_types: edge types are ``1..n_edge_types`` (table has ``n_edge_types + 1`` rows).
      in_features, out_features: widths.
      pe_features: width of the PE (0: no PE input). Official code hard-codes 37 here (quirk 1); we use this.
      hidden_features, n_mlp_layers, use_bn, masked_bn: MLP options.
      rngs: ``nnx.Rngs``.
    """

    def __init__(self, n_edge_types: int, in_features: int, out_features: int, *, pe_features: int = 0,
                 hidden_features: int | None = None, n_mlp_layers: int = 3, use_bn: bool = True,
                 masked_bn: bool = True, param_dtype=jnp.float32, rngs: nnx.Rngs):
        hidden = hidden_features or out_features
        self.edge_embed = nnx.Embed(n_edge_types + 1, in_features, param_dtype=param_dtype,
                                    embedding_init=jax.nn.initializers.normal(1.0), rngs=rngs)
        mk = dict(use_bn=use_bn, masked_bn=masked_bn, param_dtype=param_dtype, rngs=rngs)
        self.pe_mlp = MLP(n_mlp_layers, pe_features, hidden, in_features, **mk) if pe_features else None
        self.eps = _eps_init(rngs, param_dtype)
        self.mlp = MLP(n_mlp_layers, in_features, hidden, out_features, **mk)

    def __call__(self, h: jax.Array, graphs: jraph.GraphsTuple, pe: jax.Array | None = None, *,
                 node_mask: jax.Array | None = None, edge_mask: jax.Array | None = None) -> jax.Array:
        """``h[Ntot, in]``, ``pe[Ntot, pe_features]`` → ``[Ntot, out]``."""
        if pe is not None:
            if self.pe_mlp is None:
                raise ValueError("this GINELayer was built with pe_features=0 but a PE was passed")
            h = h + self.pe_mlp(pe, mask=node_mask)
        e = self.edge_embed(graphs.edges).astype(h.dtype)
        msg = jax.nn.relu(h[graphs.senders] + e)
        if edge_mask is not None:
            msg = msg * edge_mask.astype(h.dtype)[:, None]
        agg = jax.ops.segment_sum(msg, graphs.receivers, num_segments=h.shape[0])
        z = (1.0 + self.eps[...].astype(h.dtype)) * h + agg
        return self.mlp(z, mask=node_mask)


class DenseGINLayer(nnx.Module):
    """GIN layer on a dense padded batch, batched over any extra axes:
    ``X[b, v, …] ← MLP((1 + ε) X[b, v, …] + Σ_u A[b, v, u] X[b, u, …])``.

    Used by SPE's ρ, which runs a GIN over the node axis of ``W[b, v, j, ℓ]`` treating the column axis ``j`` as a
    batch axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> layer = DenseGINLayer(3, 5, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((2, 4, 4, 3)), jnp.ones((2, 4, 4))).shape
      (2, 4, 4, 5)
    """

    def __init__(self, in_features: int, out_features: int, *, hidden_features: int | None = None,
                 n_mlp_layers: int = 3, use_bn: bool = True, masked_bn: bool = True, param_dtype=jnp.float32,
                 rngs: nnx.Rngs):
        self.eps = _eps_init(rngs, param_dtype)
        self.mlp = MLP(n_mlp_layers, in_features, hidden_features or out_features, out_features, use_bn=use_bn,
                       masked_bn=masked_bn, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, x: jax.Array, adj: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
        """``x[B, N, …, in]``, ``adj[B, N, N]`` (``adj[b, v, u]`` = weight of ``u → v``) → ``[B, N, …, out]``.

        ``mask`` (bool, ``x.shape[:-1]``) marks real entries for the BatchNorm statistics.
        """
        b, n = x.shape[:2]
        flat = x.reshape(b, n, -1)
        agg = jnp.einsum("bvu,bur->bvr", adj.astype(x.dtype), flat).reshape(x.shape)
        z = (1.0 + self.eps[...].astype(x.dtype)) * x + agg
        return self.mlp(z, mask=mask)

    def on_rows(self, x: jax.Array, neighbours: jax.Array, reverse: jax.Array, *,
                mask: jax.Array | None = None) -> jax.Array:
        """The same layer on a flat row layout: ``x[R, in]`` → ``[R, out]``, ``X[r] ← MLP((1 + ε) X[r] +
        Σ_k X[neighbours[r, k]])`` (:func:`eigenkit.graph.neighbour_sum`; ``reverse`` its transposed table).
        Equals :meth:`__call__` when the rows are the entries of ``x[B, N, …]`` and the tables encode ``adj``
        (e.g. SPE's node-pair rows, ``eigenkit.methods.spe.pair_index``); ``mask [R]`` marks rows in the
        BatchNorm statistics."""
        z = (1.0 + self.eps[...].astype(x.dtype)) * x + eg.neighbour_sum(x, neighbours, reverse)
        return self.mlp(z, mask=mask)


class GINE(nnx.Module):
    """A stack of :class:`GINELayer` with PE injection in every layer and residual connections
    (official ``GINE``: ``n_layers − 1`` layers in → hidden, then hidden → out; residual ``h ← layer(h) + h``)."""

    def __init__(self, n_layers: int, n_edge_types: int, in_features: int, hidden_features: int,
                 out_features: int, *, pe_features: int = 0, n_mlp_layers: int = 3, use_bn: bool = True,
                 masked_bn: bool = True, residual: bool = True, param_dtype=jnp.float32, rngs: nnx.Rngs):
        if residual and not in_features == hidden_features == out_features:
            raise ValueError("residual GINE needs in_features == hidden_features == out_features")
        widths = [in_features] + [hidden_features] * (n_layers - 1) + [out_features]
        self.residual = residual
        self.layers = nnx.List([
            GINELayer(n_edge_types, widths[i], widths[i + 1], pe_features=pe_features,
                      hidden_features=hidden_features, n_mlp_layers=n_mlp_layers, use_bn=use_bn,
                      masked_bn=masked_bn, param_dtype=param_dtype, rngs=rngs)
            for i in range(n_layers)
        ])

    def __call__(self, h, graphs, pe=None, *, node_mask=None, edge_mask=None):
        """``h[Ntot, in]`` → ``[Ntot, out]``."""
        for layer in self.layers:
            out = layer(h, graphs, pe, node_mask=node_mask, edge_mask=edge_mask)
            h = out + h if self.residual else out
        return h


class GINEGraphRegressor(nnx.Module):
    """Official SPE ``Model`` + ``GINEBaseModel`` for graph regression, PE method agnostic.

    ``h⁰ = Emb(node_type) (+ Linear(PE))`` → :class:`GINE` (PE injected in every layer) → masked mean/sum pooling
    → ``MLP(hidden → out)`` → ``[G]`` (``out_features = 1``) or ``[G, out]``.

    Args:
      n_layers: GINE layers (official ZINC: 4).
      n_node_types, n_edge_types: vocabulary sizes (ZINC: 28, 3).
      hidden_features: node embedding = GINE width (ZINC: 128).
      pe_features: PE width (0: no PE).
      out_features: regression targets.
      pooling: :class:`Pooling`.
      n_mlp_layers, use_bn, masked_bn, residual: as in the official config.
      rngs: ``nnx.Rngs``.

    Example:
      >>> import jax.numpy as jnp, jraph
      >>> from flax import nnx
      >>> g = jraph.GraphsTuple(nodes=jnp.array([0, 1, 2]), edges=jnp.array([1, 1]), senders=jnp.array([0, 1]),
      ...     receivers=jnp.array([1, 0]), n_node=jnp.array([3]), n_edge=jnp.array([2]), globals=None)
      >>> model = GINEGraphRegressor(2, 4, 3, 8, rngs=nnx.Rngs(0))
      >>> model.eval()
      >>> model(g).shape
      (1,)
    """

    def __init__(self, n_layers: int, n_node_types: int, n_edge_types: int, hidden_features: int, *,
                 pe_features: int = 0, out_features: int = 1, pooling: Pooling = Pooling.MEAN,
                 n_mlp_layers: int = 3, use_bn: bool = True, masked_bn: bool = True, residual: bool = True,
                 param_dtype=jnp.float32, rngs: nnx.Rngs):
        self.pooling = pooling
        self.out_features = out_features
        self.node_embed = nnx.Embed(n_node_types, hidden_features, param_dtype=param_dtype,
                                    embedding_init=jax.nn.initializers.normal(1.0), rngs=rngs)
        self.pe_embed = (nnx.Linear(pe_features, hidden_features, kernel_init=torch_linear_init,
                                    param_dtype=param_dtype, rngs=rngs) if pe_features else None)
        mk = dict(n_mlp_layers=n_mlp_layers, use_bn=use_bn, masked_bn=masked_bn, param_dtype=param_dtype, rngs=rngs)
        self.gine = GINE(n_layers, n_edge_types, hidden_features, hidden_features, hidden_features,
                         pe_features=pe_features, residual=residual, **mk)
        self.head = MLP(n_mlp_layers, hidden_features, hidden_features, out_features, use_bn=use_bn,
                        masked_bn=masked_bn, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, graphs: jraph.GraphsTuple, pe: jax.Array | None = None, *,
                 node_mask: jax.Array | None = None, edge_mask: jax.Array | None = None,
                 graph_mask: jax.Array | None = None) -> jax.Array:
        """Predict ``[G]`` (or ``[G, out]``) from a jraph batch and optional node PEs ``[Ntot, pe_features]``."""
        h = self.node_embed(graphs.nodes)
        if pe is not None:
            if self.pe_embed is None:
                raise ValueError("this model was built with pe_features=0 but a PE was passed")
            h = h + self.pe_embed(pe.astype(h.dtype))
        h = self.gine(h, graphs, pe, node_mask=node_mask, edge_mask=edge_mask)
        pooled = pool_nodes(h, graphs, pooling=self.pooling, node_mask=node_mask)
        y = self.head(pooled, mask=graph_mask)
        return y[:, 0] if self.out_features == 1 else y
