"""Issue 11: clear errors that name the argument (one test each), instead of NaN, garbage or a cryptic trace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit import linalg as la
from eigenkit import manifolds as mf
from eigenkit._validate import _shape_str, check_array


@pytest.mark.parametrize("eta", [0.0, -0.5])
def test_sinkhorn_eta_must_be_positive(eta):
    with pytest.raises(ValueError, match="eta must be > 0"):
        la.sinkhorn_log(jnp.ones((3, 3)), eta=eta, n_iter=5)


def test_sinkhorn_empty_and_marginals():
    with pytest.raises(ValueError, match="logits must be non-empty"):
        la.sinkhorn_log(jnp.ones((0, 3)), eta=0.5, n_iter=5)
    with pytest.raises(ValueError, match="row_marginal must be > 0"):
        la.sinkhorn_log(jnp.ones((3, 3)), eta=0.5, n_iter=5, row_marginal=jnp.array([1.0, -1.0, 3.0]))
    with pytest.raises(ValueError, match="col_marginal must be > 0"):
        la.sinkhorn_log(jnp.ones((3, 3)), eta=0.5, n_iter=5, col_marginal=jnp.zeros(3))
    # traced eta is not checked (and still works)
    assert jax.jit(lambda e: la.sinkhorn_log(jnp.ones((3, 3)), eta=e, n_iter=5))(0.5).shape == (3, 3)


@pytest.mark.parametrize("ratio", [-0.5, 0.0])
def test_mp_negative_ratio(ratio):
    with pytest.raises(ValueError, match="ratio"):
        la.mp_edges(ratio)
    with pytest.raises(ValueError, match="ratio"):
        la.marchenko_pastur_pdf(jnp.linspace(0.1, 2.0, 5), ratio)
    with pytest.raises(ValueError, match="ratio"):
        la.bbp_threshold(ratio)


def test_mp_negative_sigma2():
    with pytest.raises(ValueError, match="sigma2 must be >= 0"):
        la.mp_edges(0.5, -1.0)
    with pytest.raises(ValueError, match="sigma2 must be > 0"):
        la.marchenko_pastur_pdf(jnp.ones(3), 0.5, 0.0)
    with pytest.raises(ValueError, match="sigma2"):
        la.spiked_eigenvalue_limit(3.0, 0.5, -2.0)


def test_empty_inputs():
    with pytest.raises(ValueError, match="z must be non-empty"):
        la.coding_rate(jnp.ones((0, 4)), 0.5)
    with pytest.raises(ValueError, match="eigvals must be non-empty"):
        la.detect_spikes(jnp.ones((0,)), 10, 5)
    with pytest.raises(ValueError, match="eigvals must be non-empty"):
        la.estimate_noise_variance(jnp.ones((0,)), 10, 5)


def test_coding_rate_eps_and_memberships():
    with pytest.raises(ValueError, match="eps must be > 0"):
        la.coding_rate(jnp.ones((4, 3)), 0.0)
    with pytest.raises(ValueError, match="eps must be > 0"):
        la.coding_rate(jnp.ones((4, 3)), jnp.asarray(-1.0))
    with pytest.raises(ValueError, match=r"pi \(memberships\) must be >= 0"):
        la.compressed_coding_rate(jnp.ones((4, 3)), -jnp.ones((4, 2)), 0.5)


def test_randomized_svd_key_must_be_a_key():
    with pytest.raises(TypeError, match=r"key must be a PRNG key made by jax.random.key"):
        la.randomized_svd(jnp.ones((5, 4)), 2, key=0)


@pytest.mark.parametrize("solver", ["subspace_iteration", "lobpcg_eigh"])
def test_symmetric_operator_checks(solver):
    a = jnp.eye(20, dtype=jnp.float32)
    f = getattr(la, solver)
    with pytest.raises(ValueError, match=r"matvec failed on a vector of shape \(12,\).*does n match"):
        f(lambda x: a @ x, 12, 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"matvec must return a vector of shape \(n,\), got shape \(\)"):
        f(lambda x: jnp.sum(x), 20, 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"matvec must return shape \(n,\) = \(20,\), got \(10,\)"):
        f(lambda x: x[:10], 20, 2, key=jax.random.key(0))
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        f(lambda x: x, 20, 2, key=jax.random.key(0), dtype=jnp.int32)
    with pytest.raises(TypeError, match="key must be a PRNG key"):
        f(lambda x: x, 20, 2, key=1)


def test_lobpcg_returns_iterinfo_like_subspace_iteration():
    a = jnp.diag(jnp.arange(1.0, 21.0, dtype=jnp.float32))
    _, _, info = la.lobpcg_eigh(lambda x: a @ x, 20, 2, key=jax.random.key(0))
    assert isinstance(info, la.IterInfo) and info.residual.shape == (2,) and bool(info.converged)


def test_matfree_svd_operator_checks():
    a = jnp.ones((6, 4), jnp.float32)
    with pytest.raises(ValueError, match=r"matvec failed on a vector of shape \(5,\)"):
        la.matfree_svd(lambda x: a @ x, lambda y: a.T @ y, 5, 2, key=jax.random.key(0), oversample=1)
    with pytest.raises(ValueError, match=r"rmatvec must return shape \(n,\) = \(4,\), got \(3,\)"):
        la.matfree_svd(lambda x: a @ x, lambda y: (a.T @ y)[:3], 4, 2, key=jax.random.key(0), oversample=1)
    with pytest.raises(ValueError, match="matvec must return a vector"):
        la.matfree_svd(lambda x: jnp.sum(x), lambda y: y, 4, 1, key=jax.random.key(0), oversample=1)
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        la.matfree_svd(lambda x: a @ x, lambda y: a.T @ y, 4, 2, key=jax.random.key(0), dtype=jnp.int32,
                       oversample=1)


def test_message_nits():
    with pytest.raises(TypeError, match="must have an inexact dtype"):
        la.eigh(jnp.eye(3, dtype=jnp.int32))
    with pytest.raises(TypeError, match="must have a floating dtype"):
        la.eigh_projector(jnp.eye(3, dtype=jnp.int32), 1)
    assert _shape_str((6,)) == "(6,)" and _shape_str((10, None)) == "(10, *)"
    with pytest.raises(ValueError, match=r"got \(6,\)"):
        check_array(jnp.ones(6), "x", shape=(3, 2))


def test_principal_angles_one_contract(rng):
    """linalg.principal_angles and manifolds.principal_angles are one function: any full-rank bases, batched."""
    assert mf.principal_angles is la.principal_angles
    a = jnp.asarray(rng.standard_normal((2, 6, 3)))
    b = jnp.asarray(rng.standard_normal((2, 6, 2)))
    q = mf.qr_orthonormalize(a)
    np.testing.assert_allclose(la.principal_angles(a, b), mf.principal_angles(q, b), atol=1e-12)
    with pytest.raises(ValueError, match="same number of rows"):
        la.principal_angles(jnp.ones((4, 2)), jnp.ones((5, 2)))


def test_grassmann_debug_mode_orthonormality_check():
    p = jnp.ones((5, 2)) * 0.3
    g = jnp.ones((5, 2))
    mf.grassmann_project(p, g)  # not checked by default (trusted; optimisers re-orthonormalise)
    with jax.enable_checks(True):
        with pytest.raises(ValueError, match="orthonormal"):
            mf.grassmann_project(p, g)
        with pytest.raises(ValueError, match="orthonormal"):
            mf.grassmann_exp(p, g, 0.1)
        q = mf.qr_orthonormalize(jnp.asarray(np.random.default_rng(0).standard_normal((5, 2))))
        assert mf.grassmann_project(q, g).shape == (5, 2)
        assert jax.jit(mf.grassmann_project)(p, g).shape == (5, 2)  # skipped under jit
