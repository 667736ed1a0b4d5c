"""TCC (``temporal_correlation``) and COL (``collision_rate``) of eigenkit.metrics against float64 NumPy loops written
here from the definitions of EigenTrajectory ``utils/metrics.py`` (``compute_batch_tcc`` / ``compute_batch_col``):
jit, vmap over padded scenes, masks (padding changes nothing), one-agent scenes, zero variance, bad inputs. Parity
with the official code itself: tests/methods/test_eigentrajectory_parity.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit import metrics

# ---------------------------------------------------------------- float64 NumPy references (loops)


def ref_tcc(pred, gt):
    """pred (N, S, T, d), gt (N, T, d) -> (N,): best-FDE sample, Pearson r per coordinate (0 if undefined), mean."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    out = []
    for p, g in zip(pred, gt):
        s = int(np.argmin([np.linalg.norm(p[i, -1] - g[-1]) for i in range(len(p))]))
        rs = []
        for c in range(g.shape[-1]):
            x, y = p[s, :, c] - p[s, :, c].mean(), g[:, c] - g[:, c].mean()
            sx, sy = np.sqrt((x * x).sum()), np.sqrt((y * y).sum())
            rs.append(0.0 if sx == 0 or sy == 0 else float(np.clip((x * y).sum() / (sx * sy), -1, 1)))
        out.append(np.mean(rs))
    return np.array(out)


def ref_col(pred, mask=None, threshold=0.2, num_interp=4, num_dense=14):
    """pred (N, S, T, d) -> (N,) percent: linear interpolation at times k / num_interp, k < num_dense (np.interp)."""
    pred = np.asarray(pred, np.float64)
    n, s, t, d = pred.shape
    mask = np.ones(n, bool) if mask is None else np.asarray(mask)
    tau = np.arange(min(num_dense, num_interp * (t - 1) + 1)) / num_interp
    dense = np.stack([[np.stack([np.interp(tau, np.arange(t), pred[i, j, :, c]) for c in range(d)], -1)
                       for j in range(s)] for i in range(n)])  # (N, S, K, d)
    out = np.zeros(n)
    for i in np.flatnonzero(mask):
        hits = 0
        for j in range(s):
            hits += any(np.linalg.norm(dense[i, j] - dense[m, j], axis=-1).min() < threshold
                        for m in np.flatnonzero(mask) if m != i)
        out[i] = 100.0 * hits / s
    return out


def walks(rng, n, s=6, t=12, box=2.0, step=0.1):
    start = rng.uniform(0, box, (n, 1, 1, 2))
    return start + np.cumsum(rng.normal(0, step, (n, s, t, 2)), axis=2)


# ---------------------------------------------------------------- TCC


def test_tcc_equals_the_reference_under_jit(rng, dtype, tol):
    pred, gt = rng.normal(size=(3, 5, 7, 4, 12, 2)), rng.normal(size=(3, 5, 7, 12, 2))  # (B1, B2, N, S, T, d)
    got = jax.jit(metrics.temporal_correlation)(pred.astype(dtype), gt.astype(dtype))
    assert got.shape == (3, 5, 7) and got.dtype == dtype
    want = ref_tcc(pred.reshape(-1, 4, 12, 2), gt.reshape(-1, 12, 2)).reshape(3, 5, 7)
    np.testing.assert_allclose(got, want, rtol=10 * tol[0], atol=10 * tol[1])
    assert np.all(np.abs(got) <= 1)


def test_tcc_keeps_the_best_fde_sample_not_the_best_ade_one():
    t = np.arange(6.0)
    gt = np.stack([t, t ** 2], -1)[None]  # (1, T, 2)
    close = gt[0] + np.array([[0.1, 0.0], [0.0, 0.1]] * 3)  # best ADE (0.1), correlated; FDE 0.1
    mirrored = 2 * gt[0, -1] - gt[0]  # ends exactly at the truth (FDE 0), anti-correlated in both coordinates
    pred = np.stack([close, mirrored])[None]
    ade, fde = metrics.best_of_ade_fde(pred, gt)
    assert float(fde[0]) == 0.0 and float(ade[0]) < 0.2
    np.testing.assert_allclose(metrics.temporal_correlation(pred, gt), [-1.0], atol=1e-12)


def test_tcc_zero_variance_gives_zero_as_the_official():
    t = np.arange(8.0)
    horizontal = np.stack([t, np.full_like(t, 1.25)], -1)  # constant y: r_y undefined -> 0
    static = np.broadcast_to([2.0, -1.0], (8, 2))  # both undefined -> 0
    gt = np.stack([horizontal, static, horizontal])
    pred = np.stack([np.stack([horizontal + np.sin(t)[:, None], horizontal + 5]),
                     np.stack([horizontal, static]),
                     np.stack([np.broadcast_to(horizontal[-1], (8, 2)), horizontal + 9])])  # best: standing still
    got = metrics.temporal_correlation(pred, gt)
    r_x = np.corrcoef(t + np.sin(t), t)[0, 1]
    np.testing.assert_allclose(got, [r_x / 2, 0.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(got, ref_tcc(pred, gt), rtol=1e-12)
    g = jax.grad(lambda p: metrics.temporal_correlation(p, gt).sum())(jnp.asarray(pred))
    assert np.all(np.isfinite(g))


def test_tcc_mask_and_vmap_over_padded_scenes(rng, dtype, tol):
    pred, gt = rng.normal(size=(4, 6, 3, 10, 2)).astype(dtype), rng.normal(size=(4, 6, 10, 2)).astype(dtype)
    mask = rng.uniform(size=(4, 6)) < 0.6
    mask[:, 0] = True
    pred[~mask], gt[~mask] = np.nan, np.inf  # padded agents may hold anything
    got = jax.jit(jax.vmap(metrics.temporal_correlation))(pred, gt, mask)
    for w in range(4):  # each scene alone, without its padding
        np.testing.assert_allclose(got[w][mask[w]], metrics.temporal_correlation(pred[w][mask[w]], gt[w][mask[w]]),
                                   rtol=tol[0], atol=tol[1])
        np.testing.assert_allclose(got[w][mask[w]], ref_tcc(pred[w][mask[w]], gt[w][mask[w]]),
                                   rtol=10 * tol[0], atol=10 * tol[1])
    assert np.all(got[~mask] == 0)
    g = jax.grad(lambda p: metrics.masked_mean(metrics.temporal_correlation(p, gt, mask), mask))(jnp.asarray(pred))
    assert np.all(np.isfinite(g)) and np.all(g[~mask] == 0)


def test_tcc_nan_input_gives_zero_as_the_official():
    pred, gt = np.random.default_rng(3).normal(size=(2, 2, 5, 2)), np.zeros((2, 5, 2))
    gt[:, :, 0] = np.arange(5.0)
    pred[0, :, 2, 0] = np.nan
    got = metrics.temporal_correlation(pred, gt)
    assert np.isfinite(got).all()


def test_tcc_bad_inputs_raise():
    p, g = np.zeros((3, 4, 6, 2)), np.zeros((3, 6, 2))
    with pytest.raises(ValueError, match="pred"):
        metrics.temporal_correlation(np.zeros((4, 6)), g[0])
    with pytest.raises(ValueError, match="gt"):
        metrics.temporal_correlation(p, np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="gt"):
        metrics.temporal_correlation(p, np.zeros((2,)))
    with pytest.raises(ValueError, match="T >= 2"):
        metrics.temporal_correlation(p[:, :, :1], g[:, :1])
    with pytest.raises(ValueError, match="mask"):
        metrics.temporal_correlation(p, g, np.ones(4, bool))
    with pytest.raises(TypeError, match="mask"):
        metrics.temporal_correlation(p, g, np.ones(3))


# ---------------------------------------------------------------- COL


def test_col_equals_the_reference_under_jit(rng, dtype, tol):
    pred = walks(rng, 10)
    got = jax.jit(metrics.collision_rate)(pred.astype(dtype))
    assert got.shape == (10,) and got.dtype == dtype
    want = ref_col(pred)
    assert np.any((want > 0) & (want < 100)) and np.any(want == 0), want  # the case is not trivial
    np.testing.assert_allclose(got, want, rtol=tol[0])  # multiples of 100 / S: the same collisions
    big = metrics.collision_rate(pred.astype(dtype), threshold=0.5, num_dense=45)  # whole horizon, T = 12
    np.testing.assert_allclose(big, ref_col(pred, threshold=0.5, num_dense=45), rtol=tol[0])
    assert np.all(big >= got)


def test_col_interpolates_between_steps_and_checks_only_the_first_dense_points():
    t = 6
    a = np.zeros((t, 2))
    a[:, 0] = np.linspace(-1.25, 1.25, t)  # agent 0 walks along x
    b = a * [-1, 1]  # agent 1 the mirror: they cross at x = 0 between steps 2 and 3 (never at a step)
    pred = np.stack([a, b])[:, None]  # (N=2, S=1, T, 2)
    steps = np.linalg.norm(a - b, axis=-1)
    assert steps.min() > 0.2  # no collision at the steps themselves
    np.testing.assert_array_equal(metrics.collision_rate(pred), [100.0, 100.0])  # crossing within the 14 points
    np.testing.assert_array_equal(metrics.collision_rate(pred, num_interp=1, num_dense=6), [0.0, 0.0])
    late = np.stack([a * 0 + [5, 5], np.stack([np.linspace(0, 5, t), np.linspace(0, 5, t)], -1)])[:, None]
    np.testing.assert_array_equal(metrics.collision_rate(late), [0.0, 0.0])  # meeting at the last step: after 3.25
    np.testing.assert_array_equal(metrics.collision_rate(late, num_dense=21), [100.0, 100.0])


def test_col_averages_over_samples_in_percent():
    a = np.zeros((4, 3, 2))  # agent 0 at the origin in all 4 samples
    b = np.full((4, 3, 2), 3.0)
    b[1] = 0.1  # agent 1 close to agent 0 in sample 1 only
    c = np.full((4, 3, 2), -3.0)  # agent 2 alone
    got = metrics.collision_rate(np.stack([a, b, c]))
    np.testing.assert_allclose(got, [25.0, 25.0, 0.0])


def test_col_single_agent_and_self_are_never_collisions():
    pred = np.zeros((1, 5, 12, 2))
    np.testing.assert_array_equal(metrics.collision_rate(pred), [0.0])
    np.testing.assert_array_equal(metrics.collision_rate(pred, threshold=10.0), [0.0])  # not even for thr > 1
    two = np.concatenate([pred, pred + 50])
    np.testing.assert_array_equal(metrics.collision_rate(two, np.array([True, False]), threshold=100.0), [0.0, 0.0])


def test_col_padding_changes_nothing_under_vmap(rng, dtype):
    scenes = [walks(rng, n).astype(dtype) for n in (2, 5, 7, 1)]
    n_max = 8
    pred = np.zeros((len(scenes), n_max, 6, 12, 2), dtype)
    mask = np.zeros((len(scenes), n_max), bool)
    for w, p in enumerate(scenes):
        pred[w, :len(p)], mask[w, :len(p)] = p, True
        pred[w, len(p):] = p[0]  # padded agents sitting on a real one: they would collide if counted
    pred[0, -1] = np.nan
    got = jax.jit(jax.vmap(metrics.collision_rate))(pred, mask)
    assert got.shape == (len(scenes), n_max) and got.dtype == dtype
    for w, p in enumerate(scenes):
        np.testing.assert_array_equal(got[w, :len(p)], metrics.collision_rate(p))
        np.testing.assert_allclose(got[w, :len(p)], ref_col(p), rtol=1e-6)
        assert np.all(got[w, len(p):] == 0)
    np.testing.assert_array_equal(got[3], 0.0)  # one real agent
    # the batched call (leading window axis) equals the vmap
    np.testing.assert_array_equal(metrics.collision_rate(pred, mask), got)


def test_col_bad_inputs_raise():
    p = np.zeros((3, 4, 6, 2))
    with pytest.raises(ValueError, match="pred"):
        metrics.collision_rate(np.zeros((4, 6, 2)))
    with pytest.raises(ValueError, match="mask"):
        metrics.collision_rate(p, np.ones(4, bool))
    with pytest.raises(TypeError, match="mask"):
        metrics.collision_rate(p, np.ones(3, np.int32))
    with pytest.raises(TypeError, match="pred"):
        metrics.collision_rate(p.astype(np.int32))
    with pytest.raises(ValueError, match="num_interp"):
        metrics.collision_rate(p, num_interp=0)
    with pytest.raises(ValueError, match="num_dense"):
        metrics.collision_rate(p, num_dense=0)
