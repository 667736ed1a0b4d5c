"""The common training pipeline: state + jitted steps + :func:`fit` with checkpoints + exact evaluation.

A classification-style experiment is then a config, a model, an optimiser and a loss; see :func:`fit_and_evaluate`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from flax import nnx
from jax.sharding import Mesh

from eigenkit.train._data import epoch_batches, evaluate_dataset
from eigenkit.train._grain import ArraySource, grain_batches
from eigenkit.train._loop import fit
from eigenkit.train._mesh import make_mesh
from eigenkit.train._precision import Precision
from eigenkit.train._state import TrainState
from eigenkit.train._step import LossFn, MetricFn, make_eval_step, make_train_step


def steps_per_run(config: Any, num_examples: int) -> int:
    """``config.num_steps`` if the config has it, else ``config.epochs`` × ``num_examples // config.batch_size``.

    Raises:
      KeyError: the config has neither ``num_steps`` nor ``epochs``.
    """
    if "num_steps" in config:
        return int(config["num_steps"])
    if "epochs" in config:
        return int(config["epochs"]) * (num_examples // int(config["batch_size"]))
    raise KeyError("the config needs num_steps or epochs (and batch_size)")


def subrun_config(config: Any, *, drop: Iterable[str] = (), **values: Any) -> Any:
    """The effective config of one sub-run of a sweep: ``config`` without the sweep's keys ``drop`` (e.g. ``seeds``,
    ``head_dims``) and with the sub-run's own ``values`` (e.g. ``seed=1, head_dim=8``).

    Checkpoints compare this config on resume, so extending a sweep leaves finished sub-runs resumable.

    Example:
      >>> import ml_collections
      >>> from eigenkit import train
      >>> c = ml_collections.ConfigDict({"seeds": (0, 1), "head_dims": (4, 8), "learning_rate": 0.1})
      >>> sorted(train.subrun_config(c, drop=("seeds", "head_dims"), seed=1, head_dim=8).keys())
      ['head_dim', 'learning_rate', 'seed']
    """
    c = copy.deepcopy(config)
    if hasattr(c, "unlock"):
        c.unlock()
    for k in drop:
        if k in c:
            del c[k]
    for k, v in values.items():
        c[k] = v
    return c


def fit_and_evaluate(
    model: nnx.Module,
    tx: Any,
    loss_fn: LossFn,
    *,
    train_data: Mapping[str, np.ndarray] | Callable[[int], Any],
    config: Any,
    workdir: str | os.PathLike,
    seed: int,
    metric_fn: MetricFn | None = None,
    eval_data: Mapping[str, np.ndarray] | None = None,
    num_steps: int | None = None,
    mesh: Mesh | None = None,
    trainable: Any = nnx.Param,
    desc: str | None = None,
    precision: Precision | None = None,
) -> tuple[TrainState, dict[str, float]]:
    """Train ``model`` with ``tx`` on ``loss_fn`` (resuming from ``workdir``), then evaluate exactly on ``eval_data``.

    Reads the standard config keys: ``batch_size``, ``num_steps`` or ``epochs`` (see :func:`steps_per_run`),
    ``eval_batch_size`` (default ``batch_size``), ``eval_every``, ``checkpoint_every``, ``log_every``,
    ``show_progress`` (defaults 0, 0, 50, True), and ``input_pipeline``: ``"host"`` (default; arrays batched by
    :func:`epoch_batches`, a pure function of the step) or ``"grain"`` (:func:`grain_batches` with
    ``grain_workers`` worker processes, default 0; its position is checkpointed).

    Args:
      model, tx, loss_fn: as for :meth:`TrainState.create` and :func:`make_train_step`.
      train_data: arrays with a common leading axis (batched by :func:`epoch_batches` with ``seed``), or a function
        ``batch(step)`` of the step index.
      config: the run's effective config, saved with the checkpoints (see :func:`subrun_config` for sweeps).
      workdir: run directory (checkpoints, ``metrics.jsonl``, ``metrics.json``).
      seed: seed of the batch order and of the per-step keys.
      metric_fn, eval_data: masked metric **sums** (see :func:`classification_metrics`) and the arrays to average
        them over; evaluated every ``eval_every`` steps and at the end.
      num_steps: overrides the config's step count (needed when ``train_data`` is a function and the config counts
        epochs).
      mesh: default :func:`make_mesh` over all devices.
      trainable: NNX filter of the trained variables.
      desc: progress-bar label (default the workdir's name).
      precision: mixed-precision policy of the train and eval steps (:class:`Precision`; ``None``: none).

    Returns:
      The final state and the final evaluation metrics (``{}`` without ``eval_data``).
    """
    mesh = make_mesh() if mesh is None else mesh
    bs = int(config["batch_size"])
    if isinstance(train_data, Mapping):
        n = len(next(iter(train_data.values())))
        pipeline = str(config.get("input_pipeline", "host"))
        if pipeline == "grain":
            batches = grain_batches(ArraySource(train_data), bs, seed=seed,
                                    worker_count=int(config.get("grain_workers", 0)))
        elif pipeline == "host":
            batches = epoch_batches(train_data, bs, seed=seed)
        else:
            raise ValueError(f"config.input_pipeline must be 'host' (train.epoch_batches) or 'grain' "
                             f"(train.grain_batches), got {pipeline!r}")
        num_steps = steps_per_run(config, n) if num_steps is None else num_steps
    else:
        batches = train_data
        if num_steps is None:
            if "num_steps" not in config:
                raise ValueError("num_steps is needed when train_data is a function and the config has no num_steps")
            num_steps = int(config["num_steps"])
    state = TrainState.create(model, tx, mesh=mesh, trainable=trainable)
    if precision is not None:
        precision.check_opt_state(state.opt_state)
    step = make_train_step(loss_fn, mesh=mesh, precision=precision)
    eval_fn = None
    if (metric_fn is None) != (eval_data is None):
        raise ValueError("metric_fn and eval_data go together: pass both or neither")
    if metric_fn is not None:
        eval_step = make_eval_step(metric_fn, mesh=mesh, precision=precision)
        ebs = int(config.get("eval_batch_size", bs))

        def eval_fn(s):
            return evaluate_dataset(s, eval_step, eval_data, mesh, ebs)

    state, history = fit(
        state, step, batches=batches, num_steps=num_steps, workdir=workdir, config=config, mesh=mesh, seed=seed,
        eval_fn=eval_fn, eval_every=int(config.get("eval_every", 0)),
        checkpoint_every=int(config.get("checkpoint_every", 0)), log_every=int(config.get("log_every", 50)),
        show_progress=bool(config.get("show_progress", True)), desc=desc,
    )
    final = {}
    if eval_fn is not None:
        final = {k[len("eval/"):]: v for k, v in history[-1].items() if k.startswith("eval/")}
    return state, final
