"""The training loop: deterministic data and keys per step, Orbax resume, JSONL metrics, progress bar."""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from eigenkit.train._checkpoint import Checkpointer
from eigenkit.train._grain import is_stateful
from eigenkit.train._mesh import make_mesh, shard_batch
from eigenkit.train._state import TrainState


def _to_float(tree: dict[str, Any]) -> dict[str, float]:
    return {k: float(np.asarray(v)) for k, v in jax.device_get(tree).items()}


class MetricWriter:
    """Appends one JSON object per line to ``workdir/metrics.jsonl`` (process 0 only).

    ``resume_from(step)`` (a run resumed at ``step``) keeps the records up to ``step`` and drops the later ones of
    the interrupted run, which the resumed run replays, so every record appears once; a record the resumed run
    would repeat at ``step`` itself (the final evaluation of a finished run) is not written twice."""

    def __init__(self, workdir: str | os.PathLike):
        self.path = pathlib.Path(workdir) / "metrics.jsonl"
        self.enabled = jax.process_index() == 0
        self._seen: set[tuple[int, frozenset]] = set()

    def resume_from(self, step: int) -> None:
        if not (self.enabled and self.path.exists()):
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut by a kill mid-write
                continue
            if int(rec.get("step", -1)) <= step:
                kept.append(line)
                self._seen.add((int(rec["step"]), frozenset(k for k in rec if k not in ("step", "time_s"))))
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept))
        os.replace(tmp, self.path)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        key = (step, frozenset(k for k in metrics if k != "time_s"))
        if self.enabled and key not in self._seen:
            self._seen.add(key)
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")


def progress(iterable, *, total: int | None = None, desc: str = "", enabled: bool = True, initial: int = 0):
    """The one progress convention: a tqdm bar on stderr labelled ``desc`` (e.g. ``"gcr acc softmax seed 0"``)
    when tqdm is installed and ``enabled``, else the plain iterable. Redrawn every 2 s on a terminal and every
    30 s in a log file, so long runs never go silent and logs stay short."""
    if not enabled or jax.process_index() != 0:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    import sys

    interval = 2.0 if sys.stderr.isatty() else 30.0
    return tqdm(iterable, total=total, desc=desc, initial=initial, dynamic_ncols=True, mininterval=interval,
                maxinterval=max(interval, 10.0))


def fit(
    state: TrainState,
    train_step: Callable,
    *,
    batches: Callable[[int], Any] | Any,
    num_steps: int,
    workdir: str | os.PathLike,
    config: Any = None,
    mesh: Mesh | None = None,
    seed: int = 0,
    eval_fn: Callable[[TrainState], dict[str, float]] | None = None,
    eval_every: int = 0,
    checkpoint_every: int = 0,
    log_every: int = 50,
    max_to_keep: int = 3,
    show_progress: bool = True,
    desc: str | None = None,
) -> tuple[TrainState, list[dict[str, float]]]:
    """Train ``state`` for ``num_steps`` optimiser steps, resuming from ``workdir`` if it holds a checkpoint.

    Determinism: the batch of step ``s`` is ``batches(s)`` (a pure function of the step index: host numpy, this
    process's slice of the global batch) or, for a stateful iterator (a Grain one from :func:`grain_batches`),
    ``next(batches)`` with the iterator's position saved in every checkpoint and restored on resume; the key of
    step ``s`` is ``jax.random.fold_in(jax.random.key(seed), s)``. Either way a resumed run replays exactly what the
    uninterrupted run would have done.

    Writes ``metrics.jsonl`` (train metrics every ``log_every`` steps, eval metrics as ``eval/...``; ``time_s`` is
    the training time since step 0, across resumes), checkpoints every ``checkpoint_every`` steps (0: only the final
    one) and a final ``metrics.json`` (``train_time_s``: the whole run's, resumed segments included). A damaged
    latest checkpoint is skipped for the newest intact one (:meth:`Checkpointer.restore_or_init`).

    Args:
      state: the initial state (replaced by the latest checkpoint of ``workdir`` if there is one).
      train_step: from :func:`make_train_step`.
      batches: ``batches(step)`` -> this process's host batch of that step, or a stateful iterator of them.
      num_steps: total number of optimiser steps (including those of a resumed run).
      workdir: run directory.
      config: the run's config, saved with and compared against the checkpoints.
      mesh: where batches are sharded (default all devices).
      seed: base of the per-step keys.
      eval_fn: ``eval_fn(state) -> metrics``; called every ``eval_every`` steps and at the end.
      desc: progress-bar label (default the workdir's name).

    Returns:
      The final state and the list of logged records.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    mesh = make_mesh() if mesh is None else mesh
    workdir = pathlib.Path(workdir)
    stateful = is_stateful(batches)
    data_iterator = batches if stateful else None
    ckpt = Checkpointer(workdir, config=config, max_to_keep=max_to_keep)
    state, resumed = ckpt.restore_or_init(state, data_iterator=data_iterator)
    start = int(jax.device_get(state.step))
    writer = MetricWriter(workdir)
    if resumed:
        writer.resume_from(start)
    base_key = jax.random.key(seed)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter() - ckpt.restored_train_time_s  # time since step 0, across resumes
    if resumed and jax.process_index() == 0:
        print(f"resumed from {ckpt.directory} at step {start}", flush=True)

    def log(step: int, metrics: dict[str, float]) -> None:
        rec = {"step": step, **metrics}
        history.append(rec)
        writer.write(step, metrics)

    for step in progress(range(start, num_steps), total=num_steps, initial=start, desc=desc or str(workdir.name),
                         enabled=show_progress):
        batch = shard_batch(next(batches) if stateful else batches(step), mesh)
        state, metrics = train_step(state, batch, jax.random.fold_in(base_key, step))
        done = step + 1
        if log_every and (done % log_every == 0 or done == num_steps):
            log(done, {**_to_float(metrics), "time_s": time.perf_counter() - t0})
        if eval_fn is not None and eval_every and done % eval_every == 0 and done != num_steps:
            log(done, {f"eval/{k}": v for k, v in eval_fn(state).items()})
        if checkpoint_every and done % checkpoint_every == 0:
            ckpt.save(state, train_time_s=time.perf_counter() - t0, data_iterator=data_iterator)

    final: dict[str, float] = {}
    if eval_fn is not None:
        final = {f"eval/{k}": float(v) for k, v in eval_fn(state).items()}
        log(int(jax.device_get(state.step)), final)
    ckpt.save(state, train_time_s=time.perf_counter() - t0, data_iterator=data_iterator)
    ckpt.close()
    if jax.process_index() == 0:
        out = {"step": int(jax.device_get(state.step)), **final, "train_time_s": time.perf_counter() - t0}
        (workdir / "metrics.json").write_text(json.dumps(out, indent=2))
    return state, history
