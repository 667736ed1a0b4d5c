"""eigenkit.train: 1 device == 8 fake devices, exact resume, parameter groups, clear errors.

These tests use their own small model and data (no experiment is imported: eigenkit.train must stand alone).
"""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from eigenkit import data, train


class MLP(nnx.Module):
    """x (B, 64) -> Linear -> BatchNorm -> ReLU -> Dropout -> Linear -> logits (B, 10)."""

    def __init__(self, hidden: int, dropout: float, *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(64, hidden, rngs=rngs), nnx.BatchNorm(hidden, momentum=0.9, rngs=rngs)])
        self.drop, self.out = nnx.Dropout(dropout, rngs=rngs), nnx.Linear(hidden, 10, rngs=rngs)

    def __call__(self, x, *, rngs: nnx.Rngs | None = None):
        h = jax.nn.relu(self.layers[1](self.layers[0](x)))
        return self.out(self.drop(h, rngs=rngs))


def _config():
    return ml_collections.ConfigDict(dict(seed=0, hidden=32, dropout=0.1, batch_size=16, num_steps=6,
                                          learning_rate=3e-3, weight_decay=1e-4, checkpoint_every=3,
                                          show_progress=False))


def _data():
    images, labels = data.digits()
    x = images.reshape(len(images), -1)[:400] / np.float32(16.0)
    return x, labels[:400]


def _loss_fn(model, batch, key):
    return train.classification_loss(model(batch["x"], rngs=nnx.Rngs(dropout=key)), batch["y"])


def _state(config, mesh, tx=None):
    model = MLP(config.hidden, config.dropout, rngs=nnx.Rngs(config.seed))
    tx = optax.adamw(config.learning_rate, weight_decay=config.weight_decay) if tx is None else tx
    return train.TrainState.create(model, tx, mesh=mesh)


def _run(config, workdir, devices, num_steps=None, tx=None):
    mesh = train.make_mesh(devices)
    xtr, ytr = _data()
    state = _state(config, mesh, tx)
    step = train.make_train_step(_loss_fn, mesh=mesh)
    state, hist = train.fit(
        state, step, batches=train.epoch_batches({"x": xtr, "y": ytr}, config.batch_size, seed=config.seed),
        num_steps=config.num_steps if num_steps is None else num_steps, workdir=workdir, config=config,
        mesh=mesh, seed=config.seed, checkpoint_every=config.checkpoint_every, log_every=1, show_progress=False,
    )
    return state, hist


def _leaves(state):
    leaves = jax.tree.leaves(jax.device_get((state.params, state.rest)))
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
            for x in leaves]


def test_one_device_equals_eight_devices(tmp_path):
    assert jax.device_count() == 8, "conftest should provide 8 fake CPU devices"
    config = _config()
    # SGD, not Adam: Adam's first steps map float-rounding-sized gradients (e.g. of always-zero pixels) to
    # +-learning_rate, so the reduction order of the 8-way all-reduce would be visible in the parameters.
    tx = optax.sgd(0.05, momentum=0.9)
    s1, h1 = _run(config, tmp_path / "one", jax.devices()[:1], tx=tx)
    s8, h8 = _run(config, tmp_path / "eight", jax.devices(), tx=tx)
    assert int(s1.step) == int(s8.step) == config.num_steps
    # the batch really is split over 8 devices
    batch = train.shard_batch({"x": np.zeros((16, 64), np.float32)}, train.make_mesh())
    assert len(batch["x"].sharding.device_set) == 8
    for a, b in zip(_leaves(s1), _leaves(s8)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose([h["loss"] for h in h1], [h["loss"] for h in h8], rtol=2e-5)
    # parameters moved: the comparison is not between two untouched initialisations
    init = _state(config, train.make_mesh(jax.devices()[:1]))
    assert max(np.abs(a - b).max() for a, b in zip(_leaves(s1), _leaves(init))) > 1e-3


def test_resume_equals_uninterrupted(tmp_path):
    config = _config()
    full, _ = _run(config, tmp_path / "full", jax.devices())
    # "kill" after 3 steps (a checkpoint exists at step 3), then rerun the same command: it resumes
    part, _ = _run(config, tmp_path / "resumed", jax.devices(), num_steps=3)
    assert int(part.step) == 3
    resumed, hist = _run(config, tmp_path / "resumed", jax.devices())
    assert int(resumed.step) == config.num_steps
    assert [h["step"] for h in hist] == list(range(4, config.num_steps + 1))
    for a, b in zip(_leaves(full), _leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    opt_a, opt_b = jax.tree.leaves(full.opt_state), jax.tree.leaves(resumed.opt_state)
    for a, b in zip(opt_a, opt_b):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    saved = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert saved["num_steps"] == config.num_steps
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text())["step"] == config.num_steps


def test_resume_refuses_a_different_config(tmp_path):
    config = _config()
    _run(config, tmp_path, jax.devices(), num_steps=3)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    config.hidden = 8
    with pytest.raises(train.CheckpointMismatchError, match="different config.*hidden"):
        _run(config, tmp_path, jax.devices())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


def test_foreign_checkpoint_is_a_clear_error_and_untouched(tmp_path):
    config = _config()
    _run(config, tmp_path, jax.devices(), num_steps=3)
    # same config, different model: resuming must fail clearly, not load garbage
    mesh = train.make_mesh()
    other = MLP(8, 0.0, rngs=nnx.Rngs(0))
    state = train.TrainState.create(other, optax.adam(1e-3), mesh=mesh)
    ckpt = train.Checkpointer(tmp_path, config=config)
    with pytest.raises(train.CheckpointMismatchError, match="does not match this model"):
        ckpt.restore(state)
    assert (tmp_path / "checkpoints" / "3").is_dir()


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    config = _config()
    _run(config, tmp_path, jax.devices(), num_steps=3)
    step_dir = tmp_path / "checkpoints" / "3"
    for f in step_dir.rglob("*"):  # overwrite every file of the checkpoint with garbage
        if f.is_file():
            f.write_bytes(b"garbage")
    with pytest.raises(train.CheckpointMismatchError, match="none of the 1 checkpoints .* is intact"):
        _run(config, tmp_path, jax.devices())
    assert step_dir.is_dir()


def test_unfinished_save_is_not_latest(tmp_path):
    """An interrupted save leaves an Orbax temporary directory; resume uses the last complete checkpoint."""
    config = _config()
    _run(config, tmp_path, jax.devices(), num_steps=3)
    tmp = tmp_path / "checkpoints" / "6.orbax-checkpoint-tmp-123"
    tmp.mkdir()
    (tmp / "partial").write_bytes(b"half a file")
    ckpt = train.Checkpointer(tmp_path, config=config)
    assert ckpt.latest_step() == 3
    state, hist = _run(config, tmp_path, jax.devices())
    assert int(state.step) == config.num_steps


def test_batch_not_divisible_by_devices():
    mesh = train.make_mesh()
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        train.shard_batch({"x": np.zeros((12, 3), np.float32)}, mesh)
    with pytest.raises(ValueError, match="scalar"):
        train.shard_batch({"x": np.float32(1.0)}, mesh)


class _WithBuffer(nnx.Module):
    """A linear map with a fixed basis that must stay out of the optimiser (like SPE eigenvectors or anchors)."""

    class Basis(nnx.Variable):
        pass

    def __init__(self, rngs):
        self.basis = _WithBuffer.Basis(jnp.eye(4, dtype=jnp.float32))
        self.w = nnx.Param(jax.random.normal(rngs.params(), (4, 2), jnp.float32))
        self.slow = nnx.Param(jnp.ones((2,), jnp.float32))

    def __call__(self, x):
        return x @ self.basis[...] @ self.w[...] * self.slow[...]


def test_parameter_groups_and_buffers():
    model = _WithBuffer(nnx.Rngs(0))
    mesh = train.make_mesh()
    params = nnx.state(model, nnx.Param)
    labels = train.label_params(params, lambda path, _: "frozen" if path == "slow" else None, default="sgd")
    assert sorted(jax.tree.leaves(labels)) == ["frozen", "sgd"]
    tx = optax.multi_transform({"sgd": optax.sgd(0.1), "frozen": optax.set_to_zero()}, labels)
    state = train.TrainState.create(model, optax.chain(optax.add_decayed_weights(0.5), tx), mesh=mesh)
    assert "basis" not in state.params and "basis" in state.rest

    def loss_fn(m, batch, key):
        return jnp.mean((m(batch["x"]) - batch["y"]) ** 2), {}

    step = train.make_train_step(loss_fn, mesh=mesh, donate=False)
    batch = train.shard_batch({"x": np.ones((8, 4), np.float32), "y": np.zeros((8, 2), np.float32)}, mesh)
    new, metrics = step(state, batch, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(new.params["slow"][...]), np.ones(2, np.float32))
    assert not np.allclose(np.asarray(new.params["w"][...]), np.asarray(state.params["w"][...]))
    np.testing.assert_array_equal(np.asarray(new.rest["basis"][...]), np.eye(4, dtype=np.float32))
    assert np.isfinite(float(metrics["loss"]))
    with pytest.raises(TypeError, match="rules keys must be nnx.Variable subclasses"):
        train.label_params(params, {"(": "x"}, default="y")


def test_batchnorm_statistics_are_global(tmp_path):
    """BatchNorm running means on 8 devices equal those of the full batch on 1 device."""
    config = _config()
    tx = optax.sgd(0.05)
    s1, _ = _run(config, tmp_path / "a", jax.devices()[:1], num_steps=2, tx=tx)
    s8, _ = _run(config, tmp_path / "b", jax.devices(), num_steps=2, tx=tx)
    m1 = np.asarray(s1.rest["layers"][1]["mean"][...])
    m8 = np.asarray(s8.rest["layers"][1]["mean"][...])
    assert np.abs(m1).max() > 0
    np.testing.assert_allclose(m1, m8, rtol=1e-5, atol=1e-6)
