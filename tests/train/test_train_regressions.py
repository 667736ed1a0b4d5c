"""Regression tests of issue 10's eigenkit.train defects (each failed on the code before the fix)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from eigenkit import train


class Frozen(nnx.Param):
    """A parameter type the user excludes from training (anchors, fixed bases, h-space directions)."""


class _Net(nnx.Module):
    def __init__(self, rngs):
        self.w = nnx.Param(jax.random.normal(rngs.params(), (4, 2), jnp.float32))
        self.anchors = Frozen(jnp.full((2,), 0.5, jnp.float32))
        self.bn = nnx.BatchNorm(2, rngs=rngs)

    def __call__(self, x):
        return self.bn(x @ self.w[...]) + self.anchors[...]


def _loss(m, batch, key):
    return jnp.mean((m(batch["x"]) - batch["y"]) ** 2), {}


def _batch(mesh):
    rng = np.random.default_rng(0)
    return train.shard_batch({"x": rng.normal(size=(8, 4)).astype(np.float32),
                              "y": np.zeros((8, 2), np.float32)}, mesh)


def test_trainable_filter_is_honoured_by_the_train_step():
    """Before: make_train_step re-split with nnx.Param, dropping the frozen Param subclass from ``rest``, and
    ``state.model()`` failed with 'Incorrect number of leaves'."""
    mesh = train.make_mesh()
    state = train.TrainState.create(_Net(nnx.Rngs(0)), optax.sgd(0.1), mesh=mesh,
                                    trainable=nnx.All(nnx.Param, nnx.Not(Frozen)))
    assert "anchors" in state.rest and "anchors" not in state.params
    step = train.make_train_step(_loss, mesh=mesh, donate=False)
    new, _ = step(state, _batch(mesh), jax.random.key(0))
    new, _ = step(new, _batch(mesh), jax.random.key(1))
    model = new.model()  # raised before the fix
    np.testing.assert_array_equal(np.asarray(model.anchors[...]), np.full(2, 0.5, np.float32))
    assert not np.array_equal(np.asarray(new.params["w"][...]), np.asarray(state.params["w"][...]))
    assert "anchors" in new.rest and "mean" in new.rest["bn"]


def _fit(config, workdir, num_steps):
    mesh = train.make_mesh()
    state = train.TrainState.create(_Net(nnx.Rngs(0)), optax.sgd(0.1), mesh=mesh)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = np.zeros((64, 2), np.float32)
    return train.fit(state, train.make_train_step(_loss, mesh=mesh), batches=train.epoch_batches(
        {"x": x, "y": y}, 8, seed=0), num_steps=num_steps, workdir=workdir, config=config, mesh=mesh,
        checkpoint_every=2, show_progress=False)


def test_resume_accepts_a_changed_progress_flag_and_length(tmp_path):
    """Before: RESUMABLE_KEYS named 'progress' / 'num_epochs' while configs use 'show_progress' / 'epochs'."""
    config = ml_collections.ConfigDict(dict(learning_rate=0.1, epochs=1, show_progress=False, num_steps=4))
    _fit(config, tmp_path, 4)
    config.show_progress, config.epochs, config.num_steps = True, 2, 6
    state, hist = _fit(config, tmp_path, 6)
    assert int(state.step) == 6 and hist[-1]["step"] == 6  # resumed at 4, trained 2 more steps
    config.learning_rate = 0.2  # a real change is still refused
    with pytest.raises(train.CheckpointMismatchError, match="learning_rate"):
        _fit(config, tmp_path, 8)


def test_extending_a_sweep_keeps_finished_subruns_resumable(tmp_path):
    """Before: a sweep handed its whole config (with ``head_dims``) to every sub-run, so extending the sweep made
    every finished sub-run's checkpoint 'a different config'. Sub-runs are now keyed by their own config."""
    sweep = ml_collections.ConfigDict(dict(learning_rate=0.1, head_dims=(4,), seeds=(0,)))
    sub = train.subrun_config(sweep, drop=("head_dims", "seeds"), head_dim=4, seed=0)
    _fit(sub, tmp_path, 4)
    sweep.head_dims = (4, 8)
    sweep.seeds = (0, 1, 2)
    sub2 = train.subrun_config(sweep, drop=("head_dims", "seeds"), head_dim=4, seed=0)
    state, hist = _fit(sub2, tmp_path, 4)  # resumes the finished sub-run instead of refusing
    assert int(state.step) == 4 and hist == []
    assert "head_dims" in sweep and sweep.head_dims == (4, 8)  # the sweep's config is not modified


def test_trainstate_create_rejects_what_would_train_nothing():
    with pytest.raises(TypeError, match="model must be an nnx.Module"):
        train.TrainState.create({"w": jnp.ones(3)}, optax.sgd(0.1))

    class NoParams(nnx.Module):
        def __init__(self):
            self.buf = nnx.BatchStat(jnp.zeros(2))

    with pytest.raises(ValueError, match="no variable of NoParams matches"):
        train.TrainState.create(NoParams(), optax.sgd(0.1))
    with pytest.raises(TypeError, match="tx must be an optax.GradientTransformation"):
        train.TrainState.create(_Net(nnx.Rngs(0)), 0.1)


def test_label_params_by_variable_type_and_callable():
    params = nnx.state(_Net(nnx.Rngs(0)), nnx.Param)
    labels = train.label_params(params, {Frozen: "frozen"}, default="sgd")
    assert labels["anchors"] == "frozen" and labels["w"] == "sgd"
    labels = train.label_params(params, lambda path, v: "w" if path == "w" else None, default="other")
    assert labels["w"] == "w" and labels["anchors"] == "other"
    tx = optax.multi_transform({"frozen": optax.set_to_zero(), "sgd": optax.sgd(1.0)},
                               train.label_params(params, {Frozen: "frozen"}, default="sgd"))
    grads = jax.tree.map(jnp.ones_like, params)
    with jax.numpy_dtype_promotion("standard"):
        upd, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(upd["anchors"][...]), 0.0)
    with pytest.raises(TypeError, match="mapping"):
        train.label_params(params, ["x"], default="y")


def test_fit_and_evaluate_pipeline(tmp_path):
    """The shared pipeline trains, checkpoints, evaluates exactly and resumes (a second call does no step)."""
    config = ml_collections.ConfigDict(dict(batch_size=8, num_steps=5, eval_batch_size=16, show_progress=False))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)

    def loss_fn(m, b, k):
        return train.classification_loss(m(b["x"]), b["y"])

    def metric_fn(m, b):
        return train.classification_metrics(m(b["x"]), b["y"], b["mask"])

    out = []
    for _ in range(2):
        state, test = train.fit_and_evaluate(_Net(nnx.Rngs(0)), optax.sgd(0.1), loss_fn, train_data={"x": x, "y": y},
                                             config=config, workdir=tmp_path, seed=0, metric_fn=metric_fn,
                                             eval_data={"x": x[:13], "y": y[:13]})
        out.append((int(state.step), test["accuracy"]))
    assert out[0] == out[1] and out[0][0] == 5 and 0.0 <= out[0][1] <= 1.0
    with pytest.raises(ValueError, match="pass both or neither"):
        train.fit_and_evaluate(_Net(nnx.Rngs(0)), optax.sgd(0.1), loss_fn, train_data={"x": x, "y": y},
                               config=config, workdir=tmp_path / "b", seed=0, metric_fn=metric_fn)
