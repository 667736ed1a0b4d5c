"""Pure, jitted train and eval steps on a :class:`TrainState`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from eigenkit.train._mesh import replicated_sharding
from eigenkit.train._precision import Precision, float32_outputs
from eigenkit.train._state import TrainState

LossFn = Callable[[nnx.Module, Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]
MetricFn = Callable[[nnx.Module, Any], dict[str, jax.Array]]


def make_train_step(loss_fn: LossFn, *, mesh: Mesh | None = None, donate: bool = True,
                    precision: Precision | None = None):
    """Build ``step(state, batch, key) -> (state, metrics)``, jitted.

    Args:
      loss_fn: ``loss_fn(model, batch, key) -> (scalar loss, dict of scalar metrics)``.
      mesh: when given, the new state and the metrics are replicated over it.
      donate: donate the input state's buffers (the caller must not reuse the old state).
      precision: a mixed-precision policy (:class:`Precision`): trainable parameters (but its ``keep_float32``)
        and floating batch leaves are cast to ``precision.compute`` for the forward pass; loss and metrics come back
        in float32. ``None``: everything in the dtypes it has.

    Returns:
      The jitted step. Its metrics are ``{"loss", **metrics, "grad_norm"}``.

    ``loss_fn(model, batch, key) -> (loss, metrics)`` gets the merged module in train mode; it may update
    non-trainable state in place (BatchNorm statistics), which is split back into ``state.rest``. The mean over
    the *global* batch is an ordinary mean of a sharded array, so losses and BatchNorm statistics are global and XLA
    all-reduces the gradient. With ``mesh``, the new state and metrics are constrained to be replicated.
    """

    def step(state: TrainState, batch: Any, key: jax.Array):
        def compute(params):
            # Fresh Variable objects at this trace level (BatchNorm mutates its statistics inside the grad trace).
            rest = jax.tree.map(lambda x: x, state.rest)
            model = nnx.merge(state.graphdef, params, rest)
            model.train()
            if precision is not None:
                precision.cast_params(model, state.trainable)
                loss, metrics = float32_outputs(loss_fn(model, precision.cast_batch(batch), key))
            else:
                loss, metrics = loss_fn(model, batch, key)
            # the filter that made state.params (not a hard-coded nnx.Param): frozen Param subclasses stay in rest
            _, _, rest = nnx.split(model, state.trainable, ...)
            return loss, (metrics, rest)

        (loss, (metrics, rest)), grads = jax.value_and_grad(compute, has_aux=True)(state.params)
        # optax mixes Python floats with int32 step counts (e.g. Adam's bias correction), which strict dtype
        # promotion rejects; the optimiser is traced under standard promotion so user code may run strict.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, **metrics, "grad_norm": optax.tree.norm(grads)}
        new = state.replace(step=state.step + 1, params=params, rest=rest, opt_state=opt_state)
        return new, metrics

    kwargs: dict[str, Any] = {"donate_argnums": (0,)} if donate else {}
    if mesh is not None:
        kwargs["out_shardings"] = replicated_sharding(mesh)
    return jax.jit(step, **kwargs)


def make_eval_step(metric_fn: MetricFn, *, mesh: Mesh | None = None, precision: Precision | None = None):
    """Build ``eval_step(state, batch) -> metrics`` (module in eval mode), jitted; ``precision`` as for
    :func:`make_train_step`.

    ``metric_fn`` should return **sums** over the batch (plus a ``"count"``) when a dataset is evaluated in
    several batches, so that :func:`accumulate` can average exactly.
    """

    def step(state: TrainState, batch: Any):
        model = nnx.merge(state.graphdef, state.params, state.rest)
        model.eval()
        if precision is not None:
            precision.cast_params(model, state.trainable)
            return float32_outputs(metric_fn(model, precision.cast_batch(batch)))
        return metric_fn(model, batch)

    kwargs: dict[str, Any] = {}
    if mesh is not None:
        kwargs["out_shardings"] = replicated_sharding(mesh)
    return jax.jit(step, **kwargs)


def accumulate(metric_sums: list[dict[str, Any]], *, count_key: str = "count") -> dict[str, float]:
    """Average per-batch metric sums by the total count: ``{k: Σ sums_k / Σ count}``."""
    if not metric_sums:
        raise ValueError("metric_sums is empty: evaluate at least one batch")
    totals = jax.tree.map(lambda *xs: jnp.sum(jnp.stack(xs)), *metric_sums)
    count = float(totals.pop(count_key))
    return {k: float(v) / count for k, v in totals.items()}
