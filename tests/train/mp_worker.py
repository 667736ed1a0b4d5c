"""One process of a multi-process training run, launched by tests/train/test_multiprocess.py (not a test itself).

``python tests/train/mp_worker.py WORKDIR NUM_STEPS [DIE_AT_STEP]``; the process layout comes from the environment
(``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, ``XLA_FLAGS`` for the CPU device count),
exactly as a user launches one process per host. Trains a small MLP on sklearn's digits with
:func:`eigenkit.train.fit` (global batch 16 sharded over all devices of all processes, checkpoints every 3 steps)
and process 0 writes the final parameters to ``WORKDIR/params.npz``. With ``DIE_AT_STEP``, process 1 kills itself
(SIGKILL, no clean-up) when asked for that step's batch. With ``MP_PIPELINE=grain`` the batches come from a Grain
iterator (:func:`eigenkit.train.grain_batches`) and each process logs the record ids it consumed to ``seen_<i>.jsonl``.
"""

import os
import signal
import sys


class GrainLog:
    """A Grain iterator that appends the record ids of each batch it hands out to a JSONL file."""

    def __init__(self, iterator, path):
        self.iterator, self.path = iterator, path

    def __next__(self):
        import json

        batch = next(self.iterator)
        with open(self.path, "a") as f:
            f.write(json.dumps(batch["i"].tolist()) + "\n")
        return batch

    def get_state(self):
        return self.iterator.get_state()

    def set_state(self, state):
        self.iterator.set_state(state)


def main() -> None:
    workdir, num_steps = sys.argv[1], int(sys.argv[2])
    die_at = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    from eigenkit import train

    train.initialize_distributed()
    import jax
    import ml_collections
    import numpy as np
    import optax
    from flax import nnx

    from eigenkit import data

    images, labels = data.digits()
    arrays = {"x": images.reshape(len(images), -1)[:400].astype(np.float32) / np.float32(16.0),
              "y": labels[:400].astype(np.int32)}
    model = nnx.Sequential(nnx.Linear(64, 32, rngs=nnx.Rngs(0)), jax.nn.relu, nnx.Linear(32, 10, rngs=nnx.Rngs(1)))
    mesh = train.make_mesh()
    # SGD, not Adam: Adam turns rounding-sized gradients into +-lr steps, which would expose reduction order
    state = train.TrainState.create(model, optax.sgd(0.05, momentum=0.9), mesh=mesh)
    step_fn = train.make_train_step(lambda m, b, k: train.classification_loss(m(b["x"]), b["y"]), mesh=mesh)
    if os.environ.get("MP_PIPELINE") == "grain":  # a Grain iterator whose position is checkpointed
        arrays["i"] = np.arange(400, dtype=np.int32)  # record ids, logged
        batches = GrainLog(train.grain_batches(train.ArraySource(arrays), 16, seed=0),
                           os.path.join(workdir, f"seen_{jax.process_index()}.jsonl"))
    else:
        local = train.epoch_batches(arrays, 16, seed=0)

        def batches(step):
            if step == die_at and jax.process_index() == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return local(step)

    config = ml_collections.ConfigDict(dict(seed=0, num_steps=num_steps, batch_size=16))
    state, _ = train.fit(state, step_fn, batches=batches, num_steps=num_steps, workdir=workdir, config=config,
                         mesh=mesh, checkpoint_every=3, log_every=1, show_progress=False)
    leaves = jax.tree_util.tree_flatten_with_path(state.params)[0]
    params = {jax.tree_util.keystr(p): np.asarray(x.addressable_data(0)) for p, x in leaves}  # replicated
    if jax.process_index() == 0:
        np.savez(os.path.join(workdir, "params.npz"), **params)
    print(f"process {jax.process_index()}/{jax.process_count()} done at step {int(state.step)} on "
          f"{jax.device_count()} devices", flush=True)


if __name__ == "__main__":
    main()
