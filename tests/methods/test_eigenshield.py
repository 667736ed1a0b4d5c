"""EigenShield-style (reconstructed) causal-subspace filter: RMT spike detection on planted spiked covariances, the
Marchenko–Pastur law against sampled noise, conformal coverage, the projection's algebra, a float64 NumPy reference
of every fit step, jit / vmap / grad, save / load, input errors and degenerate sizes."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate as si
import scipy.optimize as so
from jax.test_util import check_grads

from eigenkit import linalg as la
from eigenkit.methods import eigenshield as es

# One compiled fit per (shape, static config), reused across tests (alpha, sigma2 are traced); eager calls are
# covered by the input-error and degenerate-size tests and the docstring examples.
FIT = jax.jit(es.fit, static_argnames=("max_rank", "n_bootstrap", "noise_scale", "tw_margin"))


def spiked(rng, n, d, ells, s2=1.0, shift=3.0):
    """``n × d`` Gaussian rows with covariance ``σ² I + Q diag(ℓ) Qᵀ`` and mean ``shift · 1``; returns (E, Q)."""
    q, _ = np.linalg.qr(rng.standard_normal((d, len(ells))))
    e = rng.standard_normal((n, d)) * np.sqrt(s2) + (rng.standard_normal((n, len(ells))) * np.sqrt(ells)) @ q.T
    return e + shift, q


def tw_threshold(s2, n_dof, p, margin=3.0):
    sn, sp = math.sqrt(n_dof), math.sqrt(p)
    return s2 * ((sn + sp) ** 2 + margin * (sn + sp) * (1 / sn + 1 / sp) ** (1 / 3)) / n_dof


def mp_pdf_np(x, ratio, s2):
    lo, hi = s2 * (1 - math.sqrt(ratio)) ** 2, s2 * (1 + math.sqrt(ratio)) ** 2
    x = np.asarray(x, np.float64)
    inside = (x > lo) & (x < hi)
    out = np.zeros_like(x)
    xi = x[inside]
    out[inside] = np.sqrt((hi - xi) * (xi - lo)) / (2 * np.pi * s2 * ratio * xi)
    return out


def mp_cdf_np(x, ratio, s2):
    """CDF of the continuous part (γ <= 1) by adaptive quadrature of the NumPy density (independent of eigenkit)."""
    lo, hi = s2 * (1 - math.sqrt(ratio)) ** 2, s2 * (1 + math.sqrt(ratio)) ** 2
    f = lambda t: float(mp_pdf_np(np.array([t]), ratio, s2)[0])  # noqa: E731
    return np.array([0.0 if v <= lo else 1.0 if v >= hi else si.quad(f, lo, v, limit=200)[0] for v in np.atleast_1d(x)])


def reference_fit(e, max_rank, indices, alpha, margin=3.0):
    """Float64 NumPy / SciPy implementation of the same steps, fed the same bootstrap resamples."""
    e = np.asarray(e, np.float64)
    n, d = e.shape

    def spectrum(x):
        xc = x - x.mean(0)
        w, v = np.linalg.eigh(xc.T @ xc / (n - 1))
        return w[::-1], v[:, ::-1]

    w, v = spectrum(e)
    ratio = d / (n - 1)
    mp_med = so.brentq(lambda t: mp_cdf_np(t, ratio, 1.0)[0] - 0.5, (1 - math.sqrt(ratio)) ** 2 + 1e-12,
                       (1 + math.sqrt(ratio)) ** 2)
    s2 = np.median(w[: min(n - 1, d)]) / mp_med
    thr = tw_threshold(s2, n - 1, d, margin)
    spikes = w[:max_rank] > thr
    basis = v[:, :max_rank]
    kept = []
    for idx in np.asarray(indices):
        wb, vb = spectrum(e[idx])
        mb = wb[:max_rank] > thr
        kept.append(np.sum((vb[:, :max_rank][:, mb].T @ basis) ** 2, axis=0))
    scores = np.clip(1 - np.mean(kept, axis=0), 0, 1)
    k = int(spikes.sum())
    level = math.ceil((1 - alpha) * (k + 1) - 1e-9)
    tau = np.sort(scores[spikes])[level - 1] if 0 < level <= k else np.inf
    return {"eigvals": w, "sigma2": s2, "threshold": thr, "spikes": spikes, "scores": scores, "tau": tau,
            "mask": spikes & (scores <= tau), "basis": basis}


def proj(basis, mask):
    u = np.asarray(basis, np.float64)[:, np.asarray(mask)]
    return u @ u.T


# --------------------------------------------------------------------------- spikes vs BBP, MP law


@pytest.mark.parametrize("seed", [0])
def test_detects_planted_spikes_above_bbp_and_none_below(dtype, seed):
    rng = np.random.default_rng(seed)
    n, d = 2000, 200
    gamma = d / (n - 1)
    above, below = [4.0, 2.0, 1.2], [0.12, 0.08]  # BBP: ℓ > σ²√γ ≈ 0.316
    assert min(above) > 3 * math.sqrt(gamma) and max(below) < 0.4 * math.sqrt(gamma)
    e, q = spiked(rng, n, d, above + below)
    st = FIT(jnp.asarray(e, dtype), 10, key=jax.random.key(seed), n_bootstrap=6)
    assert st.basis.dtype == dtype and st.eigvals.dtype == dtype
    assert st.spike_mask.tolist() == [True] * 3 + [False] * 7
    np.testing.assert_allclose(float(st.sigma2), 1.0, rtol=0.03)
    np.testing.assert_allclose(float(st.bulk_edge), (1 + math.sqrt(gamma)) ** 2 * float(st.sigma2), rtol=1e-5)
    # detected eigenvalues at the Baik–Silverstein limit; their subspace is the planted above-BBP one
    lim = np.asarray(la.spiked_eigenvalue_limit(1.0 + np.array(above), gamma))
    np.testing.assert_allclose(np.asarray(st.eigvals[:3], np.float64), lim, rtol=0.12)
    pa = proj(st.basis, st.spike_mask)
    cos2 = np.linalg.svd(q[:, :3].T @ np.asarray(st.basis[:, :3], np.float64), compute_uv=False) ** 2
    ell = np.array(above)
    theory = (1 - gamma / ell**2) / (1 + gamma / ell)  # squared sample/population eigenvector alignment (Paul 2007)
    assert cos2.min() > theory.min() - 0.06, (cos2, theory)
    assert np.linalg.norm(pa @ q[:, 3:]) < 0.5  # the below-BBP directions are not in the spike subspace


def test_pure_noise_has_no_spikes_and_empty_mask():
    for seed in range(4):
        e = np.random.default_rng(10 + seed).standard_normal((800, 80)) * 1.7 - 2.0
        st = FIT(jnp.asarray(e), 8, key=jax.random.key(seed), n_bootstrap=3)
        assert int(st.spike_mask.sum()) == 0 and int(es.causal_rank(st)) == 0
        assert float(st.score_threshold) == np.inf
        x = jnp.asarray(np.random.default_rng(seed).standard_normal((5, 80)))
        np.testing.assert_allclose(es.transform(st, x), jnp.broadcast_to(st.mean, x.shape), atol=1e-12)
        np.testing.assert_allclose(float(st.sigma2), 1.7**2, rtol=0.03)


@pytest.mark.parametrize("ratio", [0.05, 0.25, 0.7, 1.0])
def test_mp_density_integrates_to_one(ratio):
    lo, hi = (float(t) for t in la.mp_edges(ratio, 1.3))
    f = lambda t: float(la.marchenko_pastur_pdf(jnp.asarray([t], jnp.float64), ratio, 1.3)[0])  # noqa: E731
    mass, err = si.quad(f, lo, hi, limit=400)
    assert abs(mass - 1.0) < 1e-5 and err < 1e-4


def test_mp_law_matches_noise_spectrum_ks():
    n, p = 4000, 1000
    e = np.random.default_rng(3).standard_normal((n, p)) * 0.8
    st = FIT(jnp.asarray(e), 0, key=jax.random.key(0))  # max_rank 0: spectrum + noise level only
    lam = np.sort(np.asarray(st.eigvals))
    ratio = p / (n - 1)
    np.testing.assert_allclose(float(st.sigma2), 0.64, rtol=0.01)
    # KS distance between the empirical spectral CDF and MP(γ, σ̂²), CDF by cumulative quadrature on a fine grid
    s2 = float(st.sigma2)
    lo, hi = s2 * (1 - math.sqrt(ratio)) ** 2, s2 * (1 + math.sqrt(ratio)) ** 2
    theta = np.linspace(0, np.pi, 20001)
    x = lo + (hi - lo) * (1 - np.cos(theta)) / 2
    dens = np.asarray(la.marchenko_pastur_pdf(jnp.asarray(x), ratio, s2)) * (hi - lo) / 2 * np.sin(theta)
    cdf = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(theta))])
    assert abs(cdf[-1] - 1) < 1e-6
    model = np.interp(lam, x, cdf)
    emp_hi, emp_lo = np.arange(1, p + 1) / p, np.arange(p) / p
    ks = max(np.max(np.abs(emp_hi - model)), np.max(np.abs(emp_lo - model)))
    assert ks < 0.02, ks
    assert lam.max() < hi * 1.02 and lam.min() > lo * 0.95


# --------------------------------------------------------------------------- conformal threshold


@pytest.mark.parametrize("m, alpha", [(19, 0.1), (50, 0.2), (4, 0.5)])
def test_conformal_coverage_on_exchangeable_scores(m, alpha):
    trials = 20000
    s = jax.random.normal(jax.random.key(m), (trials, m + 1), jnp.float32)
    tau = jax.vmap(lambda v: es.conformal_quantile(v[:m], alpha))(s)
    cover = float(jnp.mean(s[:, m] <= tau))
    level = math.ceil((1 - alpha) * (m + 1) - 1e-9)
    exact = min(level, m + 1) / (m + 1)  # P(s_test <= τ) for continuous exchangeable scores
    assert exact >= 1 - alpha
    tol = 4 * math.sqrt(exact * (1 - exact) / trials) + 1e-4
    assert abs(cover - exact) <= tol, (cover, exact, tol)
    assert cover >= 1 - alpha - tol and exact < 1 - alpha + 1 / (m + 1) + 1e-12


@pytest.mark.slow  # ~2 s: beyond the must-show list
def test_conformal_coverage_with_ties_and_padding():
    trials, m, alpha = 20000, 24, 0.2
    k1, k2 = jax.random.split(jax.random.key(7))
    s = jax.random.randint(k1, (trials, m + 1), 0, 4).astype(jnp.float32)  # heavy ties: coverage still >= 1 − α
    assert float(jnp.mean(s[:, m] <= jax.vmap(lambda v: es.conformal_quantile(v[:m], alpha))(s))) >= 1 - alpha
    # a variable number of valid scores in a fixed-size array (the fit's spike mask)
    valid = jax.random.randint(k2, (trials,), 5, m + 1)
    u = jax.random.uniform(k2, (trials, m + 1))
    mask = jnp.arange(m)[None, :] < valid[:, None]
    padded = jnp.where(mask, u[:, :m], -5.0)  # garbage where masked: must be ignored
    tau = jax.jit(jax.vmap(lambda v, mk: es.conformal_quantile(v, alpha, mask=mk)))(padded, mask)
    test = u[jnp.arange(trials), valid]  # the score after the valid ones: exchangeable with them
    cover = float(jnp.mean(test <= tau))
    v1 = valid.astype(jnp.float64) + 1
    exact = float(jnp.mean(jnp.minimum(jnp.ceil((1 - alpha) * v1 - 1e-6), v1) / v1))
    assert abs(cover - exact) < 4 * math.sqrt(exact * (1 - exact) / trials) + 1e-4


def test_conformal_quantile_matches_order_statistic_and_edge_cases(dtype):
    rng = np.random.default_rng(0)
    cq = jax.jit(es.conformal_quantile)  # alpha traced: one compile per m
    for m in (1, 10, 99):
        s = rng.standard_normal(m).astype(dtype)
        for alpha in (0.01, 0.1, 0.25, 0.5, 0.9):
            level = math.ceil((1 - alpha) * (m + 1) - 1e-9)
            want = np.sort(s)[level - 1] if level <= m else np.inf
            got = cq(jnp.asarray(s), jnp.asarray(alpha, dtype))
            assert got.dtype == dtype and float(got) == float(want), (m, alpha)
    assert float(es.conformal_quantile(jnp.zeros((0,), dtype), 0.1)) == np.inf
    assert float(es.conformal_quantile(jnp.ones(4, dtype), 0.1, mask=jnp.zeros(4, bool))) == np.inf


# --------------------------------------------------------------------------- reference, scores, causal set


def test_fit_matches_float64_numpy_reference(dtype):
    rng = np.random.default_rng(5)
    n, d, r, alpha, boots = 300, 24, 8, 0.3, 6
    e, _ = spiked(rng, n, d, [40.0, 20.0, 12.0, 8.0, 5.0, 3.5])
    key = jax.random.key(2)
    st = FIT(jnp.asarray(e, dtype), r, key=key, alpha=alpha, n_bootstrap=boots)
    ref = reference_fit(e, r, es.bootstrap_indices(key, n, boots), alpha)
    rtol = 1e-9 if dtype == np.float64 else 3e-4
    np.testing.assert_allclose(np.asarray(st.eigvals, np.float64), ref["eigvals"], rtol=rtol,
                               atol=rtol * ref["eigvals"][0])
    # eigenkit's MP median: 2049-point quadrature + interpolation; the reference: adaptive quad + brentq
    np.testing.assert_allclose(float(st.sigma2), ref["sigma2"], rtol=max(rtol, 2e-5))
    np.testing.assert_allclose(float(st.spike_threshold), ref["threshold"], rtol=max(rtol, 2e-5))
    assert st.spike_mask.tolist() == ref["spikes"].tolist() and int(st.spike_mask.sum()) == 6
    np.testing.assert_allclose(np.asarray(st.scores, np.float64), ref["scores"], atol=10 * rtol)
    assert st.mask.tolist() == ref["mask"].tolist()
    np.testing.assert_allclose(proj(st.basis, st.mask), proj(ref["basis"], ref["mask"]), atol=100 * rtol)
    np.testing.assert_allclose(np.asarray(st.mean, np.float64), e.mean(0), rtol=rtol, atol=rtol)


@pytest.mark.slow  # ~2 s: beyond the must-show list
def test_scores_rank_weak_spikes_as_less_robust_and_alpha_nests_causal_sets():
    rng = np.random.default_rng(8)
    n, d = 600, 60
    strengths = [30.0, 20.0, 15.0, 10.0, 6.0, 4.0, 3.0, 2.2, 1.6, 1.3, 1.1, 1.0]  # √γ ≈ 0.32
    e, _ = spiked(rng, n, d, strengths)
    masks, prev, prev_scores = [], None, None
    for alpha in (0.6, 0.4, 0.2, 0.1, 0.02):  # smaller α → larger quantile → more spikes kept
        st = FIT(jnp.asarray(e), 16, key=jax.random.key(0), alpha=alpha, n_bootstrap=12)
        m = np.asarray(st.mask)
        assert not np.any(m & ~np.asarray(st.spike_mask))
        if prev is not None:
            assert np.all(m >= prev) and np.all(st.scores == prev_scores)
        prev, prev_scores = m, st.scores
        masks.append(int(m.sum()))
        k = int(st.spike_mask.sum())
        assert masks[-1] == min(k, math.ceil((1 - alpha) * (k + 1) - 1e-9))  # continuous scores: no ties
    assert masks[0] < masks[-1]
    sc = np.asarray(st.scores)[np.asarray(st.spike_mask)]
    assert sc[:3].max() < 0.05 and sc[-2:].min() > sc[:3].max()  # strong spikes robust, weak ones less
    noisy = FIT(jnp.asarray(e), 16, key=jax.random.key(0), n_bootstrap=12, noise_scale=0.5)
    assert np.all(np.isfinite(noisy.scores)) and np.all((noisy.scores >= 0) & (noisy.scores <= 1))


# --------------------------------------------------------------------------- projection algebra and baselines


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(4)
    e, _ = spiked(rng, 400, 30, [25.0, 12.0, 6.0, 3.0, 1.5])
    return jnp.asarray(e), FIT(jnp.asarray(e), 8, key=jax.random.key(0), alpha=0.5, n_bootstrap=8)


def _defences(st):
    return {"eigenshield": st, "pca": es.pca_baseline(st), "random": es.random_baseline(st, key=jax.random.key(3)),
            "none": es.no_defence(st)}


@pytest.mark.parametrize("name", ["eigenshield", "pca", "random", "none"])
def test_projection_idempotent_orthonormal_and_exact_on_span(fitted, name):
    e, st = fitted
    p_state = _defences(st)[name]
    u = np.asarray(p_state.basis)
    np.testing.assert_allclose(u.T @ u, np.eye(u.shape[1]), atol=1e-10)
    p = np.asarray(es.projector(p_state))
    k = int(es.causal_rank(p_state))
    assert k == (30 if name == "none" else int(es.causal_rank(st))) and 0 < int(es.causal_rank(st)) <= 5
    np.testing.assert_allclose(p @ p, p, atol=1e-10)
    np.testing.assert_allclose(p, p.T, atol=1e-12)
    np.testing.assert_allclose(np.trace(p), k, atol=1e-10)
    x = e[:7] * 1.3 - 0.4
    y = es.transform(p_state, x)
    np.testing.assert_allclose(es.transform(p_state, y), y, atol=1e-10)
    mu = np.asarray(st.mean)
    np.testing.assert_allclose(y, mu + (np.asarray(x) - mu) @ p, atol=1e-10)
    inside = mu + np.asarray(x - mu) @ p
    np.testing.assert_allclose(es.transform(p_state, jnp.asarray(inside)), inside, atol=1e-10)
    if name != "none":
        outside = mu + np.asarray(x - mu) @ (np.eye(30) - p)
        np.testing.assert_allclose(es.transform(p_state, jnp.asarray(outside)), np.broadcast_to(mu, x.shape),
                                   atol=1e-10)


def test_baselines_same_rank_and_seeded(fitted):
    _, st = fitted
    k = int(es.causal_rank(st))
    pca = es.pca_baseline(st)
    assert pca.mask.tolist() == [True] * k + [False] * (8 - k)
    r1, r2 = es.random_baseline(st, key=jax.random.key(1)), es.random_baseline(st, key=jax.random.key(1))
    r3 = es.random_baseline(st, key=jax.random.key(2))
    assert int(es.causal_rank(r1)) == k and bool(jnp.all(r1.basis == r2.basis))
    assert not np.allclose(es.projector(r1), es.projector(r3))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 30)))
    np.testing.assert_allclose(es.transform(es.no_defence(st), x), x, atol=1e-12)


# --------------------------------------------------------------------------- transforms: jit, vmap, grad


@pytest.mark.slow  # the eager fit compiles op by op (~2 s); the docstring examples run it eagerly too
def test_fit_under_jit_matches_eager(fitted):
    e, js = fitted  # the fixture's state comes from the jitted fit
    st = es.fit(e, 8, key=jax.random.key(0), alpha=0.5, n_bootstrap=8)
    for a, b in zip(js, st):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-10)


def test_transform_jit_vmap_any_leading_shape_and_dtype(fitted):
    e, st = fitted
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 5, 30)))  # per-token (B, T, d)
    y = jax.jit(es.transform)(st, x)
    np.testing.assert_allclose(y, jax.vmap(jax.vmap(lambda v: es.transform(st, v)))(x), atol=1e-12)
    np.testing.assert_allclose(y[1, 3], es.transform(st, x[1, 3]), atol=1e-12)
    pooled = es.transform(st, x.mean(1))
    np.testing.assert_allclose(pooled, y.mean(1), atol=1e-12)  # affine: pooling commutes with the filter
    y32 = es.transform(st, x.astype(jnp.float32))
    assert y32.dtype == jnp.float32
    np.testing.assert_allclose(y32, y, rtol=1e-5, atol=1e-5)
    # vmap over a stack of projections (e.g. one per layer)
    pair = (es.SubspaceProjection(st.mean, st.basis, st.mask), es.random_baseline(st, key=jax.random.key(9)))
    states = jax.tree.map(lambda a, b: jnp.stack([a, b]), *pair)
    ys = jax.vmap(es.transform, in_axes=(0, None))(states, x[:2])
    for i in range(2):
        np.testing.assert_allclose(ys[i], es.transform(pair[i], x[:2]), atol=1e-12)


def test_transform_gradients(fitted):
    e, st = fitted
    x = e[:3] + 0.1
    check_grads(lambda v: es.transform(st, v), (x,), order=1, modes=("fwd", "rev"))
    c = jnp.asarray(np.random.default_rng(2).standard_normal(x.shape))
    g = jax.grad(lambda v: jnp.sum(c * es.transform(st, v)))(x)
    np.testing.assert_allclose(g, c @ es.projector(st), atol=1e-12)  # adaptive-attack gradient: P c
    gs = jax.grad(lambda s: jnp.sum(c * es.transform(s, x)), allow_int=True)(st)
    assert np.all(np.isfinite(np.asarray(gs.basis)))


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip(fitted, tmp_path):
    _, st = fitted
    es.save(tmp_path / "st.npz", st)
    back = es.load(tmp_path / "st.npz")
    assert type(back) is es.EigenShieldState
    for a, b in zip(back, st):
        assert a.dtype == b.dtype and a.shape == b.shape and bool(jnp.all(a == b))
    pr = es.random_baseline(st, key=jax.random.key(0))
    es.save(tmp_path / "pr.npz", pr)
    back = es.load(tmp_path / "pr.npz")
    assert type(back) is es.SubspaceProjection and bool(jnp.all(back.basis == pr.basis))
    np.savez(tmp_path / "other.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="not an EigenShield state"):
        es.load(tmp_path / "other.npz")
    with pytest.raises(TypeError, match="state must be"):
        es.save(tmp_path / "x.npz", (1, 2))


# --------------------------------------------------------------------------- errors and degenerate sizes


def test_bad_inputs_name_the_argument(fitted):
    e, st = fitted
    key = jax.random.key(0)
    cases = [
        (lambda: es.fit(e[0], 2, key=key), ValueError, "embeddings must have rank 2"),
        (lambda: es.fit(e.astype(jnp.int32), 2, key=key), TypeError, "embeddings must have a floating dtype"),
        (lambda: es.fit(e[:1], 1, key=key), ValueError, "embeddings must have at least 2 rows"),
        (lambda: es.fit(e, 31, key=key), ValueError, "max_rank must satisfy 0 <= max_rank"),
        (lambda: es.fit(e, 2.0, key=key), TypeError, "max_rank must be a Python int"),
        (lambda: es.fit(e, 2, key=key, alpha=1.5), ValueError, "alpha must satisfy 0 < alpha < 1"),
        (lambda: es.fit(e, 2, key=key, alpha=0.0), ValueError, "alpha must satisfy"),
        (lambda: es.fit(e, 2, key=key, n_bootstrap=0), ValueError, "n_bootstrap must satisfy"),
        (lambda: es.fit(e, 2, key=key, sigma2=-1.0), ValueError, "sigma2 must be > 0"),
        (lambda: es.fit(e, 2, key=key, noise_scale=-0.1), ValueError, "noise_scale must be"),
        (lambda: es.fit(e, 2, key=0), TypeError, "key must be a PRNG key"),
        (lambda: es.transform(st, e[:, :5]), ValueError, r"x must have shape \(\.\.\., d\) with d = 30"),
        (lambda: es.transform(st, jnp.ones((), jnp.float64)), ValueError, "x must have rank >= 1"),
        (lambda: es.transform(st, jnp.ones(30, jnp.int32)), TypeError, "x must have a floating dtype"),
        (lambda: es.transform((st.mean, st.basis), e), TypeError, "state must be an EigenShieldState"),
        (lambda: es.conformal_quantile(jnp.ones((2, 2)), 0.1), ValueError, "scores must have rank 1"),
        (lambda: es.conformal_quantile(jnp.ones(3), 0.1, mask=jnp.ones(2, bool)), ValueError, "mask must have shape"),
        (lambda: es.robustness_scores(e, jnp.eye(29), key=key, sigma2=1.0), ValueError, "basis must have shape"),
    ]
    for fn, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            fn()


def test_fewer_samples_than_dimensions():
    rng = np.random.default_rng(6)
    n, d = 40, 100
    e, q = spiked(rng, n, d, [400.0])
    st = FIT(jnp.asarray(e), 5, key=jax.random.key(0), n_bootstrap=4)
    for name, a in st._asdict().items():
        if jnp.issubdtype(a.dtype, jnp.floating) and name != "score_threshold":  # τ = inf: 1 spike < 1/α − 1
            assert np.all(np.isfinite(np.asarray(a))), name
    assert int(st.spike_mask.sum()) == 1 and bool(st.mask[0])
    assert abs(float(q[:, 0] @ np.asarray(st.basis[:, 0]))) > 0.9
    np.testing.assert_allclose(np.asarray(st.eigvals[n - 1:]), 0, atol=1e-8)  # rank n − 1 after centring


def test_rank_zero_and_size_one():
    e = jnp.asarray(np.random.default_rng(0).standard_normal((50, 6)))
    st = FIT(e, 0, key=jax.random.key(0))
    assert st.basis.shape == (6, 0) and st.mask.shape == (0,) and st.scores.shape == (0,)
    np.testing.assert_allclose(es.transform(st, e[:3]), jnp.broadcast_to(st.mean, (3, 6)), atol=1e-12)
    np.testing.assert_allclose(es.projector(st), np.zeros((6, 6)))
    for b in (es.pca_baseline(st), es.random_baseline(st, key=jax.random.key(1))):
        assert b.basis.shape == (6, 0) and int(es.causal_rank(b)) == 0
    assert jax.grad(lambda v: jnp.sum(es.transform(st, v)))(e[0]).tolist() == [0.0] * 6
    # d = 1 and one embedding of shape (d,)
    one = jnp.asarray(np.random.default_rng(1).standard_normal((20, 1)))
    s1 = FIT(one, 1, key=jax.random.key(0), n_bootstrap=2)
    assert s1.basis.shape == (1, 1) and es.transform(s1, one[0]).shape == (1,)
    # n = 2, the smallest calibration set
    s2 = FIT(e[:2], 2, key=jax.random.key(0), n_bootstrap=2)
    assert np.all(np.isfinite(np.asarray(es.transform(s2, e[:4]))))
