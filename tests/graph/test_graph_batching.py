"""eigenkit.graph node bookkeeping: graph index/position, to_padded/from_padded, pad_graphs_to, jraph round trips."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest
from _graph_refs import batch
from jax.test_util import check_grads

from eigenkit import graph as eg

SPECS = [(3, [(0, 1), (1, 2)]), (0, []), (4, [(0, 3)]), (1, [])]
padded_jit = jax.jit(eg.to_padded, static_argnums=2)
from_padded_jit = jax.jit(eg.from_padded)


def _ref_index(n_node):
    gidx = np.repeat(np.arange(len(n_node)), n_node)
    pos = np.concatenate([np.arange(n) for n in n_node]) if sum(n_node) else np.zeros(0, int)
    return gidx, pos


def test_node_graph_index_and_position_vs_numpy():
    g = batch(SPECS)
    gidx, pos = _ref_index([3, 0, 4, 1])
    np.testing.assert_array_equal(eg.node_graph_index(g), gidx)
    np.testing.assert_array_equal(eg.node_position(g), pos)
    assert eg.node_graph_index(g).dtype == jnp.int32 and eg.node_position(g).dtype == jnp.int32
    jg = jax.jit(lambda gr: (eg.node_graph_index(gr), eg.node_position(gr)))(g)
    np.testing.assert_array_equal(jg[0], gidx)
    np.testing.assert_array_equal(jg[1], pos)


def test_index_with_no_graphs_and_nodes_none():
    g = batch(SPECS)._replace(nodes=None)
    np.testing.assert_array_equal(eg.node_position(g), _ref_index([3, 0, 4, 1])[1])  # concrete n_node: fine
    with pytest.raises(ValueError, match="total node count"):
        jax.jit(eg.node_graph_index)(g)


@pytest.mark.parametrize("max_nodes", [4, 6])
def test_to_from_padded_round_trip(max_nodes, rng):
    g = batch(SPECS)
    x = rng.normal(size=(8, 2, 3)).astype(np.float32)
    padded, mask = eg.to_padded(x, g, max_nodes)
    assert padded.shape == (4, max_nodes, 2, 3) and padded.dtype == jnp.float32
    np.testing.assert_array_equal(mask, np.arange(max_nodes)[None] < np.array([3, 0, 4, 1])[:, None])
    np.testing.assert_array_equal(np.asarray(padded)[~np.asarray(mask)], 0.0)
    np.testing.assert_array_equal(padded[2, :4], x[3:7])  # graph 2 starts after 3 + 0 nodes
    np.testing.assert_array_equal(eg.from_padded(padded, g), x)  # exact round trip
    # jit with static max_nodes, integer values kept
    xi = np.arange(8, dtype=np.int32)
    p2, m2 = padded_jit(xi, g, max_nodes)
    assert p2.dtype == jnp.int32
    np.testing.assert_array_equal(m2, mask)
    np.testing.assert_array_equal(from_padded_jit(p2, g), xi)
    if max_nodes != 4:
        return
    # both maps are linear (gather / scatter): gradients
    r = rng.normal(size=(4, max_nodes, 2, 3))
    check_grads(lambda v: jnp.sum(padded_jit(v, g, max_nodes)[0] * r), (x.astype(np.float64),), order=1,
                modes=["rev"])
    check_grads(lambda p: jnp.sum(from_padded_jit(p, g) ** 2), (r,), order=1, modes=["rev"])


def test_jraph_batch_unbatch_matches_per_graph_padding(rng):
    g = batch(SPECS)
    padded, mask = padded_jit(g.nodes, g, 5)
    for i, gi in enumerate(jraph.unbatch_np(g)):
        pi, mi = padded_jit(gi.nodes, gi, 5)
        np.testing.assert_array_equal(pi[0], padded[i])
        np.testing.assert_array_equal(mi[0], mask[i])


def test_pad_with_graphs_and_graph_mask():
    g = batch(SPECS)
    gp = eg.pad_graphs_to(g, n_node=20, n_edge=6, n_graph=7, max_nodes=4)  # padding graph holds 12 nodes
    gmask = eg.real_graph_mask(gp)
    np.testing.assert_array_equal(gmask, [True] * 4 + [False] * 3)
    np.testing.assert_array_equal(jax.jit(eg.real_graph_mask)(gp), gmask)
    with pytest.raises(ValueError, match=r"graph 4 with 12 nodes exceeds max_nodes=4 .*real_graph_mask"):
        eg.to_padded(gp.nodes, gp, 4)
    padded, mask = jax.jit(lambda x, gr, gm: eg.to_padded(x, gr, 4, graph_mask=gm))(gp.nodes, gp, gmask)
    assert padded.shape == (7, 4, 2)
    assert not np.asarray(mask[4:]).any() and not np.asarray(padded[4:]).any()
    ref, ref_mask = padded_jit(g.nodes, g, 4)
    np.testing.assert_array_equal(padded[:4], ref)
    np.testing.assert_array_equal(mask[:4], ref_mask)
    back = from_padded_jit(padded, gp)
    np.testing.assert_array_equal(back[:8], g.nodes)
    np.testing.assert_array_equal(back[8:], 0.0)


def test_too_large_graph_eager_error_and_jit_truncation():
    g = batch([(5, []), (2, [])])
    with pytest.raises(ValueError, match="graph 0 with 5 nodes exceeds max_nodes=3"):
        eg.to_padded(g.nodes, g, 3)
    # documented behaviour under jit: nodes at positions >= max_nodes are dropped; from_padded gives them 0
    padded, mask = padded_jit(g.nodes, g, 3)
    np.testing.assert_array_equal(padded[0], g.nodes[:3])
    assert bool(mask[0].all())
    back = from_padded_jit(padded, g)
    np.testing.assert_array_equal(back[3:5], 0.0)
    np.testing.assert_array_equal(back[5:], g.nodes[5:])


def test_pad_graphs_to_errors():
    g = batch(SPECS)
    with pytest.raises(ValueError, match="n_node=8 is too small: the batch has 8 nodes"):
        eg.pad_graphs_to(g, 8, 10, 6)
    with pytest.raises(ValueError, match="n_edge=2 is too small: the batch has 3 edges"):
        eg.pad_graphs_to(g, 10, 2, 6)
    with pytest.raises(ValueError, match="n_graph=4 is too small"):
        eg.pad_graphs_to(g, 10, 10, 4)
    with pytest.raises(ValueError, match="graph 2 with 4 nodes exceeds max_nodes=3"):
        eg.pad_graphs_to(g, 10, 10, 6, max_nodes=3)


def test_bad_inputs():
    g = batch(SPECS)
    with pytest.raises(ValueError, match="N_total=8 rows"):
        eg.to_padded(np.zeros((7, 2), np.float32), g, 4)
    with pytest.raises(ValueError, match="max_nodes must satisfy"):
        eg.to_padded(g.nodes, g, 0)
    with pytest.raises(TypeError, match="max_nodes must be a Python int"):
        eg.to_padded(g.nodes, g, 4.0)
    with pytest.raises(ValueError, match="G=4 graphs"):
        eg.from_padded(np.zeros((3, 4), np.float32), g)
    with pytest.raises(TypeError, match="graphs.n_node must have an integer dtype"):
        eg.node_graph_index(g._replace(n_node=np.array([3.0, 0, 4, 1])))
    with pytest.raises(ValueError, match="graph_mask must have shape"):
        eg.to_padded(g.nodes, g, 4, graph_mask=np.ones(3, bool))
