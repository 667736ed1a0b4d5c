"""Input pipelines on Grain (PyPI ``grain``) whose iterator state is part of the Orbax checkpoint.

:func:`grain_batches` turns a random-access data source (any object with ``__len__`` and ``__getitem__`` returning
one record: :class:`ArraySource` for NumPy arrays, or an image folder) into an iterator of this process's
batches: records sharded by JAX process (``ShardByJaxProcess``: process ``p`` reads records ``p, p + P, ...`` of each
epoch's permutation), shuffled by ``seed`` anew each epoch, optional per-record transforms, batched to
``batch_size / process_count`` rows, read ahead by ``worker_count`` worker processes (0: in the calling process,
with ``num_threads`` reader threads).

:func:`eigenkit.train.fit` recognises such an iterator (anything with ``get_state`` / ``set_state``): each
checkpoint stores its position beside the model state (Grain's per-process JSON state, one file per process), and a
resumed run restores it, so it sees exactly the batches an uninterrupted run would have seen, mid-epoch included.
A position is tied to the process count (each process owns its shard): resume with as many processes as saved, or
use a step-indexed sampler (:func:`eigenkit.train.epoch_batches`), which restarts anywhere on any count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class ArraySource:
    """A Grain data source over NumPy arrays of equal length: record ``i`` is ``{k: v[i]}``.

    Raises:
      ValueError: no arrays, or arrays of different lengths.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        if not arrays:
            raise ValueError("arrays must hold at least one array")
        sizes = {k: len(v) for k, v in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"arrays must hold arrays with the same leading size, got {sizes}")
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self._n = next(iter(sizes.values()))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[i] for k, v in self.arrays.items()}

    def __repr__(self) -> str:  # part of Grain's saved state: a checkpoint refuses another source
        return f"ArraySource(n={self._n}, keys={sorted(self.arrays)})"


def grain_batches(source: Any, batch_size: int, *, seed: int, transforms: Sequence[Any] = (),
                  worker_count: int = 0, worker_buffer_size: int = 2, num_threads: int = 16,
                  prefetch: int = 64, num_epochs: int | None = None):
    """A Grain iterator over this process's slices of global batches of ``batch_size`` from ``source``.

    Args:
      source: random-access records (``len(source)``, ``source[i]`` -> a dict of arrays).
      batch_size: the **global** batch; each of the ``jax.process_count()`` processes yields
        ``batch_size / process_count`` rows (the last partial batch of the run is dropped).
      seed: shuffling seed (a new permutation every epoch).
      transforms: Grain ``MapTransform`` / ``RandomMapTransform`` objects applied per record before batching.
      worker_count: worker processes decoding ahead (0: in this process).
      worker_buffer_size, num_threads, prefetch: Grain's read-ahead knobs.
      num_epochs: ``None`` repeats forever (what :func:`eigenkit.train.fit` wants).

    Returns:
      A ``grain`` ``DataLoader`` iterator: ``next(it)`` -> dict of ``(batch_size / process_count, ...)`` arrays;
      ``it.get_state()`` / ``it.set_state(state)`` save and restore its position.

    Raises:
      ValueError: ``batch_size`` not positive, not divisible by the process count, or larger than this process's
        shard of ``source``.
    """
    import grain.python as gp
    import jax

    n_proc = jax.process_count()
    if batch_size < 1 or batch_size % n_proc:
        raise ValueError(f"batch_size must be a positive multiple of the {n_proc} processes, got {batch_size}")
    local = batch_size // n_proc
    if local > len(source) // n_proc:
        raise ValueError(f"batch_size {batch_size} is larger than the {len(source)} records of source "
                         f"({len(source) // n_proc} per process)")
    if worker_count:  # Grain's worker processes read absl flags, which a library caller has not parsed
        from absl import flags

        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
    shard = gp.ShardByJaxProcess(drop_remainder=True)
    sampler = gp.IndexSampler(len(source), shard, shuffle=True, num_epochs=num_epochs, seed=int(seed))
    loader = gp.DataLoader(data_source=source, sampler=sampler,
                           operations=[*transforms, gp.Batch(local, drop_remainder=True)],
                           worker_count=int(worker_count), worker_buffer_size=int(worker_buffer_size),
                           read_options=gp.ReadOptions(num_threads=int(num_threads),
                                                       prefetch_buffer_size=int(prefetch)))
    return iter(loader)


class MapBatches:
    """``fn`` applied to each batch of a stateful iterator, keeping its checkpointable position (``get_state`` /
    ``set_state`` forwarded): e.g. a Grain iterator of graph indices mapped to padded graph batches."""

    def __init__(self, iterator: Any, fn: Any):
        if not is_stateful(iterator):
            raise TypeError(f"iterator must have __next__, get_state and set_state, got {type(iterator).__name__}")
        self.iterator, self.fn = iterator, fn

    def __iter__(self):
        return self

    def __next__(self):
        return self.fn(next(self.iterator))

    def get_state(self):
        return self.iterator.get_state()

    def set_state(self, state) -> None:
        self.iterator.set_state(state)


def is_stateful(batches: Any) -> bool:
    """Whether ``batches`` is an iterator whose position is checkpointed (Grain's ``get_state`` / ``set_state``)."""
    return hasattr(batches, "get_state") and hasattr(batches, "set_state") and hasattr(batches, "__next__")
