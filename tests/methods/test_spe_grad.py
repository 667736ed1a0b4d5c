"""Issue 11: SPE's exact-gradient path — d(scalar of the PE)/d(edge weights) on benzene-like rings equals float64
central differences (eval and train mode), where the gradient through precomputed eigenvectors is NaN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit import graph as eg
from eigenkit.methods.spe import SPE

N = 6
RING = (np.arange(N), (np.arange(N) + 1) % N)  # edge e joins atoms e and e+1 (mod 6)


def _adj(w):
    a = jnp.zeros((N, N), w.dtype).at[RING].set(w)
    return (a + a.T)[None]


def _scalar(pe):
    return jnp.sum(pe * jnp.arange(1.0, pe.shape[-1] + 1, dtype=pe.dtype)) + jnp.sum(pe[0, 0] ** 2)


def _model(dtype):
    return SPE(n_phi=3, pe_dims=4, rho_layers=2, rho_hidden=8, param_dtype=dtype, rngs=nnx.Rngs(0))


def _loss(m, w):
    return _scalar(m.from_adjacency(_adj(w), jnp.ones((1, N), bool), N))


@pytest.mark.parametrize("weights", ["benzene", "kekule"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_pe_edge_weight_gradient_equals_finite_differences(weights, train):
    w = jnp.ones(N) if weights == "benzene" else jnp.asarray([1.5, 1.0] * 3)  # both have repeated eigenvalues
    spe = _model(jnp.float64)
    if not train:
        spe.eval()
    g = nnx.jit(nnx.grad(_loss, argnums=1))(nnx.clone(spe), w)
    graphdef, state = nnx.split(spe)
    f = jax.jit(lambda w: _loss(nnx.merge(graphdef, state, copy=True), w))  # fresh copy: BN stats never leak
    h = 1e-6
    fd = np.array([(f(w.at[e].add(h)) - f(w.at[e].add(-h))) / (2 * h) for e in range(N)])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.slow
def test_value_equals_precomputed_path_whose_gradient_is_nan():
    spe = _model(jnp.float64)
    spe.eval()
    w = jnp.ones(N)
    mask = jnp.ones((1, N), bool)

    def via_eigs(w):
        spec = eg.dense_laplacian_eigs(_adj(w), mask, N)
        return _scalar(spe(spec.eigvals, spec.eigvecs, spec.eig_mask, mask, _adj(w)))

    np.testing.assert_allclose(_loss(spe, w), via_eigs(w), rtol=1e-12)
    assert np.all(np.isnan(jax.grad(via_eigs)(w)))  # honest: eigenvectors of a repeated eigenvalue
    assert np.all(np.isfinite(jax.grad(lambda w: _loss(spe, w))(w)))


@pytest.mark.slow
def test_float32_gradient_close_to_float64():
    w = jnp.asarray([1.5, 1.0] * 3)
    spe64, spe32 = _model(jnp.float64), _model(jnp.float32)
    spe64.eval()
    spe32.eval()
    nnx.update(spe32, jax.tree.map(lambda x: x.astype(jnp.float32), nnx.state(spe64)))  # same weights
    g64 = jax.grad(lambda w: _loss(spe64, w))(w)
    g32 = jax.grad(lambda w: _loss(spe32, w))(w.astype(jnp.float32))
    assert g32.dtype == jnp.float32
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-3 * float(jnp.max(jnp.abs(g64))))
