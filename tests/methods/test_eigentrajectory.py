"""EigenTrajectory pieces (eigenkit.methods.eigentrajectory): normalisation invariants, the ET descriptor against a
float64 NumPy reference (boolean-indexed groups, as the official model), anchors against scikit-learn, the loss's
three independent minima and masked best-of-S metrics against NumPy loops, jit / vmap over padded scenes, errors;
and, with the ETH/UCY data, the parity tables (a) and (b) of ../shared/methods/eigentrajectory.md §5.

Table tolerances: the tables are printed to 4 (a) and 3 (b) decimals, so besides the relative tolerance (1e-3 for (a),
1e-5 for (b)) an absolute one of half a unit in the last printed digit (5e-5, 5e-4) is allowed — the rounding of
the printed value, no more.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit import data, metrics
from eigenkit.methods import eigentrajectory as et

STATIC_DIST = {"eth": 0.419, "hotel": 0.353, "univ": 0.227, "zara1": 0.338, "zara2": 0.350}
KS = (1, 2, 3, 4, 6, 8, 12)
# (a) test split, SVD fitted on it, origin + rotation normalisation: mean L2 error (obs, future) per k in KS
TABLE_A = {
    "eth": [(.1428, .4653), (.0679, .2639), (.0509, .1467), (.0397, .1065), (.0269, .0654), (.0194, .0498),
            (.0064, .0329)],
    "hotel": [(.0590, .1566), (.0301, .0606), (.0233, .0484), (.0195, .0355), (.0143, .0273), (.0109, .0230),
              (.0029, .0171)],
    "univ": [(.0948, .3639), (.0415, .1256), (.0204, .0820), (.0144, .0452), (.0076, .0230), (.0049, .0147),
             (.0014, .0078)],
    "zara1": [(.0866, .3306), (.0361, .1011), (.0194, .0704), (.0129, .0378), (.0068, .0198), (.0043, .0124),
              (.0012, .0065)],
    "zara2": [(.0607, .2432), (.0232, .0794), (.0123, .0527), (.0081, .0278), (.0044, .0137), (.0028, .0086),
              (.0007, .0047)],
}
# (b) descriptor init on train + val with the y-flip: group sizes and top-6 singular values (obs, pred)
TABLE_B = {
    "eth": {"moving": (14456, [1393.261, 133.529, 39.059, 19.29, 11.261, 6.463],
                       [2827.592, 569.873, 122.959, 102.1, 37.78, 35.395]),
            "static": (55860, [597.55, 95.988, 35.152, 14.297, 10.823, 5.202],
                       [1240.553, 423.882, 98.528, 73.624, 31.187, 25.453])},
    "hotel": {"moving": (21142, [1684.035, 174.827, 54.991, 25.488, 16.002, 8.415],
                         [3405.7, 759.732, 163.662, 134.696, 50.246, 46.238]),
              "static": (47434, [462.461, 85.107, 31.641, 12.616, 9.836, 4.672],
                         [975.922, 376.016, 89.068, 65.368, 28.525, 22.704])},
    "univ": {"moving": (14060, [1394.762, 136.793, 41.261, 20.075, 12.76, 7.234],
                        [2905.697, 597.845, 124.664, 98.922, 36.53, 33.846]),
             "static": (9818, [80.822, 21.302, 10.314, 3.862, 3.505, 1.91],
                        [207.622, 101.96, 29.379, 19.966, 9.585, 7.339])},
    "zara1": {"moving": (20330, [1648.746, 180.505, 56.051, 25.959, 16.468, 8.793],
                         [3318.646, 783.647, 170.491, 138.359, 52.458, 47.543]),
              "static": (45926, [424.271, 81.298, 30.398, 12.29, 9.59, 4.661],
                         [898.117, 356.827, 85.201, 62.805, 27.546, 21.857])},
    "zara2": {"moving": (17646, [1533.526, 162.246, 51.889, 23.885, 15.384, 8.139],
                         [3093.436, 696.279, 155.276, 125.017, 47.004, 43.56]),
              "static": (41714, [445.517, 82.09, 30.454, 12.306, 9.622, 4.68],
                         [939.455, 362.446, 84.127, 63.018, 27.327, 21.914])},
}


# ---------------------------------------------------------------- float64 NumPy references (official semantics)

def ref_params(obs, scale=True):
    """TrajNorm.calculate_params with explicit cos/sin of the heading (no atan2)."""
    d = obs[:, -1] - obs[:, -3]
    n = np.linalg.norm(d, axis=-1)
    c, s = d[:, 0] / n, d[:, 1] / n
    rot = np.stack([np.stack([c, -s], 1), np.stack([s, c], 1)], 1)
    return obs[:, -1:], rot, (2 / n if scale else np.ones_like(n))[:, None, None]


def ref_norm(traj, p):
    return np.einsum("ntd,nde->nte", traj - p[0], p[1]) * p[2]


def ref_denorm(traj, p):
    return np.einsum("ntd,ned->nte", traj / p[2], p[1]) + p[0]


def ref_descriptor(obs, pred, static_dist, k):
    """model.calculate_parameters on flip-augmented data: boolean-indexed groups, float64 SVD."""
    obs = np.concatenate([obs, obs * [1, -1]])
    pred = np.concatenate([pred, pred * [1, -1]])
    mask = np.linalg.norm((obs[:, -1] - obs[:, -3]) / 2, axis=-1) > static_dist
    out = {}
    for name, sel, scale in (("moving", mask, True), ("static", ~mask, False)):
        p = ref_params(obs[sel], scale)
        groups = []
        for x in (obs[sel], pred[sel]):
            m = ref_norm(x, p).reshape(int(sel.sum()), -1).T
            u, s, _ = np.linalg.svd(m, full_matrices=False)
            groups.append((u[:, :k], s[:k]))
        out[name] = (int(sel.sum()), groups, p)
    return out


def walks(rng, n, t=20, step=0.3, dtype=np.float64):
    """Random walks with drift: a mix of moving and static agents."""
    v = rng.normal(0, step, (n, 1, 2)) * rng.integers(0, 2, (n, 1, 1))
    x = np.cumsum(v + rng.normal(0, step / 3, (n, t, 2)), axis=1) + rng.normal(0, 5, (n, 1, 2))
    return x.astype(dtype)


def projector(u):
    u = np.asarray(u, np.float64)
    return u @ u.T


@pytest.fixture(scope="module")
def synth():
    rng = np.random.default_rng(0)
    x = walks(rng, 300)
    return x[:, :8], x[:, 8:]


@pytest.fixture(scope="module")
def synth_fit(synth):
    obs, pred = synth
    desc = et.fit_descriptor(obs, pred, static_dist=0.15, k=6)
    anchors = et.fit_anchors(obs, pred, desc, num_anchors=5)
    return desc, anchors


# ---------------------------------------------------------------- normalisation

def test_normalize_denormalize_roundtrip(dtype, tol, rng):
    x = walks(rng, 50, dtype=dtype)
    for flags in ({}, {"scale": False}, {"rotation": False}, {"origin": False, "scale": False}):
        p = et.traj_norm_params(x[:, :8], **flags)
        z = jax.jit(et.normalize)(x, p)
        assert z.dtype == dtype and all(leaf.dtype == dtype for leaf in p)
        np.testing.assert_allclose(et.denormalize(z, p), x, rtol=tol[0], atol=50 * tol[1])
        np.testing.assert_allclose(et.normalize(et.denormalize(z, p), p), z, rtol=tol[0], atol=50 * tol[1])


def test_heading_on_plus_x_and_unit_last_step_speed(dtype, tol, rng):
    x = walks(rng, 40, dtype=dtype)
    p = et.traj_norm_params(x[:, :8])
    z = np.asarray(et.normalize(x[:, :8], p), np.float64)
    last = z[:, -1] - z[:, -3]
    np.testing.assert_allclose(z[:, -1], 0, atol=10 * tol[1])  # origin at the last observed step
    np.testing.assert_allclose(last[:, 1], 0, atol=10 * tol[1])  # heading along +x ...
    assert np.all(last[:, 0] > 0)  # ... pointing to +x
    np.testing.assert_allclose(np.linalg.norm(last, axis=-1) / 2, 1, rtol=10 * tol[0])  # per-step speed 1
    z_ns = np.asarray(et.normalize(x[:, :8], et.traj_norm_params(x[:, :8], scale=False)), np.float64)
    speed = np.linalg.norm(x[:, -1 - 12] - x[:, -3 - 12], axis=-1)  # obs steps 8 and 6
    np.testing.assert_allclose(np.linalg.norm(z_ns[:, -1] - z_ns[:, -3], axis=-1), speed, rtol=10 * tol[0])


def test_normalisation_equals_the_reference(rng):
    x = walks(rng, 30)
    p = et.traj_norm_params(x[:, :8])
    ref = ref_params(x[:, :8])
    np.testing.assert_allclose(p.rotation, ref[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(et.normalize(x, p), ref_norm(x, ref), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(et.denormalize(x, p), ref_denorm(x, ref), rtol=1e-10, atol=1e-10)


def test_moving_static_split_and_zero_step_agents():
    obs = np.zeros((4, 8, 2))
    obs[0, -1, 0], obs[1, -1, 0], obs[2, -1] = 0.9, 0.7, (0.3, 0.4)  # speeds 0.45, 0.35, 0.25, 0
    moving = et.is_moving(obs, 0.4)
    np.testing.assert_array_equal(moving, [True, False, False, False])
    params, m2 = et.et_norm_params(obs, 0.3)
    np.testing.assert_array_equal(m2, [True, True, False, False])
    np.testing.assert_allclose(params.scale, [2 / 0.9, 2 / 0.7, 1, 1])
    z = et.normalize(obs, params)
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(et.traj_norm_params(obs).scale))
    np.testing.assert_allclose(et.traj_norm_params(obs).rotation[3], np.eye(2))  # zero step: identity
    # jit-able and differentiable at a zero-step agent (padding)
    g = jax.grad(lambda o: et.normalize(o, et.traj_norm_params(o)).sum())(jnp.asarray(obs))
    assert np.all(np.isfinite(g))


# ---------------------------------------------------------------- descriptor

def test_truncated_svd_matches_numpy_and_full_rank_is_exact(dtype, rng):
    x = walks(rng, 60, t=12, dtype=dtype)
    u, s = et.truncated_svd(x, 24)
    assert u.shape == (24, 24) and u.dtype == dtype and s.dtype == dtype
    ref = np.linalg.svd(x.reshape(60, 24).astype(np.float64).T, full_matrices=False)
    np.testing.assert_allclose(s, ref[1], rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(projector(u[:, :5]), projector(ref[0][:, :5]), atol=1e-4 if dtype == np.float32
                               else 1e-10)
    c = et.project(x, u)
    np.testing.assert_allclose(et.reconstruct(c, u), x, rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-4 if dtype == np.float32 else 1e-10)


def test_reconstruction_error_non_increasing_in_k(rng):
    x = walks(rng, 200, t=12)
    u, _ = et.truncated_svd(x, 24)
    # the squared (Frobenius) error is monotone for nested subspaces; table (a)'s mean L2 error is checked below
    errs = [((np.asarray(et.reconstruct(et.project(x, u[:, :k]), u[:, :k])) - x) ** 2).sum() for k in range(1, 25)]
    assert all(b <= a * (1 + 1e-9) + 1e-12 for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-10


def test_fit_descriptor_equals_the_boolean_indexed_reference(synth):
    obs, pred = synth
    desc = et.fit_descriptor(obs, pred, static_dist=0.15, k=6)
    ref = ref_descriptor(obs, pred, 0.15, 6)
    assert 50 < ref["moving"][0] < 550 and desc.static_dist == 0.15
    for name in ("moving", "static"):
        basis = getattr(desc, name)
        (u_o, s_o), (u_p, s_p) = ref[name][1]
        np.testing.assert_allclose(basis.sv_obs, s_o, rtol=1e-10)
        np.testing.assert_allclose(basis.sv_pred, s_p, rtol=1e-10)
        np.testing.assert_allclose(projector(basis.u_obs), projector(u_o), atol=1e-9)
        np.testing.assert_allclose(projector(basis.u_pred), projector(u_p), atol=1e-9)
        assert basis.u_obs.shape == (16, 6) and basis.u_pred.shape == (24, 6)


def test_augmentation_flip_only_by_default(synth):
    obs, pred = synth
    o, p = et.augment_trajectories(obs, pred)
    assert len(o) == 600
    np.testing.assert_array_equal(o[300:], obs * [1, -1])
    np.testing.assert_array_equal(p[300:], pred * [1, -1])
    o4, p4 = et.augment_trajectories(obs, pred, reverse=True)
    assert len(o4) == 1200
    whole = np.concatenate([o, p], axis=1)[:, ::-1]
    np.testing.assert_array_equal(np.concatenate([o4[600:], p4[600:]], axis=1), whole)
    o0, _ = et.augment_trajectories(obs, pred, flip=False)
    np.testing.assert_array_equal(o0, obs)


def test_et_project_and_reconstruct_equal_the_grouped_reference(synth, dtype, tol):
    obs, pred = (a.astype(dtype) for a in synth)
    desc = et.fit_descriptor(obs, pred, static_dist=0.15, k=6)
    c_obs, c_pred, params, moving = jax.jit(et.et_project)(obs, desc, pred)
    assert c_obs.shape == (300, 6) and c_obs.dtype == dtype
    mask = np.linalg.norm((synth[0][:, -1] - synth[0][:, -3]) / 2, axis=-1) > 0.15
    np.testing.assert_array_equal(moving, mask)
    recon = jax.jit(et.et_reconstruct)(c_pred[:, None, :], desc, params, moving)[:, 0]
    for name, sel, scale in (("moving", mask, True), ("static", ~mask, False)):
        basis = getattr(desc, name)
        p = ref_params(synth[0][sel], scale)
        co = ref_norm(synth[0][sel], p).reshape(int(sel.sum()), -1) @ basis.u_obs.astype(np.float64)
        cp = ref_norm(synth[1][sel], p).reshape(int(sel.sum()), -1) @ basis.u_pred.astype(np.float64)
        y = ref_denorm((cp @ basis.u_pred.astype(np.float64).T).reshape(-1, 12, 2), p)
        np.testing.assert_allclose(c_obs[sel], co, rtol=tol[0], atol=100 * tol[1])
        np.testing.assert_allclose(c_pred[sel], cp, rtol=tol[0], atol=100 * tol[1])
        np.testing.assert_allclose(recon[sel], y, rtol=tol[0], atol=100 * tol[1])


def test_full_rank_descriptor_reconstructs_exactly(synth):
    """k = 2 T_o = 16: the observation basis is complete, so obs -> C_obs -> obs is exact in the world frame."""
    obs, pred = synth
    desc = et.fit_descriptor(obs, pred, static_dist=0.15, k=16)
    c_obs, _, params, moving = et.et_project(obs, desc)
    y = np.where(np.asarray(moving)[:, None, None], et.reconstruct(c_obs, desc.moving.u_obs),
                 et.reconstruct(c_obs, desc.static.u_obs))
    np.testing.assert_allclose(et.denormalize(y, params), obs, atol=1e-10)
    # the future basis at k = 16 < 24 is not complete: a positive error, smaller than at k = 6
    _, c16, params, moving = et.et_project(obs, desc, pred)
    desc6 = et.fit_descriptor(obs, pred, static_dist=0.15, k=6)
    _, c6, _, _ = et.et_project(obs, desc6, pred)
    e16 = np.abs(et.et_reconstruct(c16[:, None], desc, params, moving)[:, 0] - pred).mean()
    e6 = np.abs(et.et_reconstruct(c6[:, None], desc6, params, moving)[:, 0] - pred).mean()
    assert 0 < e16 < e6


# ---------------------------------------------------------------- anchors

def test_anchors_are_sklearn_kmeans_of_the_group_coefficients(synth, synth_fit):
    from sklearn.cluster import KMeans

    obs, pred = synth
    desc, anchors = synth_fit
    ref = ref_descriptor(obs, pred, 0.15, 6)
    o = np.concatenate([obs, obs * [1, -1]])
    p = np.concatenate([pred, pred * [1, -1]])
    mask = np.linalg.norm((o[:, -1] - o[:, -3]) / 2, axis=-1) > 0.15
    for name, sel in (("moving", mask), ("static", ~mask)):
        c = ref_norm(p[sel], ref[name][2]).reshape(int(sel.sum()), -1) @ getattr(desc, name).u_pred
        km = KMeans(n_clusters=5, random_state=0, init="k-means++", n_init=10).fit(c)
        got = getattr(anchors, name)
        assert got.shape == (5, 6)
        np.testing.assert_allclose(got, km.cluster_centers_, rtol=1e-8, atol=1e-8)
        inertia = ((c[:, None] - got[None]) ** 2).sum(-1).min(1).sum()
        np.testing.assert_allclose(inertia, km.inertia_, rtol=1e-8)


def test_refine_anchors_selects_the_group(synth_fit):
    desc, anchors = synth_fit
    res = np.zeros((2, 5, 6))
    out = et.refine_anchors(res, anchors, np.array([True, False]))
    np.testing.assert_allclose(out[0], anchors.moving)
    np.testing.assert_allclose(out[1], anchors.static)
    with pytest.raises(ValueError, match="moving must have shape"):
        et.refine_anchors(res, anchors, np.array([True]))
    with pytest.raises(ValueError, match=r"anchors.moving must have shape \(4, 6\)"):
        et.refine_anchors(np.zeros((2, 4, 6)), anchors, np.array([True, False]))


# ---------------------------------------------------------------- loss and metrics

def ref_loss(c, c_gt, fut, gt, mask):
    """model.forward's three losses with a loop over the real agents."""
    et_, ade, fde = [], [], []
    for n in np.flatnonzero(mask):
        et_.append(min(np.linalg.norm(c[n, s] - c_gt[n]) for s in range(c.shape[1])))
        err = np.linalg.norm(fut[n] - gt[n], axis=-1)  # (S, T)
        ade.append(err.mean(1).min())
        fde.append(err[:, -1].min())
    return np.mean(et_), np.mean(ade), np.mean(fde)


def test_three_minima_are_independent():
    gt = np.zeros((1, 2, 2))
    c_gt = np.zeros((1, 1))
    c = np.array([[[0.0], [1.0], [2.0]]])  # argmin in C: sample 0
    fut = np.zeros((1, 3, 2, 2))
    fut[0, 0] = 3.0  # sample 0 is far in space
    fut[0, 1] = [[0.0, 0.0], [1.0, 0.0]]  # sample 1: best ADE (0.5), FDE 1
    fut[0, 2] = [[1.5, 0.0], [0.0, 0.0]]  # sample 2: ADE 0.75, best FDE (0)
    loss, parts = et.eigentrajectory_loss(c, c_gt, fut, gt)
    np.testing.assert_allclose([parts["et"], parts["ade"], parts["fde"]], [0.0, 0.5, 0.0])
    np.testing.assert_allclose(loss, 0.5)  # one sample for all three terms: at best 2.5 (sample 1)


def test_loss_and_metrics_equal_numpy_loops_with_a_mask(rng, dtype, tol):
    n, s, t, k = 7, 5, 12, 6
    c, c_gt = rng.normal(size=(n, s, k)).astype(dtype), rng.normal(size=(n, k)).astype(dtype)
    fut, gt = rng.normal(size=(n, s, t, 2)).astype(dtype), rng.normal(size=(n, t, 2)).astype(dtype)
    mask = np.array([1, 1, 0, 1, 0, 1, 1], bool)
    fut[2] = np.nan  # padded agents may hold anything
    c[4] = np.inf
    loss, parts = jax.jit(et.eigentrajectory_loss)(c, c_gt, fut, gt, mask)
    want = ref_loss(c.astype(np.float64), c_gt, fut.astype(np.float64), gt, mask)
    np.testing.assert_allclose([parts["et"], parts["ade"], parts["fde"]], want, rtol=tol[0], atol=tol[1])
    np.testing.assert_allclose(loss, sum(want), rtol=tol[0])
    assert loss.dtype == dtype
    ade, fde = metrics.best_of_ade_fde(fut, gt)
    for i in np.flatnonzero(mask):
        err = np.linalg.norm(fut[i].astype(np.float64) - gt[i], axis=-1)
        np.testing.assert_allclose([ade[i], fde[i]], [err.mean(1).min(), err[:, -1].min()], rtol=tol[0])
    np.testing.assert_allclose(metrics.masked_mean(ade, mask), want[1], rtol=tol[0])
    # gradients ignore the padded agents, NaN included
    g = jax.grad(lambda c: et.eigentrajectory_loss(c, c_gt, fut, gt, mask)[0])(jnp.asarray(c))
    assert np.all(np.isfinite(g)) and np.all(g[~mask] == 0)


def test_nan_loss_becomes_zero():
    c = np.full((1, 2, 3), np.nan)
    loss, parts = et.eigentrajectory_loss(c, np.zeros((1, 3)), np.zeros((1, 2, 4, 2)), np.zeros((1, 4, 2)))
    assert float(loss) == 0.0 and np.isnan(parts["et"])


def test_loss_gradient_matches_finite_differences(rng):
    from jax.test_util import check_grads

    c, c_gt = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 2))
    fut, gt = rng.normal(size=(4, 3, 5, 2)), rng.normal(size=(4, 5, 2))
    check_grads(lambda c, f: et.eigentrajectory_loss(c, c_gt, f, gt)[0], (c, fut), order=1, modes=("rev",))


def test_forecast_jit_vmap_over_padded_scenes_equals_a_loop(synth, synth_fit, rng):
    """Scenes padded to 6 agents: vmap(jit) of forecast + loss == the per-scene loop on the real agents only."""
    desc, anchors = synth_fit
    obs, pred = synth
    counts = [2, 6, 3, 4]
    starts = np.concatenate([[0], np.cumsum(counts)])
    w = data.TrajectoryWindows(np.concatenate([obs, pred], 1)[:starts[-1]], starts, np.zeros(4, np.int32),
                               np.zeros(4), np.zeros(starts[-1]), ("s.txt",), 8, 12)
    traj, mask = data.pad_windows(w, 6)
    residual = rng.normal(0, 0.1, (4, 6, 5, 6))

    def scene(tr, res, m):
        o, p = tr[:, :8], tr[:, 8:]
        _, c_gt, _, _ = et.et_project(o, desc, p)
        fut, c = et.forecast(o, res, desc, anchors)
        loss, parts = et.eigentrajectory_loss(c, c_gt, fut, p, m)
        x = et.backbone_inputs(o, desc, m)
        return loss, parts, fut, x

    loss, parts, fut, x = jax.jit(jax.vmap(scene))(traj, residual, mask)
    assert fut.shape == (4, 6, 5, 12, 2) and x.shape == (4, 6, 8) and np.all(np.isfinite(fut))
    for i, n in enumerate(counts):
        want = jax.jit(scene)(traj[i, :n], residual[i, :n], np.ones(n, bool))
        np.testing.assert_allclose(loss[i], want[0], rtol=1e-10)
        np.testing.assert_allclose(fut[i, :n], want[2], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(x[i, :n], want[3], rtol=1e-10, atol=1e-10)
        centred = traj[i, :n, 7] - traj[i, :n, 7].mean(0)
        np.testing.assert_allclose(x[i, :n, 6:], centred, atol=1e-10)


# ---------------------------------------------------------------- errors

def test_bad_inputs_raise_clear_errors(synth, synth_fit):
    obs, pred = synth
    desc, _ = synth_fit
    with pytest.raises(ValueError, match=r"obs must have shape \(\*, 2\)"):
        et.traj_norm_params(np.zeros((3, 8, 3)))
    with pytest.raises(ValueError, match="at least 3 observed steps"):
        et.traj_norm_params(np.zeros((3, 2, 2)))
    with pytest.raises(TypeError, match="obs must have a floating dtype"):
        et.traj_norm_params(np.zeros((3, 8, 2), np.int32))
    with pytest.raises(ValueError, match="k must satisfy"):
        et.truncated_svd(obs, 17)
    with pytest.raises(ValueError, match="static group has .* fewer than k = 6"):
        et.fit_descriptor(obs, pred, static_dist=-1.0)
    with pytest.raises(ValueError, match="same number of agents"):
        et.fit_descriptor(obs, pred[:5], static_dist=0.1)
    bad = obs.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="obs contains NaN"):
        et.fit_descriptor(bad, pred, static_dist=0.1)
    with pytest.raises(ValueError, match="pred must have the agents of obs"):
        et.et_project(obs, desc, pred[:4])
    with pytest.raises(ValueError, match=r"u must have shape \(24, \*\)"):
        et.project(pred, desc.moving.u_obs)
    with pytest.raises(ValueError, match=r"mask must have shape \(2,\)"):
        et.eigentrajectory_loss(np.zeros((2, 3, 4)), np.zeros((2, 4)), np.zeros((2, 3, 5, 2)),
                                np.zeros((2, 5, 2)), np.ones(3, bool))
    with pytest.raises(ValueError, match=r"gt must have shape \(2, 5, 2\)"):
        et.eigentrajectory_loss(np.zeros((2, 3, 4)), np.zeros((2, 4)), np.zeros((2, 3, 5, 2)), np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match="fewer than num_anchors"):
        et.kmeans_anchors(np.zeros((3, 2)), 5)


# ---------------------------------------------------------------- ETH/UCY parity tables


def table_a_errors(w):
    """script/descriptor_evaluation.py, SVD branch: float32 data (the official loader's dtype), origin + rotation
    normalisation and SVD in float64, mean L2 reconstruction error against the float32 data."""
    obs = w.obs.astype(np.float32).astype(np.float64)
    pred = w.pred.astype(np.float32).astype(np.float64)
    params = et.traj_norm_params(obs, scale=False)
    on, pn = np.asarray(et.normalize(obs, params)), np.asarray(et.normalize(pred, params))
    u_o, _ = et.truncated_svd(on, 16)
    u_p, _ = et.truncated_svd(pn, 24)
    out = []
    for k in KS:
        ro = et.denormalize(et.reconstruct(et.project(on, u_o[:, :k]), u_o[:, :k]), params)
        rp = et.denormalize(et.reconstruct(et.project(pn, u_p[:, :k]), u_p[:, :k]), params)
        out.append((np.linalg.norm(np.asarray(ro) - obs, axis=-1).mean(),
                    np.linalg.norm(np.asarray(rp) - pred, axis=-1).mean()))
    full = et.denormalize(et.reconstruct(et.project(pn, u_p), u_p), params)
    return np.array(out), float(np.abs(np.asarray(full) - pred).max())


def check_table_b(ethucy_dir, scene):
    """Train + val in float32 (the official loader's ``torch.float``, which decides the moving / static split at
    exact ties; see ``fit_descriptor``), y-flip, float64 SVD."""
    tr, va = data.ethucy(scene, "train", root=ethucy_dir), data.ethucy(scene, "val", root=ethucy_dir)
    obs = np.concatenate([tr.obs, va.obs]).astype(np.float32)
    pred = np.concatenate([tr.pred, va.pred]).astype(np.float32)
    desc = et.fit_descriptor(obs, pred, static_dist=STATIC_DIST[scene], k=6)
    o, _ = et.augment_trajectories(obs, pred)
    moving = np.asarray(et.is_moving(o, STATIC_DIST[scene]))
    for name, sel in (("moving", moving), ("static", ~moving)):
        n, s_obs, s_pred = TABLE_B[scene][name]
        basis = getattr(desc, name)
        assert int(sel.sum()) == n, (scene, name)
        np.testing.assert_allclose(basis.sv_obs, s_obs, rtol=1e-5, atol=5e-4, err_msg=f"{scene} {name} obs")
        np.testing.assert_allclose(basis.sv_pred, s_pred, rtol=1e-5, atol=5e-4, err_msg=f"{scene} {name} pred")
    return desc


@pytest.mark.needs_data
@pytest.mark.parametrize("scene", ["eth", "hotel"])
def test_table_a_reconstruction_errors(ethucy_dir, scene):
    got, full_err = table_a_errors(data.ethucy(scene, "test", root=ethucy_dir))
    np.testing.assert_allclose(got, TABLE_A[scene], rtol=1e-3, atol=5e-5)
    assert full_err < 1e-10  # full rank: exact
    assert np.all(np.diff(got, axis=0) <= 1e-12)  # non-increasing in k


@pytest.mark.needs_data
def test_table_b_singular_values_eth(ethucy_dir):
    check_table_b(ethucy_dir, "eth")
    # float64 keeps one exact tie on the moving side (documented in fit_descriptor): 2 more moving agents
    tr, va = data.ethucy("eth", "train", root=ethucy_dir), data.ethucy("eth", "val", root=ethucy_dir)
    o, _ = et.augment_trajectories(np.concatenate([tr.obs, va.obs]), np.concatenate([tr.pred, va.pred]))
    speed = np.linalg.norm((o[:, -1] - o[:, -3]) / 2, axis=-1)
    assert int((speed > 0.419).sum()) == TABLE_B["eth"]["moving"][0] + 2
    tie = np.flatnonzero((speed > 0.419) & (speed < 0.419 + 1e-8))
    assert len(tie) == 2 and np.float32(speed[tie[0]]) == np.float32(0.419)


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("scene", ["univ", "zara1", "zara2"])
def test_table_a_other_scenes(ethucy_dir, scene):
    got, _ = table_a_errors(data.ethucy(scene, "test", root=ethucy_dir))
    np.testing.assert_allclose(got, TABLE_A[scene], rtol=1e-3, atol=5e-5)


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("scene", ["hotel", "univ", "zara1", "zara2"])
def test_table_b_other_scenes(ethucy_dir, scene):
    check_table_b(ethucy_dir, scene)
