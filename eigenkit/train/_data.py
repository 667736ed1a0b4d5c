"""Host-side batching shared by the experiments: deterministic training batches and exact padded evaluation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from eigenkit.train._mesh import shard_batch
from eigenkit.train._step import accumulate


def _check_arrays(arrays: Mapping[str, np.ndarray], name: str) -> int:
    if not arrays:
        raise ValueError(f"{name} must be a non-empty mapping of arrays")
    sizes = {k: len(v) for k, v in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{name} must hold arrays with the same leading size, got {sizes}")
    return next(iter(sizes.values()))


def process_slice(batch_size: int, process_index: int | None = None, process_count: int | None = None
                  ) -> tuple[int, int]:
    """``(start, size)`` of this process's contiguous rows in a global batch of ``batch_size`` (defaults: this
    JAX process of all of them), the slice :func:`eigenkit.train.shard_batch` expects from each process.

    Raises:
      ValueError: ``batch_size`` is not divisible by the number of processes.
    """
    if process_index is None or process_count is None:
        process_index, process_count = jax.process_index(), jax.process_count()
    if batch_size % process_count:
        raise ValueError(f"the global batch size {batch_size} is not divisible by the {process_count} processes")
    per = batch_size // process_count
    return process_index * per, per


def epoch_batches(arrays: Mapping[str, np.ndarray], batch_size: int, *, seed: int, process_index: int | None = None,
                  process_count: int | None = None) -> Callable[[int], dict]:
    """``batch(step)`` = a pure function of the step index: epoch-wise seeded permutations, last partial batch dropped.

    Being a function of the step (not an iterator's position) is what makes a resumed run see exactly the batches
    of the uninterrupted run. Batch ``step`` is drawn from epoch ``step // (n // batch_size)``. ``batch_size`` is the
    global batch; with several JAX processes each returns its own contiguous slice of it (:func:`process_slice`),
    so the global batch of a step is the same for any process count.

    Raises:
      ValueError: ``batch_size`` is larger than the data or not divisible by the process count, or the arrays
        differ in length.
    """
    n = _check_arrays(arrays, "arrays")
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must satisfy 1 <= batch_size <= {n} (the number of examples), got {batch_size}")
    per_epoch = n // batch_size
    start, per = process_slice(batch_size, process_index, process_count)

    def batch(step: int) -> dict[str, np.ndarray]:
        epoch, i = divmod(step, per_epoch)
        idx = np.random.default_rng([seed, epoch]).permutation(n)[i * batch_size:(i + 1) * batch_size]
        idx = idx[start:start + per]
        return {k: v[idx] for k, v in arrays.items()}

    return batch


def padded_batches(arrays: Mapping[str, np.ndarray], batch_size: int, n_devices: int, *,
                   process_index: int | None = None, process_count: int | None = None
                   ) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """Consecutive global batches covering every example once, each padded with zeros to a multiple of
    ``n_devices`` (all devices of all processes).

    Yields ``(batch, n_valid)``; ``batch["mask"]`` is float32 1 on real examples and 0 on padding. The batch size
    is rounded down to a multiple of ``n_devices`` (at least ``n_devices``). With several JAX processes each
    yields its contiguous slice of every padded global batch and ``n_valid`` counts the real rows of that slice.
    """
    n = _check_arrays(arrays, "arrays")
    bs = max(n_devices, (batch_size // n_devices) * n_devices)
    for i in range(0, n, bs):
        chunk = {k: v[i:i + bs] for k, v in arrays.items()}
        valid = len(next(iter(chunk.values())))
        pad = (-valid) % n_devices
        if pad:
            chunk = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in chunk.items()}
        chunk["mask"] = (np.arange(valid + pad) < valid).astype(np.float32)
        start, per = process_slice(valid + pad, process_index, process_count)
        if per != valid + pad:
            chunk = {k: v[start:start + per] for k, v in chunk.items()}
        yield chunk, int(chunk["mask"].sum())


def evaluate_dataset(state: Any, eval_step: Callable, arrays: Mapping[str, np.ndarray], mesh: Mesh,
                     batch_size: int) -> dict[str, float]:
    """Exact dataset averages of ``eval_step``'s masked sums (see :func:`classification_metrics`)."""
    sums = [eval_step(state, shard_batch(b, mesh)) for b, _ in padded_batches(arrays, batch_size, mesh.devices.size)]
    return accumulate(sums)


def classification_loss(logits, labels) -> tuple[Any, dict[str, Any]]:
    """Mean softmax cross-entropy and accuracy of ``logits`` (B, C) against int ``labels`` (B,)."""
    import optax

    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    acc = jnp.mean((jnp.argmax(logits, -1).astype(labels.dtype) == labels).astype(jnp.float32))
    return loss, {"accuracy": acc}


def classification_metrics(logits, labels, mask=None) -> dict[str, Any]:
    """Masked sums for :func:`evaluate_dataset`: ``{"accuracy": Σ mask·correct, "count": Σ mask}``."""
    correct = (jnp.argmax(logits, -1).astype(labels.dtype) == labels).astype(jnp.float32)
    mask = jnp.ones_like(correct) if mask is None else mask.astype(jnp.float32)
    return {"accuracy": jnp.sum(correct * mask), "count": jnp.sum(mask)}


def classifier_fns(*, dropout: bool = False, x: str = "x", y: str = "y") -> tuple[Callable, Callable]:
    """``(loss_fn, metric_fn)`` of a classifier ``model(batch[x]) -> logits`` for :func:`make_train_step` /
    :func:`make_eval_step`: mean cross-entropy + accuracy, and masked sums for exact evaluation.

    Args:
      dropout: the model takes ``rngs=nnx.Rngs(dropout=key)`` in training (and nothing at evaluation).
      x, y: batch keys of the inputs and the integer labels.

    Example:
      >>> from eigenkit import train
      >>> loss_fn, metric_fn = train.classifier_fns(dropout=True)
    """
    from flax import nnx

    def loss_fn(model, batch, key):
        logits = model(batch[x], rngs=nnx.Rngs(dropout=key)) if dropout else model(batch[x])
        return classification_loss(logits, batch[y])

    def metric_fn(model, batch):
        return classification_metrics(model(batch[x]), batch[y], batch["mask"])

    return loss_fn, metric_fn
