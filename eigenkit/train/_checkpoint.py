"""Orbax checkpoints under ``<workdir>/checkpoints`` with the run's config beside them
(eigenkit/ARCHITECTURE.md rule 11).

* Saves are atomic: Orbax writes into a temporary directory and renames it when complete, so a kill during a save
  leaves the previous checkpoint as the latest, and the unfinished one is ignored.
* Restores go into abstract targets carrying the shardings of a freshly initialised state, so a run saved on
  8 devices restores onto 1 (or the other way round).
* A checkpoint that does not belong to this run (different config, different model) raises
  :class:`CheckpointMismatchError`; nothing in the workdir is deleted or overwritten.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

from eigenkit.train._state import TrainState

#: Config keys that may change between a run and its resumption: training length, logging / checkpoint cadence,
#: and the human-readable labels of a preset. These are the names every eigenkit config uses (``num_steps`` or
#: ``epochs``, ``show_progress``, ...); :func:`eigenkit.train.fit` and the experiment runner take them from here.
RESUMABLE_KEYS = frozenset({
    "num_steps", "epochs", "checkpoint_every", "eval_every", "log_every", "show_progress", "max_to_keep",
    "description", "expected_runtime",
})


class CheckpointMismatchError(RuntimeError):
    """The workdir holds a checkpoint that cannot be resumed by this run."""


def _jsonable(config: Any) -> dict:
    if config is None:
        return {}
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    return json.loads(json.dumps(dict(config), default=str, sort_keys=True))


def _config_diff(saved: Mapping, current: Mapping, ignore: Iterable[str]) -> list[str]:
    ignore = set(ignore)
    keys = (set(saved) | set(current)) - ignore
    return [f"{k}: saved={saved.get(k, '<absent>')!r}, now={current.get(k, '<absent>')!r}"
            for k in sorted(keys) if saved.get(k, "<absent>") != current.get(k, "<absent>")]


class Checkpointer:
    """Periodic + final checkpoints of a :class:`TrainState` and automatic resume.

    Args:
      workdir: run directory; checkpoints go to ``workdir/checkpoints/<step>``, the config to
        ``workdir/config.json`` and into each checkpoint.
      config: the run's config (``ml_collections.ConfigDict`` or mapping), compared on resume.
      max_to_keep: number of checkpoints kept (older ones are deleted only after a newer one is complete).
      resumable_keys: config keys allowed to differ on resume.
    """

    def __init__(self, workdir: str | os.PathLike, *, config: Any = None, max_to_keep: int = 3,
                 resumable_keys: Iterable[str] = RESUMABLE_KEYS):
        self.workdir = pathlib.Path(workdir)
        self.directory = self.workdir / "checkpoints"
        if self.directory.exists() and not self.directory.is_dir():
            raise CheckpointMismatchError(f"{self.directory} exists and is not a directory; use another --workdir")
        self.config = _jsonable(config)
        self.resumable_keys = frozenset(resumable_keys)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._manager = ocp.CheckpointManager(
            self.directory.absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=False),
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, state: TrainState, *, force: bool = True) -> None:
        step = int(jax.device_get(state.step))
        if step in self._manager.all_steps():
            return
        self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state.checkpoint_items()),
                                    config=ocp.args.JsonSave(self.config)),
            force=force,
        )
        self._manager.wait_until_finished()
        if jax.process_index() == 0:
            tmp = self.workdir / "config.json.tmp"
            tmp.write_text(json.dumps(self.config, indent=2, sort_keys=True))
            os.replace(tmp, self.workdir / "config.json")

    def restore(self, template: TrainState, step: int | None = None) -> TrainState:
        """Restore ``step`` (default latest) into the shapes, dtypes and shardings of ``template``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointMismatchError(f"no checkpoint to restore in {self.directory}")
        try:
            saved_config = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config
        except Exception as e:  # noqa: BLE001 - any failure means the checkpoint is not ours
            raise CheckpointMismatchError(
                f"{self.directory}/{step} is not a readable eigenkit checkpoint ({type(e).__name__}: {e}). "
                "Nothing was changed; move it away or use a new --workdir."
            ) from e
        diff = _config_diff(saved_config or {}, self.config, self.resumable_keys)
        if diff:
            raise CheckpointMismatchError(
                f"the checkpoint in {self.directory} was written with a different config; refusing to resume "
                f"(nothing was changed; use a new --workdir to start over). Differences: " + "; ".join(diff)
            )
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
            template.checkpoint_items(),
        )
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            ).state
        except Exception as e:  # noqa: BLE001
            raise CheckpointMismatchError(
                f"the checkpoint {self.directory}/{step} does not match this model's parameters "
                f"({type(e).__name__}: {str(e)[:500]}). Nothing was changed; use a new --workdir."
            ) from e
        return template.replace_items(restored)

    def restore_or_init(self, template: TrainState) -> tuple[TrainState, bool]:
        """Resume from the latest checkpoint if there is one, else return ``template``. Returns (state, resumed)."""
        if self.latest_step() is None:
            return template, False
        return self.restore(template), True

    def close(self) -> None:
        self._manager.close()
