"""eigenkit.graph.dense_adjacency and laplacian vs float64 NumPy / networkx references."""

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from _graph_refs import batch, nx_edges, ref_adj, ref_lap
from jax.test_util import check_grads

from eigenkit import graph as eg

K = eg.LaplacianKind
KINDS = {"comb": K.COMBINATORIAL, "sym": K.SYM_NORM, "rw": K.RANDOM_WALK}

# multigraph with a self-loop, a double edge, a single-direction edge and an isolated node (node 4 of graph 0)
G0 = (5, [(0, 1), (1, 0), (1, 2), (1, 2), (2, 1), (2, 2), (3, 0)])
G1 = (3, [(0, 1), (1, 0), (1, 2), (2, 1), (0, 0)])
G_EMPTY = (0, [])


adjacency = jax.jit(
    eg.dense_adjacency, static_argnums=1, static_argnames=("symmetrize", "keep_self_loops", "dtype")
)


def _weights(rng, specs):
    return [rng.uniform(0.5, 2.0, size=len(e)) for _, e in specs]


@pytest.mark.parametrize("keep_self_loops, symmetrize", [(False, True), (True, False)])
def test_dense_adjacency_vs_reference(dtype, rng, keep_self_loops, symmetrize):
    specs = [G0, G_EMPTY, G1]
    ws = _weights(rng, specs)
    g = batch(specs)
    w = np.concatenate(ws).astype(dtype)
    adj, mask = adjacency(g, 6, edge_weight=w, symmetrize=symmetrize, keep_self_loops=keep_self_loops)
    assert adj.shape == (3, 6, 6) and adj.dtype == dtype and mask.dtype == jnp.bool_
    for i, ((n, e), wi) in enumerate(zip(specs, ws)):
        ref = np.zeros((6, 6))
        ref[:n, :n] = ref_adj(n, e, wi.astype(dtype), keep_self_loops=keep_self_loops, symmetrize=symmetrize)
        np.testing.assert_allclose(adj[i], ref, rtol=1e-6)
        np.testing.assert_array_equal(mask[i], np.arange(6) < n)


def test_dense_adjacency_conventions():
    # multi-edges summed, self-loops dropped by default, single-direction edges symmetrised (max), dtype f32
    adj, _ = adjacency(batch([G0]), 5)
    a = np.asarray(adj[0])
    assert adj.dtype == jnp.float32
    assert a[1, 2] == a[2, 1] == 2.0 and a[2, 2] == 0.0 and a[0, 3] == a[3, 0] == 1.0 and a[0, 1] == 1.0
    assert not a[4].any()
    a_loops, _ = adjacency(batch([G0]), 5, keep_self_loops=True, dtype=jnp.float64)
    assert a_loops.dtype == jnp.float64 and float(a_loops[0, 2, 2]) == 1.0
    # an undirected graph given with one direction per edge == both directions
    one_dir, _ = adjacency(batch([(4, [(0, 1), (1, 2), (3, 2)])]), 4)
    both, _ = adjacency(batch([(4, [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)])]), 4)
    np.testing.assert_array_equal(one_dir, both)


def test_dense_adjacency_jit_vmap(rng):
    g = batch([G0, G1])
    ws = rng.uniform(0.5, 2.0, size=(3, 12))
    f = jax.jit(lambda w: eg.dense_adjacency(g, 5, edge_weight=w)[0])
    batched = jax.vmap(f)(ws)
    for b in range(3):
        np.testing.assert_allclose(batched[b], f(ws[b]), rtol=1e-12)
    # linear in the weights: gradient check
    r = rng.normal(size=(2, 5, 5))
    check_grads(lambda w: jnp.sum(f(w) * r), (ws[0],), order=1, modes=["rev"])


def test_dense_adjacency_padding_graph():
    g = batch([G1, (2, [(0, 1), (1, 0)])])
    gp = eg.pad_graphs_to(g, n_node=12, n_edge=20, n_graph=4)
    gmask = eg.real_graph_mask(gp)
    adj, mask = adjacency(gp, 3, graph_mask=gmask)
    ref, ref_mask = adjacency(g, 3)
    np.testing.assert_array_equal(adj[:2], ref)
    np.testing.assert_array_equal(mask[:2], ref_mask)
    assert not np.asarray(adj[2:]).any() and not np.asarray(mask[2:]).any()
    with pytest.raises(ValueError, match="graph 2 with 7 nodes exceeds max_nodes=3"):
        eg.dense_adjacency(gp, 3)


def test_dense_adjacency_bad_inputs():
    g = batch([G0, G1])
    with pytest.raises(ValueError, match=r"edge 0 joins node 0 \(graph 0\) and node 6 \(graph 1\)"):
        eg.dense_adjacency(g._replace(receivers=np.concatenate([[6], g.receivers[1:]]).astype(np.int32)), 5)
    with pytest.raises(ValueError, match=r"graphs.senders\[1\] = 9 is out of range for N_total=8"):
        eg.dense_adjacency(g._replace(senders=np.concatenate([[0, 9], g.senders[2:]]).astype(np.int32)), 5)
    with pytest.raises(ValueError, match="edge_weight must have shape"):
        eg.dense_adjacency(g, 5, edge_weight=np.ones(3, np.float32))
    with pytest.raises(TypeError, match="edge_weight must have a floating dtype"):
        eg.dense_adjacency(g, 5, edge_weight=np.ones(12, np.int32))
    with pytest.raises(ValueError, match="edge_weight contains 1 NaN/Inf"):
        eg.dense_adjacency(g, 5, edge_weight=np.r_[np.ones(11), np.nan])
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        eg.dense_adjacency(g, 5, dtype=jnp.int32)
    with pytest.raises(ValueError, match="graph 0 with 5 nodes exceeds max_nodes=4"):
        eg.dense_adjacency(g, 4)
    with pytest.raises(ValueError, match="same length"):
        eg.dense_adjacency(g._replace(receivers=g.receivers[:-1]), 5)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_laplacian_vs_reference(kind, dtype, tol, rng):
    n, e = G0
    a = ref_adj(n, e, rng.uniform(0.5, 2.0, size=len(e)), keep_self_loops=True)
    pad = np.zeros((7, 7))
    pad[:n, :n] = a
    pad[n:, :] = pad[:, n:] = rng.uniform(size=(7, 2))[:, :2].sum()  # junk in padded rows/cols must not leak
    pad[n:, n:] = 3.0
    mask = np.arange(7) < n
    lap = eg.laplacian(pad.astype(dtype), mask, KINDS[kind])
    assert lap.dtype == dtype
    ref = np.zeros((7, 7))
    ref[:n, :n] = ref_lap(a, kind)
    np.testing.assert_allclose(lap, ref, rtol=tol[0], atol=tol[1])


def test_laplacian_vs_networkx():
    g = nx.disjoint_union(nx.petersen_graph(), nx.path_graph(3))
    g.add_node(13)  # isolated
    n, e = nx_edges(g)
    adj, mask = adjacency(batch([(n, e)]), 14, dtype=jnp.float64)
    comb = eg.laplacian(adj[0], mask[0], K.COMBINATORIAL)
    np.testing.assert_allclose(comb, nx.laplacian_matrix(g, nodelist=range(n)).toarray(), atol=1e-12)
    # networkx / Chung: isolated nodes have L_ii = 0; eigenkit default (torch_geometric / SPE) is 1
    sym0 = eg.laplacian(adj[0], mask[0], K.SYM_NORM, isolated_value=0.0)
    np.testing.assert_allclose(sym0, nx.normalized_laplacian_matrix(g, nodelist=range(n)).toarray(), atol=1e-12)
    sym1 = eg.laplacian(adj[0], mask[0], K.SYM_NORM)
    assert float(sym1[13, 13]) == 1.0 and float(sym0[13, 13]) == 0.0


def test_random_walk_similar_to_sym(rng):
    n, e = nx_edges(nx.gnm_random_graph(8, 14, seed=1))
    a = ref_adj(n, e)
    mask = np.ones(n, bool)
    rw = np.asarray(eg.laplacian(a, mask, K.RANDOM_WALK))
    sym = np.asarray(eg.laplacian(a, mask, K.SYM_NORM))
    d = a.sum(1)
    np.testing.assert_allclose(rw, np.diag(d**-0.5) @ sym @ np.diag(d**0.5), atol=1e-12)
    np.testing.assert_allclose(rw.sum(1)[d > 0], 0.0, atol=1e-12)


def test_laplacian_vmap_jit_grad(rng):
    a = rng.uniform(0.1, 1.0, size=(3, 5, 5))
    a = a + np.swapaxes(a, 1, 2)
    a[2, 4, :] = a[2, :, 4] = 0.0  # an isolated node: gradient must stay finite
    mask = np.ones((3, 5), bool)
    mask[1, 3:] = False
    r = rng.normal(size=(5, 5))
    for kind in KINDS.values():
        f = jax.jit(lambda x, m, kind=kind: eg.laplacian(x, m, kind))
        batched = jax.jit(jax.vmap(f))(a, mask)
        for b in range(3):
            np.testing.assert_allclose(batched[b], f(a[b], mask[b]), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(f(a, mask), batched, rtol=1e-12, atol=1e-14)  # batch-polymorphic

        def loss(x, m, f=f):
            return jnp.sum(f(x, m) * r)

        check_grads(jax.jit(lambda x, loss=loss: loss(x, mask[0])), (a[0],), order=1, modes=["fwd", "rev"])
        grad = jax.jit(jax.grad(loss))(a[2], mask[2])  # isolated node: the d = 0 branch must not give NaN
        assert np.isfinite(np.asarray(grad)).all()


def test_laplacian_bad_inputs():
    a = np.zeros((4, 4), np.float32)
    m = np.ones(4, bool)
    with pytest.raises(TypeError, match="kind must be a LaplacianKind"):
        eg.laplacian(a, m, "sym")
    with pytest.raises(ValueError, match="adj must be square"):
        eg.laplacian(np.zeros((4, 3), np.float32), m)
    with pytest.raises(ValueError, match="mask must have"):
        eg.laplacian(a, np.ones(3, bool))
    with pytest.raises(TypeError, match="mask must have a bool dtype"):
        eg.laplacian(a, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="adj must have a floating dtype"):
        eg.laplacian(np.zeros((4, 4), np.int32), m)
    # negative degree: documented NaN propagation for the normalised kinds
    neg = np.array([[0.0, -1.0], [-1.0, 0.0]])
    assert np.isnan(np.asarray(eg.laplacian(neg, np.ones(2, bool)))).any()
