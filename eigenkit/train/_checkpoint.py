"""Orbax checkpoints under ``<workdir>/checkpoints`` with the run's config beside them
(eigenkit/ARCHITECTURE.md rule 11).

* Saves are atomic: Orbax writes into a temporary directory and renames it when complete, so a kill during a save
  leaves the previous checkpoint as the latest, and the unfinished one is ignored.
* Restores go into abstract targets carrying the shardings of a freshly initialised state, so a run saved on
  8 devices restores onto 1 (or the other way round).
* A checkpoint that does not belong to this run (different config, different model) raises
  :class:`CheckpointMismatchError`; nothing in the workdir is deleted or overwritten.
* A checkpoint that is *damaged* (a flipped bit, overwritten or truncated files, a deleted item, a corrupt saved
  config or Orbax metadata) is told apart from a foreign one by a manifest written beside it after each save
  (``<workdir>/checkpoint_manifests/<step>.json``: size and BLAKE2b digest of every file, and the training time
  so far). :meth:`Checkpointer.restore_or_init` then falls back to the newest intact checkpoint, warns naming both
  steps, and moves the damaged one to ``<workdir>/corrupt_checkpoints/<step>`` — never deletes it. Checkpoints
  written before manifests existed are judged by whether they read: an unreadable config or unreadable arrays whose
  saved tree matches this model mean damage; a saved tree that differs means a different model (a refusal).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import warnings
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


class CorruptCheckpointError(CheckpointMismatchError):
    """A checkpoint of this run that cannot be read back intact (damaged files, not a different run)."""


class CheckpointFallbackWarning(UserWarning):
    """Resume skipped a damaged checkpoint and continued from an older intact one."""


def _digest(path: pathlib.Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(step_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    return {p.relative_to(step_dir).as_posix(): p for p in sorted(step_dir.rglob("*")) if p.is_file()}


class _Position:
    """What Grain's checkpoint handler needs of an iterator (``get_state`` -> bytes, ``set_state``,
    ``start_prefetch``), for a Grain iterator or any wrapper of one that forwards ``get_state`` / ``set_state``."""

    def __init__(self, iterator: Any):
        self.iterator = iterator

    def get_state(self) -> bytes:
        state = self.iterator.get_state()
        return state if isinstance(state, bytes) else json.dumps(state).encode()

    def set_state(self, state: bytes) -> None:
        self.iterator.set_state(state)

    def start_prefetch(self) -> None:
        if hasattr(self.iterator, "start_prefetch"):
            self.iterator.start_prefetch()


def _sync(tag: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(tag)


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
        self.manifests = self.workdir / "checkpoint_manifests"
        self.quarantine = self.workdir / "corrupt_checkpoints"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._manager = ocp.CheckpointManager(
            self.directory.absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=False),
        )
        #: training time (s) recorded with the checkpoint last restored (0 for a fresh run)
        self.restored_train_time_s = 0.0

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, state: TrainState, *, force: bool = True, train_time_s: float | None = None,
             data_iterator: Any = None) -> None:
        """Save ``state`` at its step (a no-op if that step exists), then its manifest; ``train_time_s`` (the
        training time up to this step) is recorded in the manifest so a resumed run reports the whole time.
        ``data_iterator`` (a Grain iterator, :func:`eigenkit.train.grain_batches`): its position is saved too, one
        state file per process."""
        step = int(jax.device_get(state.step))
        if step in self._manager.all_steps():
            return
        items = dict(state=ocp.args.StandardSave(state.checkpoint_items()), config=ocp.args.JsonSave(self.config))
        if data_iterator is not None:
            import grain.python as gp

            items["data"] = gp.PyGrainCheckpointSave(_Position(data_iterator))
        self._manager.save(step, args=ocp.args.Composite(**items), force=force)
        self._manager.wait_until_finished()
        if jax.process_index() == 0:
            self._write_manifest(step, train_time_s)
            tmp = self.workdir / "config.json.tmp"
            tmp.write_text(json.dumps(self.config, indent=2, sort_keys=True))
            os.replace(tmp, self.workdir / "config.json")
            kept = {str(s) for s in self._manager.all_steps()}
            for m in self.manifests.glob("*.json"):  # manifests of checkpoints Orbax garbage-collected
                if m.stem not in kept:
                    m.unlink()
        _sync(f"eigenkit_checkpoint_saved_{step}")

    def _write_manifest(self, step: int, train_time_s: float | None) -> None:
        files = {name: [p.stat().st_size, _digest(p)] for name, p in _files(self.directory / str(step)).items()}
        self.manifests.mkdir(exist_ok=True)
        tmp = self.manifests / f"{step}.json.tmp"
        tmp.write_text(json.dumps({"step": step, "train_time_s": train_time_s, "files": files}, indent=1))
        os.replace(tmp, self.manifests / f"{step}.json")

    def _manifest(self, step: int) -> dict | None:
        path = self.manifests / f"{step}.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:
            return {"files": None}

    def verify(self, step: int) -> str | None:
        """Why checkpoint ``step`` is damaged according to its manifest (``None``: intact, or no manifest)."""
        manifest = self._manifest(step)
        if manifest is None:
            return None
        if not isinstance(manifest.get("files"), dict):
            return f"its manifest {self.manifests / f'{step}.json'} is unreadable"
        have = _files(self.directory / str(step))
        for name, (size, digest) in manifest["files"].items():
            p = have.get(name)
            if p is None:
                return f"{name} is missing"
            if p.stat().st_size != size:
                return f"{name} has {p.stat().st_size} bytes, {size} were written"
            if _digest(p) != digest:
                return f"{name} differs from what was written"
        return None

    def restore(self, template: TrainState, step: int | None = None, *, data_iterator: Any = None) -> TrainState:
        """Restore ``step`` (default latest) into the shapes, dtypes and shardings of ``template``; with
        ``data_iterator``, also its saved position (in place)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointMismatchError(f"no checkpoint to restore in {self.directory}")
        damage = self.verify(step)
        if damage is not None:
            raise CorruptCheckpointError(f"{self.directory}/{step} is damaged: {damage}")
        try:
            saved_config = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config
        except Exception as e:  # noqa: BLE001 - unreadable: damaged (ours) or not an eigenkit checkpoint
            raise CorruptCheckpointError(
                f"{self.directory}/{step} is not a readable eigenkit checkpoint ({type(e).__name__}: {e})"
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
            if self._tree_matches(step, abstract) is not False:  # our tree or unreadable metadata: damage
                raise CorruptCheckpointError(
                    f"{self.directory}/{step} has this model's tree but its arrays do not read back "
                    f"({type(e).__name__}: {str(e)[:300]})") from e
            raise CheckpointMismatchError(
                f"the checkpoint {self.directory}/{step} does not match this model's parameters "
                f"({type(e).__name__}: {str(e)[:500]}). Nothing was changed; use a new --workdir."
            ) from e
        if data_iterator is not None:
            self._restore_iterator(step, data_iterator)
        manifest = self._manifest(step) or {}
        self.restored_train_time_s = float(manifest.get("train_time_s") or 0.0)
        return template.replace_items(restored)

    def _restore_iterator(self, step: int, data_iterator: Any) -> None:
        import grain.python as gp

        item = self.directory / str(step) / "data"
        if not item.is_dir():
            raise CheckpointMismatchError(
                f"{self.directory}/{step} holds no input-pipeline position, but this run reads a stateful (Grain) "
                "iterator; it was written by a run with a step-indexed sampler. Nothing was changed; use a new "
                "--workdir.")
        mine = item / f"process_{jax.process_index()}-of-{jax.process_count()}.json"
        if not mine.exists():
            saved = sorted(p.name for p in item.glob("process_*.json"))
            raise CheckpointMismatchError(
                f"{self.directory}/{step} saved the input-pipeline positions of another process count ({saved}); "
                f"this run has {jax.process_count()} process(es). Resume with as many processes as saved. Nothing "
                "was changed.")
        try:
            self._manager.restore(step, args=ocp.args.Composite(
                data=gp.PyGrainCheckpointRestore(_Position(data_iterator))))
        except Exception as e:  # noqa: BLE001 - a readable file that Grain rejects: another pipeline
            raise CheckpointMismatchError(
                f"the input-pipeline position saved in {self.directory}/{step} does not fit this run's pipeline "
                f"({type(e).__name__}: {str(e)[:300]}). Nothing was changed; use a new --workdir.") from e

    def _tree_matches(self, step: int, abstract) -> bool | None:
        """Whether the saved state tree of ``step`` has the paths, shapes and dtypes of ``abstract`` (``None``:
        its metadata is unreadable, which says nothing about the model)."""
        try:
            meta = self._manager.item_metadata(step)["state"]
            saved = {jax.tree_util.keystr(p): (tuple(m.shape), str(m.dtype))
                     for p, m in jax.tree_util.tree_flatten_with_path(meta)[0]}
        except Exception:  # noqa: BLE001
            return None
        want = {jax.tree_util.keystr(p): (tuple(a.shape), str(a.dtype))
                for p, a in jax.tree_util.tree_flatten_with_path(abstract)[0]}
        return saved == want

    def set_aside(self, step: int) -> pathlib.Path:
        """Move checkpoint ``step`` (and its manifest) to ``<workdir>/corrupt_checkpoints/``; returns where."""
        dest = self.quarantine / str(step)
        if jax.process_index() == 0:
            self.quarantine.mkdir(exist_ok=True)
            n = 1
            while dest.exists():  # a second damaged checkpoint of the same step keeps the first
                dest, n = self.quarantine / f"{step}.{n}", n + 1
            shutil.move(str(self.directory / str(step)), str(dest))
            manifest = self.manifests / f"{step}.json"
            if manifest.exists():
                shutil.move(str(manifest), str(dest.with_name(dest.name + ".manifest.json")))
        _sync(f"eigenkit_checkpoint_aside_{step}")
        self._manager.reload()
        return dest

    def restore_or_init(self, template: TrainState, *, data_iterator: Any = None) -> tuple[TrainState, bool]:
        """Resume from the newest intact checkpoint if there is one, else return ``template``.

        Damaged checkpoints newer than the intact one are moved aside (:meth:`set_aside`) with a
        :class:`CheckpointFallbackWarning` naming both steps. If no checkpoint is intact, nothing is moved and
        :class:`CorruptCheckpointError` says so. A checkpoint of a different config or model is refused
        (:class:`CheckpointMismatchError`), never skipped. Returns ``(state, resumed)``."""
        steps = self.all_steps()
        if not steps:
            return template, False
        damaged: list[tuple[int, str]] = []
        for step in reversed(steps):
            try:
                state = self.restore(template, step, data_iterator=data_iterator)
            except CorruptCheckpointError as e:
                damaged.append((step, str(e)))
                continue
            for bad, why in damaged:
                dest = self.set_aside(bad)
                msg = (f"checkpoint {bad} cannot be resumed ({why}); resuming from the intact checkpoint {step} "
                       f"instead. The damaged one was moved to {dest} (not deleted).")
                warnings.warn(msg, CheckpointFallbackWarning, stacklevel=2)
                if jax.process_index() == 0:
                    print(f"WARNING: {msg}", flush=True)
            return state, True
        raise CorruptCheckpointError(
            f"none of the {len(steps)} checkpoints in {self.directory} is intact (newest: {damaged[0][1]}). "
            f"Nothing was changed; move {self.directory} aside to start over.")

    def close(self) -> None:
        self._manager.close()
