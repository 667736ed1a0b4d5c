"""EigenTrajectory models (eigenkit.methods.eigentrajectory): the masked social transformer (padding invariance,
permutation equivariance, one-agent scenes), the ET-space wrapper and its Euclidean twin (frozen constants untouched
by AdamW, zero backbone = anchors / last position, padding invariance, jit / vmap), the twin's loss against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from eigenkit import train
from eigenkit.methods import eigentrajectory as et


def walks(rng, n, t=20, step=0.3):
    v = rng.normal(0, step, (n, 1, 2)) * rng.integers(0, 2, (n, 1, 1))
    return np.cumsum(v + rng.normal(0, step / 3, (n, t, 2)), axis=1) + rng.normal(0, 5, (n, 1, 2))


@pytest.fixture(scope="module")
def fitted():
    x = walks(np.random.default_rng(0), 300)
    desc = et.fit_descriptor(x[:, :8], x[:, 8:], static_dist=0.15, k=4)
    return desc, et.fit_anchors(x[:, :8], x[:, 8:], desc, num_anchors=5, n_init=1)


def tiny(i, o, rngs):
    return et.SocialTransformer(i, o, hidden=8, heads=2, layers=1, rngs=rngs)


class Zero(nnx.Module):
    def __init__(self, i, o, rngs):
        self.w = nnx.Param(jnp.zeros((i, o), jnp.float32))

    def __call__(self, x, pos, mask):
        return x.astype(jnp.float32) @ self.w[...]


# ---------------------------------------------------------------- backbone


def test_transformer_ignores_padding_and_is_permutation_equivariant(rng):
    net = et.SocialTransformer(5, 3, hidden=8, heads=2, layers=2, rngs=nnx.Rngs(0))
    x, pos = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    y = np.asarray(net(x, pos))
    garbage = rng.normal(0, 100, (3, 5)).astype(np.float32)
    xp, pp = np.concatenate([x, garbage]), np.concatenate([pos, garbage[:, :2]])
    mask = np.arange(7) < 4
    np.testing.assert_allclose(np.asarray(net(xp, pp, mask))[:4], y, rtol=1e-5, atol=1e-5)
    perm = rng.permutation(4)
    np.testing.assert_allclose(np.asarray(net(x[perm], pos[perm])), y[perm], rtol=1e-5, atol=1e-5)
    one = np.asarray(net(x[:1], pos[:1]))  # a one-agent scene: attention to itself only
    assert one.shape == (1, 3) and np.all(np.isfinite(one))
    jit_y = jax.jit(lambda a, b: net(a, b))(x, pos)
    np.testing.assert_allclose(np.asarray(jit_y), y, rtol=1e-5, atol=1e-5)


def test_transformer_gradient_finite_at_coincident_agents():
    net = et.SocialTransformer(2, 2, hidden=8, heads=2, layers=1, rngs=nnx.Rngs(0))
    pos = jnp.zeros((3, 2), jnp.float32)  # every pairwise distance is 0
    g = jax.grad(lambda p: jnp.sum(net(jnp.ones((3, 2), jnp.float32), p)))(pos)
    assert np.all(np.isfinite(np.asarray(g)))


def test_transformer_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        et.SocialTransformer(2, 2, hidden=6, heads=4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="layers"):
        et.SocialTransformer(2, 2, layers=0, rngs=nnx.Rngs(0))
    net = et.SocialTransformer(3, 2, hidden=8, heads=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="x"):
        net(jnp.ones((4, 2), jnp.float32), jnp.ones((4, 2), jnp.float32))
    with pytest.raises(ValueError, match="mask"):
        net(jnp.ones((4, 3), jnp.float32), jnp.ones((4, 2), jnp.float32), jnp.ones((5,), bool))


# ---------------------------------------------------------------- ET space and the Euclidean twin


def test_constants_stay_out_of_the_optimiser(fitted):
    desc, anchors = fitted
    model = et.ETForecaster(desc, anchors, tiny, rngs=nnx.Rngs(0))
    _, params, rest = nnx.split(model, nnx.Param, ...)
    names = {train.param_path(p) for p, _ in jax.tree_util.tree_leaves_with_path(rest)}
    assert any("anchors" in n for n in names) and any("u_pred" in n for n in names)
    assert not any("anchors" in train.param_path(p) or "/u/" in "/" + train.param_path(p) + "/"
                   for p, _ in jax.tree_util.tree_leaves_with_path(params))
    x = walks(np.random.default_rng(1), 6).astype(np.float32)

    def loss_fn(m, batch, key):
        futures, c = m(batch[:, :8])
        _, c_gt, _, _ = et.et_project(batch[:, :8], m.descriptor(), batch[:, 8:])
        return et.eigentrajectory_loss(c, c_gt, futures, batch[:, 8:])

    state = train.TrainState.create(model, optax.adamw(1e-2, weight_decay=0.5))
    before = jax.tree.map(np.array, state.rest)
    step = train.make_train_step(loss_fn)
    for i in range(3):
        state, _ = step(state, jnp.asarray(x), jax.random.key(i))
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, state.rest), before)
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.params),
                                                         jax.tree.leaves(nnx.split(model, nnx.Param, ...)[1]),
                                                         strict=True))


def test_zero_backbone_gives_anchors_and_last_position(fitted):
    desc, anchors = fitted
    obs = walks(np.random.default_rng(2), 5)[:, :8].astype(np.float32)
    model = et.ETForecaster(desc, anchors, Zero, rngs=nnx.Rngs(0))
    futures, c = model(obs)
    ref_f, ref_c = et.forecast(jnp.asarray(obs), jnp.zeros((5, 5, 4), jnp.float32), desc, anchors)
    np.testing.assert_allclose(np.asarray(c), np.asarray(ref_c), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(futures), np.asarray(ref_f), rtol=1e-5, atol=1e-5)
    twin = et.EuclideanForecaster(0.15, Zero, num_samples=3, rngs=nnx.Rngs(0))
    f = np.asarray(twin(obs))  # normalised zero = the origin = the last observed position, every step and sample
    assert f.shape == (5, 3, 12, 2)
    np.testing.assert_allclose(f, np.broadcast_to(obs[:, None, -1:, :], f.shape), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("space", ["et", "euclidean"])
def test_forecasters_ignore_padding_and_vmap_equals_a_loop(fitted, space):
    desc, anchors = fitted
    model = (et.ETForecaster(desc, anchors, tiny, rngs=nnx.Rngs(0)) if space == "et"
             else et.EuclideanForecaster(0.15, tiny, num_samples=5, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(3)
    obs = walks(rng, 4)[:, :8].astype(np.float32)
    alone = model(obs)
    alone = np.asarray(alone[0] if space == "et" else alone)
    padded = np.concatenate([obs, np.zeros((3, 8, 2), np.float32)])
    mask = np.arange(7) < 4
    np.testing.assert_allclose(np.asarray(et.scene_forecasts(model, padded[None], mask[None]))[0, :4], alone,
                               rtol=1e-4, atol=1e-4)
    scenes = np.stack([padded, np.roll(padded, 2, axis=0)])
    masks = np.stack([mask, np.roll(mask, 2)])
    batched = jax.jit(lambda o, m: et.scene_forecasts(model, o, m))(scenes, masks)
    for b in range(2):
        out = model(jnp.asarray(scenes[b]), jnp.asarray(masks[b]))
        out = out[0] if space == "et" else out
        np.testing.assert_allclose(np.asarray(batched[b])[masks[b]], np.asarray(out)[masks[b]], rtol=1e-4,
                                   atol=1e-4)


def test_euclidean_loss_equals_numpy(rng):
    fut, gt = rng.normal(size=(4, 3, 5, 2)), rng.normal(size=(4, 5, 2))
    mask = np.array([True, True, False, True])
    fut[2] = np.nan  # a padded agent holding garbage
    loss, parts = et.euclidean_loss(jnp.asarray(fut), jnp.asarray(gt), jnp.asarray(mask))
    err = np.linalg.norm(fut - gt[:, None], axis=-1)
    ade, fde = err.mean(-1).min(-1)[mask].mean(), err[..., -1].min(-1)[mask].mean()
    np.testing.assert_allclose([float(parts["ade"]), float(parts["fde"]), float(loss)], [ade, fde, ade + fde],
                               rtol=1e-12)


def test_forecaster_errors(fitted):
    desc, anchors = fitted
    with pytest.raises(TypeError, match="ETDescriptor"):
        et.ETForecaster(anchors, anchors, tiny, rngs=nnx.Rngs(0))
    model = et.ETForecaster(desc, anchors, tiny, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="obs"):
        model(jnp.ones((3, 7, 2), jnp.float32))  # T_o = 7, the descriptor was fitted with 8
    with pytest.raises(ValueError, match="mask"):
        et.scene_forecasts(model, jnp.ones((2, 3, 8, 2), jnp.float32), jnp.ones((2, 4), bool))
