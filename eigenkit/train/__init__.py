"""Training core shared by every experiment, usable for your own NNX models.

Data parallel over a 1-D ``"data"`` mesh with ``jax.jit`` + ``NamedSharding``; NNX used functionally
(split -> pure jitted step -> merge); parameter groups through ``optax.multi_transform`` / ``optax.partition`` with
:func:`label_params`; non-trainable state kept out of the optimiser; Orbax checkpoints with automatic resume.

Example::

    mesh = train.make_mesh()
    state = train.TrainState.create(model, optax.adam(1e-3), mesh=mesh)
    step = train.make_train_step(loss_fn, mesh=mesh)      # loss_fn(model, batch, key) -> (loss, metrics)
    state, history = train.fit(state, step, batches=lambda s: get_batch(s), num_steps=1000,
                               workdir="/tmp/run", config=config, mesh=mesh)
"""

from eigenkit.train._checkpoint import (
    RESUMABLE_KEYS,
    Checkpointer,
    CheckpointFallbackWarning,
    CheckpointMismatchError,
    CorruptCheckpointError,
)
from eigenkit.train._data import (
    classification_loss,
    classification_metrics,
    classifier_fns,
    epoch_batches,
    evaluate_dataset,
    padded_batches,
    process_slice,
)
from eigenkit.train._grain import ArraySource, MapBatches, grain_batches, is_stateful
from eigenkit.train._loop import MetricWriter, fit, progress
from eigenkit.train._mesh import (
    DATA_AXIS,
    data_sharding,
    initialize_distributed,
    make_mesh,
    replicated_sharding,
    shard_batch,
)
from eigenkit.train._pipeline import fit_and_evaluate, steps_per_run, subrun_config
from eigenkit.train._precision import Precision, float32_outputs
from eigenkit.train._state import TrainState, label_params, param_path
from eigenkit.train._step import accumulate, make_eval_step, make_train_step

__all__ = [
    "ArraySource",
    "CheckpointFallbackWarning",
    "CheckpointMismatchError",
    "Checkpointer",
    "CorruptCheckpointError",
    "DATA_AXIS",
    "MapBatches",
    "MetricWriter",
    "Precision",
    "RESUMABLE_KEYS",
    "TrainState",
    "accumulate",
    "classification_loss",
    "classification_metrics",
    "classifier_fns",
    "data_sharding",
    "epoch_batches",
    "evaluate_dataset",
    "fit",
    "float32_outputs",
    "fit_and_evaluate",
    "grain_batches",
    "initialize_distributed",
    "is_stateful",
    "label_params",
    "make_eval_step",
    "make_mesh",
    "make_train_step",
    "padded_batches",
    "param_path",
    "process_slice",
    "progress",
    "replicated_sharding",
    "shard_batch",
    "steps_per_run",
    "subrun_config",
]
