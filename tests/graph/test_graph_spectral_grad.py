"""Issue 11: gradients of graph spectra w.r.t. edge weights on graphs with repeated eigenvalues.

* ``laplacian_eigs`` eigenvector gradients: exact on simple spectra, NaN in every entry of a degenerate graph's
  gradient (cycles, complete graphs, hypercubes; alone and inside a batch) — never finite and wrong.
* ``laplacian_spectral_tensor``: ``V diag(φ(λ)) Vᵀ`` with gradients equal to float64 central differences on any
  spectrum, float32 and float64.
"""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from eigenkit import graph as eg

MAXN = 8


def _cycle(n):
    return [(i, (i + 1) % n) for i in range(n)], n


def _complete(n):
    return [(i, j) for i in range(n) for j in range(i + 1, n)], n


def _hypercube(d):
    n = 2**d
    return [(i, i ^ (1 << b)) for i in range(n) for b in range(d) if i < i ^ (1 << b)], n


def _path(n):
    return [(i, i + 1) for i in range(n - 1)], n


def _batch(graphs):
    """Undirected edge e is stored as directed edges 2e, 2e+1 (both directions)."""
    s, r, nn, ne, off = [], [], [], [], 0
    for edges, n in graphs:
        for a, b in edges:
            s += [a + off, b + off]
            r += [b + off, a + off]
        nn.append(n)
        ne.append(2 * len(edges))
        off += n
    return jraph.GraphsTuple(nodes=jnp.zeros((off, 1)), edges=None, senders=jnp.array(s), receivers=jnp.array(r),
                             n_node=jnp.array(nn), n_edge=jnp.array(ne), globals=None)


CASES = {
    "cycle6": [_cycle(6)],
    "complete4": [_complete(4)],
    "hypercube3": [_hypercube(3)],
    "batch_cycle_complete_hypercube": [_cycle(6), _complete(4), _hypercube(3), _cycle(5)],
}
C = np.random.default_rng(0).standard_normal((MAXN, MAXN))
C = C + C.T


def _np_phi(lam):
    return np.tanh(1.5 * lam - 0.5)


def _np_loss(graphs, w):
    """Independent NumPy reference: Σ_g Σ C ∘ (V diag(φ(λ)) Vᵀ) of each graph's SYM_NORM Laplacian."""
    total, e0 = 0.0, 0
    for edges, n in graphs:
        a = np.zeros((n, n))
        for k, (i, j) in enumerate(edges):
            a[i, j] = a[j, i] = w[e0 + k]
        e0 += len(edges)
        dis = 1 / np.sqrt(a.sum(1))
        lam, v = np.linalg.eigh(np.eye(n) - dis[:, None] * a * dis[None])
        total += np.sum(C[:n, :n] * ((v * _np_phi(lam)) @ v.T))
    return total


def _np_fd(graphs, w, h=1e-5):
    g = np.zeros_like(w)
    for e in range(len(w)):
        wp, wm = w.copy(), w.copy()
        wp[e] += h
        wm[e] -= h
        g[e] = (_np_loss(graphs, wp) - _np_loss(graphs, wm)) / (2 * h)
    return g


def _loss_eigs(w, gt, dt):
    spec = eg.laplacian_eigs(gt, MAXN, MAXN, edge_weight=jnp.repeat(w, 2), dtype=dt)
    z = jnp.tanh(1.5 * spec.eigvals - 0.5) * spec.eig_mask.astype(dt)
    return jnp.sum(jnp.asarray(C, dt) * jnp.einsum("gid,gjd,gd->gij", spec.eigvecs, spec.eigvecs, z))


def _loss_exact(w, gt, dt):
    tensor = eg.laplacian_spectral_tensor(gt, MAXN, lambda lam, m: jnp.tanh(1.5 * lam - 0.5), MAXN,
                                          edge_weight=jnp.repeat(w, 2), dtype=dt)
    return jnp.sum(jnp.asarray(C, dt) * tensor)


def _weights(graphs, seed=0):
    n_edges = sum(len(e) for e, _ in graphs)
    return 1.0 + 0.0 * np.random.default_rng(seed).random(n_edges)  # unit weights: the symmetric (degenerate) point


@pytest.mark.parametrize("name", list(CASES))
def test_spectral_tensor_edge_weight_gradient_equals_finite_differences(name, dtype):
    graphs = CASES[name]
    gt = _batch(graphs)
    w = _weights(graphs)
    ref = _np_fd(graphs, w)
    g = jax.jit(jax.grad(_loss_exact), static_argnums=2)(jnp.asarray(w, dtype), gt, dtype)
    assert g.dtype == dtype
    rel = np.linalg.norm(np.asarray(g, np.float64) - ref) / np.linalg.norm(ref)
    assert rel < (2e-5 if dtype == np.float32 else 1e-8), rel


def test_spectral_tensor_benzene_like_kekule_ring(dtype):
    """Alternating weights 1.5 / 1.0 around a 6-ring keep D3 symmetry (doubly degenerate eigenvalues)."""
    graphs = [_cycle(6)]
    w = np.array([1.5, 1.0] * 3)
    ref = _np_fd(graphs, w)
    g = jax.jit(jax.grad(_loss_exact), static_argnums=2)(jnp.asarray(w, dtype), _batch(graphs), dtype)
    rel = np.linalg.norm(np.asarray(g, np.float64) - ref) / np.linalg.norm(ref)
    assert rel < (2e-5 if dtype == np.float32 else 1e-8), rel


def test_spectral_tensor_value_equals_eigs_contraction(dtype):
    gt = _batch(CASES["batch_cycle_complete_hypercube"])
    spec = eg.laplacian_eigs(gt, MAXN, 5, dtype=dtype)
    z = jnp.exp(-spec.eigvals)[..., None] * jnp.asarray([1.0, 2.0], dtype) * spec.eig_mask[..., None].astype(dtype)
    ref = jnp.einsum("gid,gjd,gdl->gijl", spec.eigvecs, spec.eigvecs, z)
    out = eg.laplacian_spectral_tensor(gt, MAXN, lambda lam, m: jnp.exp(-lam)[..., None] * jnp.asarray([1.0, 2.0],
                                       lam.dtype), 5, dtype=dtype)
    assert out.shape == (4, MAXN, MAXN, 2) and out.dtype == dtype
    np.testing.assert_allclose(out, ref, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_eigenvector_gradients_nan_everywhere_on_repeated_eigenvalues(name, dtype):
    """Documented behaviour of laplacian_eigs: NaN in every entry of a degenerate graph's gradient (was finite and
    15–150% off, or NaN, depending on rounding and batching)."""
    gt = _batch(CASES[name])
    w = jnp.ones(int(sum(gt.n_edge)) // 2, dtype)
    g = jax.jit(jax.grad(_loss_eigs), static_argnums=2)(w, gt, dtype)
    assert np.all(np.isnan(g))
    # eigenvalue gradients stay finite and exact
    gl = jax.grad(lambda u: jnp.sum(jnp.sin(eg.laplacian_eigs(gt, MAXN, edge_weight=jnp.repeat(u, 2),
                                                              dtype=dtype).eigvals)))(w)
    assert np.all(np.isfinite(gl))


def test_eigenvector_gradients_exact_for_simple_graphs_in_a_degenerate_batch(dtype):
    """Only the degenerate graphs' entries are NaN; a path graph (simple spectrum) in the same batch is exact."""
    graphs = [_path(5), _complete(4), _cycle(6)]
    gt = _batch(graphs)
    w = np.ones(sum(len(e) for e, _ in graphs))
    g = np.asarray(jax.jit(jax.grad(_loss_eigs), static_argnums=2)(jnp.asarray(w, dtype), gt, dtype), np.float64)
    n_path = len(graphs[0][0])
    assert np.all(np.isnan(g[n_path:]))
    ref = _np_fd(graphs[:1], w[:n_path])
    np.testing.assert_allclose(g[:n_path], ref, rtol=1e-3 if dtype == np.float32 else 1e-7, atol=1e-6)


def test_spectral_tensor_bad_inputs():
    adj = jnp.ones((3, 3)) - jnp.eye(3)
    mask = jnp.ones(3, bool)
    with pytest.raises(ValueError, match="RANDOM_WALK"):
        eg.dense_laplacian_spectral_tensor(adj, mask, lambda lam, m: lam, kind=eg.LaplacianKind.RANDOM_WALK)
    with pytest.raises(TypeError, match="phi must be a callable"):
        eg.dense_laplacian_spectral_tensor(adj, mask, jnp.ones(3))
    with pytest.raises(ValueError, match=r"must return shape \(\.\.\., k\)"):
        eg.dense_laplacian_spectral_tensor(adj, mask, lambda lam, m: jnp.ones(5), 2)
    with pytest.raises(ValueError, match="non-negative"):
        eg.dense_laplacian_eigs(adj.at[0, 1].set(-1.0).at[1, 0].set(-1.0), mask)
