"""EoRA factors and covariance: closed-form optimality, eigen == Cholesky, clamping, accumulation rules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from eigenkit.methods import eora


def _problem(rng, d_out=12, d_in=8, n=40, dtype=np.float64):
    w = rng.standard_normal((d_out, d_in))
    w_c = w + 0.1 * rng.standard_normal((d_out, d_in))
    x = rng.standard_normal((n, d_in)) @ np.diag(np.linspace(0.2, 3.0, d_in))
    return (w - w_c).astype(dtype), x.astype(dtype)


def _closed_form(delta, s, r):
    """Independent float64 reference: BA = [ΔW S^{1/2}]_r S^{-1/2} with the *symmetric* square root (scipy)."""
    import scipy.linalg as sl

    root = np.real(sl.sqrtm(s))
    u, sig, vt = np.linalg.svd(delta @ root, full_matrices=False)
    return (u[:, :r] * sig[:r]) @ vt[:r] @ np.linalg.inv(root), np.sqrt(np.sum(sig[r:] ** 2))


@pytest.mark.parametrize("rank", [3, 8])
def test_eora_matches_closed_form_and_tail(rng, dtype, tol, rank):
    delta, x = _problem(rng)
    s = x.T @ x
    b, a = jax.jit(eora.eora_factors, static_argnums=2)(jnp.asarray(delta, dtype), jnp.asarray(s, dtype), rank)
    assert b.dtype == dtype and a.dtype == dtype and b.shape == (12, rank) and a.shape == (rank, 8)
    ref, tail = _closed_form(delta.astype(np.float64), s.astype(np.float64), rank)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(np.asarray(b @ a, np.float64) / scale, ref / scale, rtol=0, atol=50 * tol[0])
    err = np.linalg.norm((delta.astype(np.float64) - np.asarray(b @ a, np.float64)) @ x.T.astype(np.float64))
    ref_norm = np.linalg.norm(delta.astype(np.float64) @ x.T.astype(np.float64))
    np.testing.assert_allclose(err, tail, rtol=50 * tol[0], atol=50 * tol[0] * ref_norm)
    b64, a64 = jnp.asarray(b, jnp.float64), jnp.asarray(a, jnp.float64)
    ae = eora.activation_error(jnp.asarray(delta, jnp.float64), b64, a64, jnp.asarray(s, jnp.float64))
    np.testing.assert_allclose(float(ae), tail, rtol=50 * tol[0], atol=50 * tol[0] * ref_norm)


def test_eora_beats_random_rank_r_perturbations_and_svd(rng):
    delta, x = _problem(rng)
    s = x.T @ x
    r = 3
    b, a = eora.eora_factors(jnp.asarray(delta), jnp.asarray(s), r)
    best = np.linalg.norm((delta - np.asarray(b @ a)) @ x.T)
    for _ in range(50):
        pb = np.asarray(b) + 0.05 * rng.standard_normal(b.shape)
        pa = np.asarray(a) + 0.05 * rng.standard_normal(a.shape)
        assert np.linalg.norm((delta - pb @ pa) @ x.T) >= best - 1e-12
        rb, ra = rng.standard_normal(b.shape), rng.standard_normal(a.shape)
        assert np.linalg.norm((delta - rb @ ra) @ x.T) >= best
    sb, sa = eora.svd_factors(jnp.asarray(delta), r)
    assert np.linalg.norm((delta - np.asarray(sb @ sa)) @ x.T) >= best
    # and SVD is the best in the plain Frobenius norm
    assert np.linalg.norm(delta - np.asarray(sb @ sa)) <= np.linalg.norm(delta - np.asarray(b @ a)) + 1e-12


def test_error_non_increasing_in_rank_and_full_rank_exact(rng):
    delta, x = _problem(rng)
    s = jnp.asarray(x.T @ x)
    errs = [float(eora.activation_error(jnp.asarray(delta), *eora.eora_factors(jnp.asarray(delta), s, r), s))
            for r in range(1, 9)]
    assert all(e1 <= e0 + 1e-10 for e0, e1 in zip(errs, errs[1:]))
    b, a = eora.eora_factors(jnp.asarray(delta), s, 8)
    np.testing.assert_allclose(np.asarray(b @ a), delta, atol=1e-10)  # W_c + BA recovers W exactly


def test_eigen_equals_cholesky_equals_scaled(rng, dtype, tol):
    delta, x = _problem(rng, dtype=dtype)
    s = jnp.asarray(x.T @ x / len(x))
    d = jnp.asarray(delta)
    b1, a1 = eora.eora_factors(d, s, 4)
    b2, a2 = jax.jit(eora.eora_factors_cholesky, static_argnums=2)(d, s, 4)
    np.testing.assert_allclose(np.asarray(b1 @ a1), np.asarray(b2 @ a2), rtol=0, atol=50 * tol[0])
    b3, a3 = eora.eora_factors(d, 16.0 * s, 4)  # BA invariant to scaling S; B scales as c^{1/4}
    np.testing.assert_allclose(np.asarray(b1 @ a1), np.asarray(b3 @ a3), rtol=0, atol=50 * tol[0])
    np.testing.assert_allclose(np.linalg.norm(np.asarray(b3)), 2.0 * np.linalg.norm(np.asarray(b1)), rtol=50 * tol[0])


def test_float32_delta_float64_cov_like_official(rng):
    delta, x = _problem(rng)
    b, a = eora.eora_factors(jnp.asarray(delta, jnp.float32), jnp.asarray(x.T @ x), 4)
    assert b.dtype == jnp.float32 and a.dtype == jnp.float32


@pytest.mark.parametrize("clamp", list(eora.EigenClamp))
def test_clamp_policies_on_indefinite_and_tiny_spectra(rng, clamp):
    d = 6
    delta = jnp.asarray(rng.standard_normal((5, d)))
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    for lam in ([-1.0, 0.5, 1, 2, 3, 4], [1e-30, 1e-20, 1, 2, 3, 4]):
        s = jnp.asarray(q @ np.diag(lam) @ q.T)
        b, a = eora.eora_factors(delta, s, 3, form=eora.EoraForm.WHITENED, clamp=clamp)
        assert np.all(np.isfinite(np.asarray(b))) and np.all(np.isfinite(np.asarray(a)))
    neg = jnp.asarray(-(q @ np.diag(np.arange(1.0, d + 1)) @ q.T))
    whitened = eora.EoraForm.WHITENED
    b, a = eora.eora_factors(delta, neg, 3, form=whitened, clamp=eora.EigenClamp.PINV_RTOL)
    np.testing.assert_array_equal(np.asarray(b @ a), 0.0)  # nothing to compensate against: BA = 0
    b, a = eora.eora_factors(delta, neg, 3)  # the default form has no S^{-1/2}: ΔW S ΔWᵀ is negative, nothing kept
    np.testing.assert_array_equal(np.asarray(b @ a), 0.0)
    b, a = eora.eora_factors(delta, neg, 3, form=whitened, clamp=eora.EigenClamp.NVLABS_MINPOS)
    assert not np.all(np.isfinite(np.asarray(a)))  # documented: the official rule has no positive eigenvalue to use


@pytest.mark.parametrize("form", list(eora.EoraForm))
def test_singular_covariance_is_optimal_on_the_data(rng, form):
    delta, _ = _problem(rng)
    x = rng.standard_normal((4, 8))  # 4 tokens < d_in: S has rank 4
    clamp = eora.EigenClamp.PINV_RTOL  # WHITENED needs a pseudo-inverse here; PROJECTION ignores the clamp
    b, a = eora.eora_factors(jnp.asarray(delta), jnp.asarray(x.T @ x), 4, form=form, clamp=clamp)
    np.testing.assert_allclose(np.asarray((delta - b @ a) @ x.T), 0.0, atol=1e-9)
    assert np.all(np.isfinite(np.asarray(b))) and np.all(np.isfinite(np.asarray(a)))
    b, a = eora.eora_factors_cholesky(jnp.asarray(delta), jnp.asarray(x.T @ x), 4, damp=1e-10)
    assert np.linalg.norm(np.asarray((delta - b @ a) @ x.T)) < 1e-3 * np.linalg.norm(delta @ x.T)


def test_bad_inputs(rng):
    d = jnp.ones((4, 3))
    with pytest.raises(ValueError, match="rank must satisfy"):
        eora.eora_factors(d, jnp.eye(3), 4)
    with pytest.raises(ValueError, match="rank must satisfy"):
        eora.svd_factors(d, 0)
    with pytest.raises(TypeError, match="Python int"):
        eora.eora_factors(d, jnp.eye(3), 2.0)
    with pytest.raises(ValueError, match="cov must have shape"):
        eora.eora_factors(d, jnp.eye(4), 2)
    with pytest.raises(ValueError, match="square"):
        eora.eora_factors_cholesky(d, jnp.ones((3, 2)), 2)
    with pytest.raises(TypeError, match="EigenClamp"):
        eora.eigen_sqrt(jnp.eye(3), clamp="pinv")
    with pytest.raises(TypeError, match="EoraForm"):
        eora.eora_factors(d, jnp.eye(3), 2, form="projection")


# --------------------------------------------------------------- outlier eigenvalues (massive activations)


def _paper_reference_f64(delta, s, r):
    """Independent float64 NumPy implementation of the paper's formula with the official (NVlabs) clamp."""
    lam, q = np.linalg.eigh(s)
    lam = np.where(lam < 0, lam[lam > 0].min(), lam)
    u, sig, vt = np.linalg.svd(delta @ (q * np.sqrt(lam)), full_matrices=False)
    return (u[:, :r] * sig[:r]) @ vt[:r] @ (q / np.sqrt(lam)).T


def _outlier_problem(rng, d_out, d_in, bulk=True):
    """A covariance with one massive channel (λ1/λ2 ~ 1e6, like SmolLM2's ``down_proj`` inputs); ΔW in the bulk
    (``bulk``) or with a full-size component on the massive channel too."""
    n = 4 * d_in
    x = rng.standard_normal((n, d_in)) * np.exp(rng.uniform(-3.0, 1.0, d_in))
    x[:, 0] = 3000.0 * rng.standard_normal(n)
    delta = 0.05 * rng.standard_normal((d_out, d_in))
    if bulk:
        delta[:, 0] *= 1e-3
    return delta, x.T @ x / n


def _objective(delta, ba, s):
    r = delta - ba
    return np.sqrt(np.sum((r @ s) * r))


@pytest.mark.parametrize("shape", [(48, 96), (96, 48)])  # d_out < d_in and d_out > d_in
def test_dominant_outlier_eigenvalue_default_keeps_the_bulk(rng, shape):
    delta, s = _outlier_problem(rng, *shape)
    lam = np.linalg.eigvalsh(s)
    assert lam[-1] / lam[-2] > 1e5
    ref = _paper_reference_f64(delta, s, 16)
    b, a = eora.eora_factors(jnp.asarray(delta), jnp.asarray(s), 16)  # the default (float64 here)
    np.testing.assert_allclose(np.asarray(b @ a), ref, rtol=0, atol=1e-8 * np.abs(ref).max())
    # the old default (relative pseudo-inverse cut) drops the bulk below λ_max·d·eps_f32 and compensates nothing there
    b, a = eora.eora_factors(jnp.asarray(delta), jnp.asarray(s), 16, form=eora.EoraForm.WHITENED,
                             clamp=eora.EigenClamp.PINV_RTOL)
    assert _objective(delta, np.asarray(b @ a), s) > 1.5 * _objective(delta, ref, s)


@pytest.mark.parametrize("bulk", [True, False])
@pytest.mark.parametrize("rank", [8, 32])
@pytest.mark.parametrize("shape", [(48, 96), (96, 48)])
def test_default_float32_path_equals_float64_paper_formula_on_ill_conditioned_cov(rng, shape, rank, bulk):
    delta, s = _outlier_problem(rng, *shape, bulk=bulk)
    ref = _paper_reference_f64(delta, s, rank)
    f = jax.jit(eora.eora_factors, static_argnums=2)
    b, a = f(jnp.asarray(delta, jnp.float32), jnp.asarray(s, jnp.float32), rank)
    assert b.dtype == jnp.float32 and a.dtype == jnp.float32
    ba = np.asarray(b @ a, np.float64)
    err = np.linalg.norm(ba - ref) / np.linalg.norm(ref)
    excess = _objective(delta, ba, s) / _objective(delta, ref, s) - 1.0
    assert err < 5e-4 and abs(excess) < 5e-5
    # at least as accurate as the official code's precision (float64 eigh, float32 SVD and L⁻¹): 2-100x better here
    bo, ao = eora.eora_factors(jnp.asarray(delta, jnp.float32), jnp.asarray(s), rank, form=eora.EoraForm.WHITENED)
    bao = np.asarray(bo @ ao, np.float64)
    assert err <= np.linalg.norm(bao - ref) / np.linalg.norm(ref)
    assert abs(excess) <= max(abs(_objective(delta, bao, s) / _objective(delta, ref, s) - 1.0), 1e-6)


def test_vmap_matches_loop_and_grad(rng):
    deltas = jnp.asarray(rng.standard_normal((3, 5, 4)))
    x = rng.standard_normal((20, 4))
    s = jnp.asarray(x.T @ x)
    f = jax.jit(jax.vmap(lambda d: jnp.matmul(*eora.eora_factors(d, s, 2))))
    loop = np.stack([np.asarray(jnp.matmul(*eora.eora_factors(d, s, 2))) for d in deltas])
    np.testing.assert_allclose(np.asarray(f(deltas)), loop, atol=1e-10)
    # BA is differentiable in ΔW away from degenerate singular values (the residual objective's gradient)
    check_grads(lambda d: eora.activation_error(d, *eora.eora_factors(d, s, 2), s), (deltas[0],), order=1,
                modes=["rev"], atol=1e-4, rtol=1e-4)


def test_compensated_linear_matches_merged(rng, dtype, tol):
    x = jnp.asarray(rng.standard_normal((2, 3, 8)), dtype)
    w_c = jnp.asarray(rng.standard_normal((6, 8)), dtype)
    b = jnp.asarray(rng.standard_normal((6, 2)), dtype)
    a = jnp.asarray(rng.standard_normal((2, 8)), dtype)
    y = jax.jit(eora.compensated_linear)(x, w_c, b, a)
    assert y.dtype == dtype
    np.testing.assert_allclose(np.asarray(y), np.asarray(x) @ (np.asarray(w_c) + np.asarray(b) @ np.asarray(a)).T,
                               rtol=tol[0] * 10, atol=tol[1] * 10)


# ----------------------------------------------------------------------------------------------- covariance


def test_mean_covariance_chunked_equals_full(rng, dtype, tol):
    x = rng.standard_normal((6, 5, 4)).astype(dtype)
    st = eora.covariance_init(4, dtype)
    upd = jax.jit(eora.covariance_update)
    for chunk in np.split(x, 3):
        st = upd(st, jnp.asarray(chunk))
    full = eora.input_covariance(jnp.asarray(x.reshape(-1, 4)))
    np.testing.assert_allclose(np.asarray(eora.covariance_finalize(st)), np.asarray(full), rtol=tol[0], atol=tol[1])
    a = upd(eora.covariance_init(4, dtype), jnp.asarray(x[:2]))
    b = upd(eora.covariance_init(4, dtype), jnp.asarray(x[2:]))
    np.testing.assert_allclose(np.asarray(eora.covariance_finalize(eora.covariance_merge(a, b))), np.asarray(full),
                               rtol=tol[0], atol=tol[1])


def test_official_decay_weights():
    n = 64
    d = 1
    st = eora.covariance_init(d, jnp.float64)
    # feed unit-norm one-token sequences, each into its own coordinate of a 64-dim problem
    st = eora.covariance_init(n, jnp.float64)
    for i in range(n):
        x = jnp.zeros((1, 1, n), jnp.float64).at[0, 0, i].set(1.0)
        st = eora.covariance_update(st, x, weighting=eora.CovarianceWeighting.OFFICIAL_DECAY, num_samples=n)
    w = np.diag(np.asarray(eora.covariance_finalize(st, weighting=eora.CovarianceWeighting.OFFICIAL_DECAY)))
    np.testing.assert_allclose(w[0] / w[-1], 0.377, atol=1e-3)
    np.testing.assert_allclose(w.sum(), 0.639, atol=1e-3)
    assert d == 1
    with pytest.raises(ValueError, match="num_samples"):
        eora.covariance_update(st, jnp.zeros((1, n)), weighting=eora.CovarianceWeighting.OFFICIAL_DECAY)


def test_covariance_bad_inputs():
    st = eora.covariance_init(3)
    with pytest.raises(ValueError, match="match the state"):
        eora.covariance_update(st, jnp.zeros((2, 4)))
    with pytest.raises(TypeError, match="dtype"):
        eora.covariance_update(st, jnp.zeros((2, 3), jnp.float64))


def test_covariance_root_badly_scaled_and_singular(rng, dtype, tol):
    x = rng.standard_normal((40, 6)) * np.array([3000.0, 1.0, 0.3, 2.0, 0.01, 1.0])
    for s in (x.T @ x / 40, x[:3].T @ x[:3] / 3):  # positive definite (Cholesky path) / rank 3 (eigen fallback)
        s = jnp.asarray(s, dtype)
        l = jax.jit(eora.covariance_root)(s)
        assert l.dtype == dtype and np.all(np.isfinite(np.asarray(l)))
        d = np.sqrt(np.diag(np.asarray(s, np.float64)))
        rel = (np.asarray(l @ l.T, np.float64) - np.asarray(s, np.float64)) / np.outer(d, d)  # per-entry, scaled
        assert np.abs(rel).max() < 100 * tol[0]
    batched = jax.vmap(eora.covariance_root)(jnp.stack([jnp.eye(3, dtype=dtype), 4.0 * jnp.eye(3, dtype=dtype)]))
    np.testing.assert_allclose(np.asarray(batched[1]), 2.0 * np.eye(3), atol=tol[1])


def test_factors_from_a_shared_root_equal_eora_factors(rng):
    delta, x = _problem(rng)
    s = jnp.asarray(x.T @ x)
    root = eora.covariance_root(s)
    for r in (2, 5):
        b0, a0 = eora.eora_factors(jnp.asarray(delta), s, r)
        b1, a1 = eora.eora_factors_from_root(jnp.asarray(delta), root, r)
        np.testing.assert_array_equal(np.asarray(b0), np.asarray(b1))
        np.testing.assert_array_equal(np.asarray(a0), np.asarray(a1))
