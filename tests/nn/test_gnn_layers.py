"""GIN / GINE on jraph, dense GIN, masked BatchNorm, MLP, pooling, GINE regressor (eigenkit.nn._gnn/_norm/_mlp)."""

import jax
import jax.numpy as jnp
import jax.test_util  # noqa: F401  (check_grads)
import jraph
import numpy as np
import pytest
from flax import nnx

from eigenkit.nn import (
    MLP,
    DenseGINLayer,
    GINEGraphRegressor,
    GINELayer,
    GINLayer,
    MaskedBatchNorm,
    Pooling,
    graph_index,
    pool_nodes,
)


def _graph(rng, n=6, e=10, f=3, dtype=np.float32, edge_types=True):
    s = rng.integers(0, n, e)
    r = rng.integers(0, n, e)
    edges = rng.integers(1, 4, e) if edge_types else None
    return jraph.GraphsTuple(nodes=rng.normal(size=(n, f)).astype(dtype), edges=edges, senders=s, receivers=r,
                             n_node=np.array([n]), n_edge=np.array([e]), globals=None)


def _np_mlp(mlp, x):
    """float64 numpy forward of an MLP without BatchNorm."""
    for lin in mlp.hidden:
        x = np.maximum(x @ np.asarray(lin.kernel[...], np.float64) + np.asarray(lin.bias[...], np.float64), 0)
    return x @ np.asarray(mlp.out.kernel[...], np.float64) + np.asarray(mlp.out.bias[...], np.float64)


def test_gin_layer_matches_numpy_loop(dtype, tol, rng):
    g = _graph(rng, dtype=dtype, edge_types=False)
    layer = GINLayer(3, 5, use_bn=False, param_dtype=dtype, rngs=nnx.Rngs(0))
    got = jax.jit(lambda h, s, r: layer(h, g._replace(senders=s, receivers=r)))(g.nodes, g.senders, g.receivers)
    x = g.nodes.astype(np.float64)
    agg = np.zeros_like(x)
    for s, r in zip(g.senders, g.receivers):
        agg[r] += x[s]
    want = _np_mlp(layer.mlp, (1 + float(layer.eps[...][0])) * x + agg)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=tol[0], atol=tol[1] * 10)


def test_gine_layer_matches_numpy_and_masks_padding_edges(rng):
    g = _graph(rng, dtype=np.float64)
    layer = GINELayer(3, 3, 4, pe_features=2, use_bn=False, param_dtype=jnp.float64, rngs=nnx.Rngs(1))
    pe = rng.normal(size=(6, 2))
    emask = np.arange(10) < 7
    got = layer(jnp.asarray(g.nodes), g, jnp.asarray(pe), edge_mask=jnp.asarray(emask))
    x = g.nodes + _np_mlp(layer.pe_mlp, pe)
    table = np.asarray(layer.edge_embed.embedding[...])
    agg = np.zeros_like(x)
    for s, r, t, m in zip(g.senders, g.receivers, g.edges, emask):
        if m:
            agg[r] += np.maximum(x[s] + table[t], 0)
    want = _np_mlp(layer.mlp, (1 + float(layer.eps[...][0])) * x + agg)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_dense_gin_equals_sparse_gin_per_column(rng):
    g = _graph(rng, n=5, e=8, f=2, dtype=np.float64, edge_types=False)
    sparse = GINLayer(2, 3, n_mlp_layers=2, use_bn=False, param_dtype=jnp.float64, rngs=nnx.Rngs(2))
    dense = DenseGINLayer(2, 3, n_mlp_layers=2, use_bn=False, param_dtype=jnp.float64, rngs=nnx.Rngs(2))
    adj = np.zeros((1, 5, 5))
    for s, r in zip(g.senders, g.receivers):
        adj[0, r, s] += 1
    x = rng.normal(size=(1, 5, 4, 2))  # an extra column axis j = 4
    got = dense(jnp.asarray(x), jnp.asarray(adj))
    for j in range(4):
        np.testing.assert_allclose(got[0, :, j], sparse(jnp.asarray(x[0, :, j]), g), rtol=1e-12, atol=1e-12)


def test_gin_grad_check_float64(rng):
    g = _graph(rng, n=4, e=6, f=2, dtype=np.float64)
    layer = GINELayer(3, 2, 2, use_bn=False, param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    jax.test_util.check_grads(lambda h: layer(h, g), (jnp.asarray(g.nodes),), order=1, modes=["rev"])


def test_masked_batchnorm_excludes_padding(rng):
    x = rng.normal(size=(7, 3)).astype(np.float32)
    mask = np.array([1, 1, 1, 1, 0, 0, 0], bool)
    padded = x.copy()
    padded[~mask] = 1e3
    bn = MaskedBatchNorm(3, rngs=nnx.Rngs(0))
    y_masked = bn(jnp.asarray(padded), mask=jnp.asarray(mask))
    ref = MaskedBatchNorm(3, rngs=nnx.Rngs(0))
    y_alone = ref(jnp.asarray(x[mask]))
    np.testing.assert_allclose(y_masked[:4], y_alone, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.mean[...], ref.mean[...], rtol=1e-6)  # running stats too
    n = 4
    np.testing.assert_allclose(bn.var[...], 0.9 + 0.1 * x[mask].var(0) * n / (n - 1), rtol=1e-5)
    # unmasked (official) mode uses every entry: the padding changes the result
    off = MaskedBatchNorm(3, masked=False, rngs=nnx.Rngs(0))
    assert not np.allclose(off(jnp.asarray(padded), mask=jnp.asarray(mask))[:4], y_alone, atol=1e-2)
    # eval mode uses running statistics
    bn.use_running_average = True
    np.testing.assert_allclose(bn(jnp.asarray(x)), (x - bn.mean[...]) / np.sqrt(bn.var[...] + 1e-5), rtol=1e-5)


def test_masked_batchnorm_bad_width():
    with pytest.raises(ValueError, match="must have shape"):
        MaskedBatchNorm(3)(jnp.ones((2, 4)))


def test_mlp_n_layers_one_and_bad():
    assert MLP(1, 3, 99, 2, rngs=nnx.Rngs(0))(jnp.ones((4, 3), jnp.float32)).shape == (4, 2)
    with pytest.raises(ValueError, match="n_layers"):
        MLP(0, 3, 4, 2, rngs=nnx.Rngs(0))


def test_pooling_mean_sum_masked():
    g = jraph.GraphsTuple(nodes=jnp.zeros(5), edges=None, senders=jnp.zeros(0, int), receivers=jnp.zeros(0, int),
                          n_node=jnp.array([3, 0, 2]), n_edge=jnp.array([0, 0, 0]), globals=None)
    x = jnp.arange(5.0)[:, None]
    np.testing.assert_array_equal(graph_index(g), [0, 0, 0, 2, 2])
    np.testing.assert_allclose(pool_nodes(x, g).ravel(), [1.0, 0.0, 3.5])
    np.testing.assert_allclose(pool_nodes(x, g, pooling=Pooling.SUM).ravel(), [3.0, 0.0, 7.0])
    m = jnp.array([True, True, False, True, False])
    np.testing.assert_allclose(pool_nodes(x, g, node_mask=m).ravel(), [0.5, 0.0, 3.0])


@pytest.mark.slow
def test_regressor_jraph_batch_equals_single_graphs_eval(rng):
    """jraph.batch of graphs gives the per-graph predictions (eval mode), under jit."""
    gs = []
    for n, e in [(3, 4), (5, 6)]:
        s, r = rng.integers(0, n, e), rng.integers(0, n, e)
        gs.append(jraph.GraphsTuple(nodes=rng.integers(0, 4, n), edges=rng.integers(1, 4, e), senders=s,
                                    receivers=r, n_node=np.array([n]), n_edge=np.array([e]), globals=None))
    model = GINEGraphRegressor(1, 4, 3, 8, pe_features=2, n_mlp_layers=2, rngs=nnx.Rngs(0))
    model.eval()
    batch = jraph.batch(gs)
    pe = rng.normal(size=(8, 2)).astype(np.float32)
    got = nnx.jit(lambda m, b, p: m(b, p))(model, batch, jnp.asarray(pe))
    offs = np.cumsum([0] + [3, 5])
    for i, g in enumerate(gs):
        np.testing.assert_allclose(got[i], model(g, jnp.asarray(pe[offs[i]:offs[i + 1]]))[0], rtol=1e-5, atol=1e-6)
    unb = jraph.unbatch(batch)
    for a, b in zip(unb, gs):
        np.testing.assert_array_equal(a.senders, b.senders)
    with pytest.raises(ValueError, match="pe_features=0"):
        GINEGraphRegressor(1, 4, 3, 8, rngs=nnx.Rngs(0))(batch, jnp.asarray(pe))
