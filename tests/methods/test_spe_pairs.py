"""SPE's node-pair row layout (PairIndex): the same PE, BatchNorm statistics and gradients as the dense masked path
(train and eval mode, float64), with rematerialisation, on batches with edgeless, single-node and self-loop graphs;
budgets, bad inputs, the OFFICIAL-mode refusal and an 8-device sharded run."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest
from flax import nnx

from eigenkit import graph as eg
from eigenkit import train
from eigenkit.methods import spe


def _graphs(rng, sizes, edgeless=(), self_loop=()):
    gs = []
    for i, n in enumerate(sizes):
        a = np.zeros((n, n))
        if i not in edgeless and n > 1:
            a = np.triu((rng.random((n, n)) < 0.4).astype(float), 1)
            for v in range(n - 1):
                a[v, v + 1] = 1
            a = a + a.T
        if i in self_loop:
            a[0, 0] = 1
        s, r = np.nonzero(a)
        gs.append(jraph.GraphsTuple(nodes=rng.integers(0, 5, n).astype(np.int32),
                                    edges=rng.integers(1, 4, len(s)).astype(np.int32), senders=s, receivers=r,
                                    n_node=np.array([n]), n_edge=np.array([len(s)]),
                                    globals=np.array([rng.normal()], np.float64)))
    return gs


def _batch(seed=0, sizes=(5, 3, 1, 6, 4), dtype=np.float64):
    rng = np.random.default_rng(seed)
    gs = _graphs(rng, sizes, edgeless=(1,), self_loop=(3,))
    return spe.make_graph_batch(jraph.batch(gs), max_nodes=7, max_edges=48, k=7, dtype=dtype)


def _model(remat=False, bn_mode=spe.BatchNormMode.MASKED, dtype=jnp.float64, kind=spe.PEKind.SPE):
    return spe.PEGraphRegressor(kind, n_node_types=5, n_edge_types=4, n_eigs=7, hidden=8, n_layers=2,
                                n_mlp_layers=2, pe_dims=4, n_phi=3, phi_hidden=4, rho_layers=4, rho_hidden=8,
                                bn_mode=bn_mode, remat=remat, param_dtype=dtype, rngs=nnx.Rngs(0))


def _loss_grad(model, batch):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, rest):
        m = nnx.merge(graphdef, params, jax.tree.map(lambda x: x, rest))
        pred = m(batch)
        loss = jnp.mean(jnp.abs(pred - batch.graphs.globals.astype(pred.dtype)) ** 2)
        return loss, (pred, nnx.split(m, nnx.Param, ...)[2])

    return jax.jit(jax.value_and_grad(loss, has_aux=True))(params, rest)


def test_pair_index_layout():
    batch = _batch()
    p = spe.pair_index(batch, granule=64)
    sizes = np.array([5, 3, 1, 6, 4])
    assert int(p.row_mask.sum()) == int((sizes ** 2).sum()) and p.dense_row.shape[0] % 64 == 0
    # rows of graph 0 come first, (v, j) row-major, pointing into the dense [B·N·N] layout
    np.testing.assert_array_equal(p.dense_row[:5], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(p.dense_row[5:7], [7, 8])
    np.testing.assert_array_equal(p.node[:5], 0)
    assert p.node[~p.row_mask].tolist() == [5 * 7] * int((~p.row_mask).sum())
    # the tables encode the dense adjacency: neighbour_sum on one-hot columns == A ⊗ I
    adj = np.asarray(spe.dense_adjacency_of_batch(batch, jnp.float64))
    x = np.zeros((5, 7, 7))
    x[3, :, 2] = np.arange(7.0)
    rows = x.reshape(-1)[p.dense_row] * p.row_mask
    got = np.asarray(eg.neighbour_sum(jnp.asarray(rows), p.neighbours, p.reverse))
    dense = np.zeros(5 * 7 * 7)
    dense[p.dense_row[p.row_mask]] = got[p.row_mask]
    want = np.einsum("bvu,buj->bvj", adj, x)
    np.testing.assert_allclose(dense.reshape(5, 7, 7), want * (np.arange(7) < 6)[None, None, :], atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("kind,remat", [(spe.PEKind.SPE, False), (spe.PEKind.SPE, True), (spe.PEKind.SIGNNET, False)],
                         ids=["spe", "spe-remat", "signnet"])
def test_pairs_equal_dense_masked_train_and_eval(kind, remat):
    batch = _batch()
    dense_out = _loss_grad(_model(kind=kind), jax.tree.map(jnp.asarray, batch))
    paired = spe.with_pair_index(batch, granule=32)
    pair_out = _loss_grad(_model(remat=remat, kind=kind), jax.tree.map(jnp.asarray, paired))
    (l0, (p0, s0)), g0 = dense_out
    (l1, (p1, s1)), g1 = pair_out
    np.testing.assert_allclose(p1, p0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(l1, l0, rtol=1e-10)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s0)):  # updated BatchNorm running statistics
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    model_d, model_p = _model(kind=kind), _model(remat=remat, kind=kind)
    model_d.eval()
    model_p.eval()
    np.testing.assert_allclose(nnx.jit(lambda m, b: m(b))(model_p, paired),
                               nnx.jit(lambda m, b: m(b))(model_d, batch), rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_remat_dense_path_and_float32():
    batch = _batch(dtype=np.float32)
    (_, (p0, _)), g0 = _loss_grad(_model(dtype=jnp.float32), jax.tree.map(jnp.asarray, batch))
    (_, (p1, _)), g1 = _loss_grad(_model(remat=True, dtype=jnp.float32), jax.tree.map(jnp.asarray, batch))
    assert p1.dtype == jnp.float32
    np.testing.assert_allclose(p1, p0, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_budgets_and_errors():
    batch = _batch()
    need = int(np.sum(np.array([5, 3, 1, 6, 4]) ** 2))
    with pytest.raises(ValueError, match=f"row_budget=80 is below the batch's Σ n_b² = {need}"):
        spe.pair_index(batch, row_budget=80)
    with pytest.raises(ValueError, match="width=1 is below the largest count"):
        spe.pair_index(batch, degree_budget=1)
    p = spe.pair_index(batch, row_budget=128, degree_budget=6)
    assert p.dense_row.shape == (128,) and p.neighbours.shape == (128, 6) == p.reverse.shape
    n_node = np.array([5, 3, 1, 6, 4, 2])
    assert spe.pair_budgets(n_node, 4, 2, draws=[[3, 0], [1, 2]], granule=8) == (64, 4)  # 36 + 25 → 64
    assert spe.pair_budgets(n_node, 4, 2, granule=8) == (72, 4)  # worst case 2 · 6²
    model = _model(bn_mode=spe.BatchNormMode.OFFICIAL)
    with pytest.raises(ValueError, match="BatchNormMode.MASKED"):
        model(spe.with_pair_index(batch))
    with pytest.raises(ValueError, match="adj"):
        model.spe(batch.eigvals, batch.eigvecs, batch.eig_mask, batch.node_mask.reshape(5, 7), None)


@pytest.mark.slow
def test_signnet_pairs_with_truncated_spectra():
    """k < n: rows (v, j) with j >= d_b are not SignNet rows; the pair path masks them out."""
    rng = np.random.default_rng(3)
    gs = _graphs(rng, (5, 3, 6, 4))
    batch = spe.make_graph_batch(jraph.batch(gs), max_nodes=6, max_edges=40, k=3, dtype=np.float64)
    model = spe.PEGraphRegressor(spe.PEKind.SIGNNET, n_node_types=5, n_edge_types=4, n_eigs=3, hidden=8, n_layers=1,
                                 n_mlp_layers=2, pe_dims=4, rho_layers=2, rho_hidden=8, param_dtype=jnp.float64,
                                 rngs=nnx.Rngs(0))
    (_, (p0, _)), g0 = _loss_grad(model, jax.tree.map(jnp.asarray, batch))
    (_, (p1, _)), g1 = _loss_grad(model, jax.tree.map(jnp.asarray, spe.with_pair_index(batch)))
    np.testing.assert_allclose(p1, p0, rtol=1e-10, atol=1e-12)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11)


@pytest.mark.slow
def test_pairs_sharded_over_8_devices_match_one_device():
    batch = spe.with_pair_index(_batch(sizes=(5, 3, 1, 6, 4, 2, 7, 5)), granule=64)
    model = _model()
    f = nnx.jit(lambda m, b: m(b))
    single = f(model, jax.tree.map(jnp.asarray, batch))
    mesh = train.make_mesh()
    assert mesh.devices.size == 8
    np.testing.assert_allclose(f(model, train.shard_batch(batch, mesh)), single, rtol=1e-10, atol=1e-12)
