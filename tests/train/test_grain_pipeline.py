"""The Grain input pipeline: sharded, seeded, prefetched batches whose position is part of the Orbax checkpoint, so
a run interrupted mid-epoch resumes onto exactly the batches of the uninterrupted run (1 process here; 2 processes in
test_multiprocess.py)."""

import jax
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from eigenkit import train

pytest.importorskip("grain", reason="install grain (pip install grain) for the Grain input pipeline")

N = 50  # records; batch 8 -> 6.25 batches per epoch, so step 9 is mid-epoch 1


def _arrays():
    r = np.random.default_rng(0)
    return {"x": r.normal(size=(N, 4)).astype(np.float32), "y": np.arange(N, dtype=np.int32)}


def test_batches_are_seeded_epoch_permutations_and_the_state_restores_mid_epoch():
    src = train.ArraySource(_arrays())
    it = train.grain_batches(src, 8, seed=1)
    ids = [next(it)["y"] for _ in range(12)]
    assert all(b.shape == (8,) for b in ids)
    # batches cut a stream of records in which each epoch is a permutation of the 50 records (the stream, not each
    # epoch, is batched: the last 2 records of epoch 0 open batch 6)
    stream = np.concatenate(ids)
    assert sorted(stream[:N].tolist()) == list(range(N)) and len(set(stream[N:].tolist())) == 96 - N
    assert not np.array_equal(stream[N:], stream[:96 - N])  # reshuffled each epoch
    again = train.grain_batches(src, 8, seed=1)
    np.testing.assert_array_equal(next(again)["y"], ids[0])
    assert not np.array_equal(next(train.grain_batches(src, 8, seed=2))["y"], ids[0])
    # the position after 9 batches, restored into a fresh iterator
    it = train.grain_batches(src, 8, seed=1)
    for _ in range(9):
        next(it)
    state = it.get_state()
    fresh = train.grain_batches(src, 8, seed=1)
    fresh.set_state(state)
    np.testing.assert_array_equal(next(fresh)["y"], ids[9])
    with pytest.raises(ValueError, match="larger than the 50 records"):
        train.grain_batches(src, 64, seed=0)
    with pytest.raises(ValueError, match="same leading size"):
        train.ArraySource({"x": np.zeros(3), "y": np.zeros(4)})


def _loss(model, batch, key):
    del key
    return jax.numpy.mean((model(batch["x"])[:, 0] - batch["y"].astype(jax.numpy.float32) / N) ** 2), {}


def _fit(workdir, num_steps, worker_count=0):
    mesh = train.make_mesh()
    state = train.TrainState.create(nnx.Linear(4, 1, rngs=nnx.Rngs(0)), optax.adam(0.05), mesh=mesh)
    batches = train.grain_batches(train.ArraySource(_arrays()), 8, seed=3, worker_count=worker_count)
    seen = []

    class Recording:  # records what the loop consumes, keeping the iterator's checkpointable interface
        def __next__(self):
            b = next(batches)
            seen.append(b["y"].copy())
            return b

        def get_state(self):
            return batches.get_state()

        def set_state(self, s):
            batches.set_state(s)

    config = ml_collections.ConfigDict(dict(seed=0, num_steps=num_steps))
    state, _ = train.fit(state, train.make_train_step(_loss, mesh=mesh), batches=Recording(), num_steps=num_steps,
                         workdir=workdir, config=config, mesh=mesh, checkpoint_every=3, log_every=1,
                         show_progress=False)
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state.params))], seen


@pytest.mark.parametrize("worker_count", [0, 2], ids=["in_process", "2_workers"])
def test_resume_mid_epoch_sees_the_uninterrupted_batches(tmp_path, worker_count):
    full, seen_full = _fit(tmp_path / "full", 14, worker_count)
    _, seen_a = _fit(tmp_path / "cut", 9, worker_count)  # stops after step 9 (a checkpoint at 9, mid-epoch 1)
    resumed, seen_b = _fit(tmp_path / "cut", 14, worker_count)
    assert len(seen_a) == 9 and len(seen_b) == 5
    for a, b in zip(seen_a + seen_b, seen_full):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(resumed, full):
        np.testing.assert_array_equal(a, b)


def test_a_step_indexed_checkpoint_is_refused_for_a_stateful_pipeline(tmp_path):
    mesh = train.make_mesh()
    state = train.TrainState.create(nnx.Linear(4, 1, rngs=nnx.Rngs(0)), optax.adam(0.05), mesh=mesh)
    step = train.make_train_step(_loss, mesh=mesh)
    config = ml_collections.ConfigDict(dict(seed=0, num_steps=3))
    train.fit(state, step, batches=train.epoch_batches(_arrays(), 8, seed=0), num_steps=3, workdir=tmp_path,
              config=config, mesh=mesh, show_progress=False)
    with pytest.raises(train.CheckpointMismatchError, match="holds no input-pipeline position"):
        train.fit(state, step, batches=train.grain_batches(train.ArraySource(_arrays()), 8, seed=0), num_steps=6,
                  workdir=tmp_path, config=config, mesh=mesh, show_progress=False)
