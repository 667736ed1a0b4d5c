"""eigenkit.graph.laplacian_eigs / dense_laplacian_eigs vs float64 NumPy eigh (eigenvalues + eigen-projectors)."""

import functools

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from _graph_refs import TOLS, assert_same_eigenspaces, batch, nx_edges, ref_adj, ref_lap
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from eigenkit import graph as eg

K = eg.LaplacianKind
MAXN = 10
# every test batch is padded to the same totals, so one compilation per (dtype, static args) serves all tests
BUDGET = dict(n_node=48, n_edge=120, n_graph=7)


@functools.partial(jax.jit, static_argnames=("k", "kind", "isolated_value", "keep_self_loops", "dtype"))
def eigs(graphs, gmask, *, k=None, kind=K.SYM_NORM, isolated_value=1.0, keep_self_loops=False, dtype=None):
    return eg.laplacian_eigs(
        graphs, MAXN, k, kind, graph_mask=gmask, isolated_value=isolated_value,
        keep_self_loops=keep_self_loops, dtype=dtype,
    )


def padded(specs):
    g = eg.pad_graphs_to(batch(specs), **BUDGET, max_nodes=MAXN)
    return g, eg.real_graph_mask(g)


def _check_layout(spec, sizes, k):
    """Masks, zeroed padded pairs/rows and orthonormality on the real nodes."""
    w, v, nm, em = (np.asarray(x) for x in spec)
    for i, n in enumerate(sizes):
        np.testing.assert_array_equal(nm[i], np.arange(MAXN) < n)
        np.testing.assert_array_equal(em[i], np.arange(k) < n)
        assert (w[i, n:] == 0).all() and (v[i, n:, :] == 0).all() and (v[i, :, n:] == 0).all()
    assert not nm[len(sizes):].any() and not em[len(sizes):].any() and not v[len(sizes):].any()


def _ref_eigh(n, edges, kind, **kw):
    lap = ref_lap(ref_adj(n, edges, keep_self_loops=kw.pop("keep_self_loops", False)), kind, **kw)
    return np.linalg.eigh(lap) if n else (np.zeros(0), np.zeros((0, 0)))


SYMMETRIC = {  # graphs with repeated Laplacian eigenvalues
    "cycle7": nx.cycle_graph(7),
    "complete5": nx.complete_graph(5),
    "hypercube3": nx.hypercube_graph(3),
    "petersen": nx.petersen_graph(),
}


@pytest.mark.parametrize("kind", [K.COMBINATORIAL, K.SYM_NORM])
def test_symmetric_graphs_vs_numpy(kind, dtype):
    specs = [nx_edges(g) for g in SYMMETRIC.values()]
    g, gm = padded(specs)
    spec = eigs(g, gm, kind=kind, dtype=dtype)
    assert spec.eigvals.dtype == dtype and spec.eigvecs.dtype == dtype
    assert spec.eigvals.shape == (7, MAXN) and spec.eigvecs.shape == (7, MAXN, MAXN)
    _check_layout(spec, [n for n, _ in specs], MAXN)
    cl, atol = TOLS[dtype]
    rk = "comb" if kind is K.COMBINATORIAL else "sym"
    for i, (n, e) in enumerate(specs):
        w_ref, v_ref = _ref_eigh(n, e, rk)
        v = np.asarray(spec.eigvecs[i, :n, :n], np.float64)
        assert_same_eigenspaces(w_ref, v_ref, spec.eigvals[i, :n], v, cluster_tol=cl, atol=atol)
        np.testing.assert_allclose(v.T @ v, np.eye(n), atol=10 * atol)
    if kind is K.COMBINATORIAL:  # analytic spectra
        w = np.asarray(spec.eigvals, np.float64)
        np.testing.assert_allclose(w[0, :7], np.sort(2 - 2 * np.cos(2 * np.pi * np.arange(7) / 7)), atol=atol)
        np.testing.assert_allclose(w[1, :5], [0, 5, 5, 5, 5], atol=atol)
        np.testing.assert_allclose(w[2, :8], [0, 2, 2, 2, 4, 4, 4, 6], atol=atol)
        np.testing.assert_allclose(w[3, :10], [0] + [2] * 5 + [5] * 4, atol=atol)


def test_random_walk_eigenpairs(dtype):
    specs = [nx_edges(nx.gnm_random_graph(9, 16, seed=3)), nx_edges(SYMMETRIC["cycle7"]), (3, [(0, 1), (1, 0)])]
    g, gm = padded(specs)
    rw = eigs(g, gm, kind=K.RANDOM_WALK, dtype=dtype)
    sym = eigs(g, gm, kind=K.SYM_NORM, dtype=dtype)
    np.testing.assert_array_equal(rw.eigvals, sym.eigvals)  # same spectrum by construction
    _check_layout(rw, [n for n, _ in specs], MAXN)
    atol = TOLS[dtype][1]
    for i, (n, e) in enumerate(specs):
        lap_rw = ref_lap(ref_adj(n, e), "rw")
        v = np.asarray(rw.eigvecs[i, :n, :n], np.float64)
        w = np.asarray(rw.eigvals[i, :n], np.float64)
        np.testing.assert_allclose(lap_rw @ v, v * w, atol=10 * atol)  # right eigenvectors of I - D^-1 A
        np.testing.assert_allclose(np.linalg.norm(v, axis=0), 1.0, atol=atol)
        np.testing.assert_allclose(w, np.linalg.eigvalsh(ref_lap(ref_adj(n, e), "sym")), atol=atol)


DEGENERATE = [
    (8, [(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2), (3, 4), (4, 3), (5, 6), (6, 5)]),  # 3 comps + isolated 7
    (3, []),  # three isolated nodes
    (1, []),  # single node
    (0, []),  # empty graph
    (5, [(0, 1), (1, 0), (1, 2), (1, 2), (2, 1), (2, 2), (3, 0), (3, 3)]),  # multi-edges, self-loops, isolated 4
]


@pytest.mark.parametrize(
    "kind, isolated_value, keep_self_loops",
    [(K.COMBINATORIAL, 1.0, False), (K.SYM_NORM, 1.0, False), (K.SYM_NORM, 0.0, True)],
)
def test_degenerate_graphs(kind, isolated_value, keep_self_loops, dtype):
    g, gm = padded(DEGENERATE)
    spec = eigs(g, gm, kind=kind, isolated_value=isolated_value, keep_self_loops=keep_self_loops, dtype=dtype)
    _check_layout(spec, [n for n, _ in DEGENERATE], MAXN)
    assert np.isfinite(np.asarray(spec.eigvals)).all() and np.isfinite(np.asarray(spec.eigvecs)).all()
    cl, atol = TOLS[dtype]
    rk = "comb" if kind is K.COMBINATORIAL else "sym"
    for i, (n, e) in enumerate(DEGENERATE):
        w_ref, v_ref = _ref_eigh(n, e, rk, isolated_value=isolated_value, keep_self_loops=keep_self_loops)
        assert_same_eigenspaces(w_ref, v_ref, spec.eigvals[i, :n], spec.eigvecs[i, :n, :n], cluster_tol=cl, atol=atol)
    w = np.asarray(spec.eigvals, np.float64)
    zeros = [int(np.sum(np.abs(w[i, :n]) < 1e-4)) for i, (n, _) in enumerate(DEGENERATE)]
    if kind is K.COMBINATORIAL or isolated_value == 0.0:
        assert zeros[:4] == [4, 3, 1, 0]  # multiplicity of 0 = number of components (isolated nodes included)
    else:  # torch_geometric / SPE convention: an isolated node has L_ii = 1, eigenvalue 1
        assert zeros[:4] == [3, 0, 0, 0]
        np.testing.assert_allclose(w[1, :3], 1.0, atol=atol)
        np.testing.assert_allclose(w[2, :1], 1.0, atol=atol)


def test_padding_invariance_and_k():
    n, e = nx_edges(nx.gnm_random_graph(9, 14, seed=5))
    alone_fn = jax.jit(eg.laplacian_eigs, static_argnums=1, static_argnames="dtype")
    alone = alone_fn(batch([(n, e)]), n, dtype=jnp.float64)  # exactly n slots: no padding at all
    g, gm = padded([(4, [(0, 1), (1, 0)]), (n, e), (2, [])])
    inside = eigs(g, gm, dtype=jnp.float64)
    cl, atol = TOLS[np.float64]
    assert_same_eigenspaces(alone.eigvals[0], alone.eigvecs[0], inside.eigvals[1, :n], inside.eigvecs[1, :n, :n],
                            cluster_tol=cl, atol=atol)
    flat = eg.from_padded(inside.eigvecs, g)  # eigenvectors as node features [N_total, k]
    assert flat.shape == (BUDGET["n_node"], MAXN)
    np.testing.assert_array_equal(flat[4 : 4 + n], inside.eigvecs[1, :n])
    top4 = eigs(g, gm, k=4, dtype=jnp.float64)
    assert top4.eigvals.shape == (7, 4) and top4.eigvecs.shape == (7, MAXN, 4)
    np.testing.assert_allclose(top4.eigvals, inside.eigvals[:, :4], atol=1e-12)
    np.testing.assert_array_equal(top4.eig_mask[2], [True, True, False, False])


def test_permutation_equivariance(rng):
    n, e = nx_edges(nx.gnm_random_graph(10, 18, seed=7))
    perm = rng.permutation(n)  # new node perm[i] = old node i
    e_perm = [(int(perm[s]), int(perm[r])) for s, r in e]
    g, gm = padded([(n, e), (n, e_perm)])
    spec = eigs(g, gm, dtype=jnp.float64)
    v0, v1 = np.asarray(spec.eigvecs[0]), np.asarray(spec.eigvecs[1])
    pm = np.eye(n)[perm].T  # (pm @ x)[perm[i]] = x[i]
    cl, atol = TOLS[np.float64]
    assert_same_eigenspaces(spec.eigvals[0], pm @ v0, spec.eigvals[1], v1, cluster_tol=cl, atol=atol)


def test_jit_vmap_over_weights_and_grad(rng):
    n, e = nx_edges(nx.gnm_random_graph(7, 11, seed=2))
    g = batch([(n, e)])
    w = rng.uniform(0.5, 2.0, size=(3, len(e)))
    w = (w + w[:, [e.index((r, s)) for s, r in e]]) / 2  # symmetric weights (max-symmetrisation then exact)

    def f(wt):
        return eg.laplacian_eigs(g, 8, 6, K.SYM_NORM, edge_weight=wt)

    batched = jax.jit(jax.vmap(f))(w)
    f = jax.jit(f)
    for b in range(3):
        one = f(w[b])
        np.testing.assert_allclose(batched.eigvals[b], one.eigvals, atol=1e-12)
        lam = np.asarray(one.eigvals[0, :6])
        assert np.min(np.diff(lam)) > 1e-3  # simple spectrum, so vectors are defined up to sign
        s = np.sign(np.sum(np.asarray(batched.eigvecs[b]) * np.asarray(one.eigvecs), axis=-2))
        np.testing.assert_allclose(batched.eigvecs[b] * s[:, None, :], one.eigvecs, atol=1e-10)

    @jax.jit
    def lam_max(wt):  # largest of the 6 returned eigenvalues: simple, so differentiable
        return f(wt).eigvals[0, 5]

    check_grads(lam_max, (w[0],), order=1, modes=["fwd", "rev"], eps=1e-6)
    # eigenvector gradients stay finite: padded diagonal entries are distinct, the real spectrum is simple
    gv = jax.grad(lambda wt: jnp.sum(f(wt).eigvecs[0, :, 1] ** 3))(w[0])
    assert np.isfinite(np.asarray(gv)).all()


def test_dense_laplacian_eigs_batch_polymorphic(rng):
    specs = [nx_edges(nx.gnm_random_graph(6, 8, seed=s)) for s in range(4)]
    adj = np.zeros((4, 7, 7))
    mask = np.zeros((4, 7), bool)
    for i, (n, e) in enumerate(specs):
        adj[i, :n, :n] = ref_adj(n, e)
        mask[i, :n] = True
    flat = jax.jit(eg.dense_laplacian_eigs, static_argnums=(2, 3))(adj, mask, 5, K.COMBINATORIAL)
    nested = jax.jit(functools.partial(eg.dense_laplacian_eigs, k=5, kind=K.COMBINATORIAL, pad_value=100.0))(
        adj.reshape(2, 2, 7, 7), mask.reshape(2, 2, 7)
    )
    np.testing.assert_allclose(nested.eigvals.reshape(4, 5), flat.eigvals, atol=1e-12)
    vm = jax.jit(jax.vmap(lambda a, m: eg.dense_laplacian_eigs(a, m, 5, K.COMBINATORIAL)))(adj, mask)
    np.testing.assert_allclose(vm.eigvals, flat.eigvals, atol=1e-12)
    for i, (n, e) in enumerate(specs):
        np.testing.assert_allclose(flat.eigvals[i], np.linalg.eigvalsh(ref_lap(ref_adj(n, e), "comb"))[:5],
                                   atol=1e-12)


def test_nan_eager_error_jit_propagates():
    adj = np.array([[0.0, np.nan], [np.nan, 0.0]])
    with pytest.raises(ValueError, match="adj contains 2 NaN/Inf"):
        eg.dense_laplacian_eigs(adj, np.ones(2, bool))
    spec = jax.jit(eg.dense_laplacian_eigs)(adj, np.ones(2, bool))  # documented: NaN propagates under jit
    assert np.isnan(np.asarray(spec.eigvals)).any()


def test_bad_inputs():
    g = batch([(3, [(0, 1), (1, 0)])])
    with pytest.raises(ValueError, match="k must satisfy 1 <= k <= max_nodes = 4, got k = 5"):
        eg.laplacian_eigs(g, 4, 5)
    with pytest.raises(ValueError, match="k must satisfy"):
        eg.laplacian_eigs(g, 4, 0)
    with pytest.raises(TypeError, match="k must be a Python int"):
        eg.laplacian_eigs(g, 4, 2.0)
    with pytest.raises(TypeError, match="kind must be a LaplacianKind"):
        eg.laplacian_eigs(g, 4, 2, "sym")
    with pytest.raises(ValueError, match="graph 0 with 3 nodes exceeds max_nodes=2"):
        eg.laplacian_eigs(g, 2)
    directed, m = eg.dense_adjacency(g, 4, symmetrize=False)
    directed = directed.at[0, 2, 0].set(1.0)
    with pytest.raises(ValueError, match="adj must be symmetric"):
        eg.dense_laplacian_eigs(directed, m)
    with pytest.raises(ValueError, match="adj must be square"):
        eg.dense_laplacian_eigs(np.zeros((3, 4)), np.ones(3, bool))


@st.composite
def _random_batches(draw):
    """1-5 random multigraphs (0-10 nodes, self-loops, multi-edges, one-direction edges) fitting BUDGET."""
    specs = []
    for _ in range(draw(st.integers(1, 5))):
        n = draw(st.integers(0, MAXN))
        node = st.integers(0, max(n - 1, 0))
        edges = draw(st.lists(st.tuples(node, node), max_size=20 if n else 0))
        specs.append((n, edges))
    return specs


@settings(max_examples=15, deadline=None, derandomize=True)
@given(_random_batches())
def test_random_multigraphs_vs_numpy(specs):
    g, gm = padded(specs)  # same padded shapes as the other tests: no recompilation
    spec = eigs(g, gm, dtype=jnp.float64)
    _check_layout(spec, [n for n, _ in specs], MAXN)
    cl, _ = TOLS[np.float64]
    for i, (n, e) in enumerate(specs):
        w_ref, v_ref = _ref_eigh(n, e, "sym")
        assert_same_eigenspaces(w_ref, v_ref, spec.eigvals[i, :n], spec.eigvecs[i, :n, :n], cluster_tol=cl,
                                atol=1e-7)


def test_sharded_batch_matches_single_device():
    """Rule 8: the dense batch sharded over an 8-device "data" mesh gives the same spectra as one device."""
    specs = [nx_edges(nx.gnm_random_graph(6, 7, seed=s)) for s in range(8)]
    adj = np.zeros((8, 7, 7))
    mask = np.zeros((8, 7), bool)
    for i, (n, e) in enumerate(specs):
        adj[i, :n, :n] = ref_adj(n, e)
        mask[i, :n] = True
    fn = jax.jit(functools.partial(eg.dense_laplacian_eigs, k=5, kind=K.COMBINATORIAL))
    single = fn(adj, mask)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    sharded = fn(jax.device_put(adj, sharding), jax.device_put(mask, sharding))
    assert len(sharded.eigvals.sharding.device_set) == jax.device_count()
    np.testing.assert_allclose(sharded.eigvals, single.eigvals, atol=1e-12)
    w, v = np.asarray(single.eigvals), np.asarray(single.eigvecs)
    ws, vs = np.asarray(sharded.eigvals), np.asarray(sharded.eigvecs)
    for i in range(8):
        assert_same_eigenspaces(w[i], v[i], ws[i], vs[i], cluster_tol=1e-8, atol=1e-10)
