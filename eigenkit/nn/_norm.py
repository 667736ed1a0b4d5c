"""Masked batch normalisation for padded batches (graphs padded to a node budget, eigenvalues padded to D).

Why masked: in a padded batch the zero-padded entries (padding nodes, padding columns of an ``n × n`` tensor,
padding eigenvalues) are not data. PyTorch's ``BatchNorm1d`` applied to the tensors that PyG code materialises
includes whatever padding those tensors contain (e.g. SPE's ``[N_sum, N_max, M]`` tensor, where the padded columns
are zeros), so its train-mode output depends on the batch's largest graph. :class:`MaskedBatchNorm` takes a boolean
``mask`` and computes the statistics over the masked-in entries only; ``masked=False`` reproduces the unmasked
(official PyTorch) behaviour, statistics over every entry it is given.

Multi-device: the statistics are plain means over the batch axes. Under ``jax.jit`` with the batch sharded over a
``"data"`` mesh axis (``NamedSharding``), XLA computes them over the *global* batch (cross-device reductions are
inserted automatically), i.e. this is synchronised BatchNorm with no ``axis_name`` plumbing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["MaskedBatchNorm"]


class MaskedBatchNorm(nnx.Module):
    """BatchNorm over all leading axes of ``x[..., F]``, with padding excluded from the statistics.

    Train mode (``use_running_average=False``)::

        μ = Σ m·x / Σ m,   σ² = Σ m·(x − μ)² / Σ m          (biased, used to normalise; as torch)
        y = γ (x − μ) / √(σ² + ε) + β
        running_μ ← (1 − p) running_μ + p μ;  running_σ² ← (1 − p) running_σ² + p σ² Σm/(Σm − 1)   (unbiased, as torch)

    Eval mode (``use_running_average=True``, set by ``model.eval()``) uses the running statistics.
    ``momentum`` is PyTorch's convention (weight of the *new* statistics, default 0.1), not flax's.

    Entries outside the mask are still transformed (with the masked statistics) but never influence them; callers
    drop or zero them downstream.

    Args:
      num_features: F, size of the last axis.
      masked: if False, ``mask`` is ignored and the statistics run over every entry (the official PyTorch behaviour).
      momentum: PyTorch-style momentum of the running statistics.
      epsilon: added to the variance.
      param_dtype: dtype of scale/bias and running statistics.
      rngs: unused (kept for the NNX constructor convention).

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> bn = MaskedBatchNorm(2, rngs=nnx.Rngs(0))
      >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]])
      >>> y = bn(x, mask=jnp.array([True, True, False]))
      >>> [round(float(v), 3) for v in y[:2, 0]]
      [-1.0, 1.0]
    """

    def __init__(
        self,
        num_features: int,
        *,
        masked: bool = True,
        momentum: float = 0.1,
        epsilon: float = 1e-5,
        param_dtype=jnp.float32,
        use_running_average: bool = False,
        rngs: nnx.Rngs | None = None,
    ):
        del rngs
        self.num_features = num_features
        self.masked = masked
        self.momentum = momentum
        self.epsilon = epsilon
        self.use_running_average = use_running_average
        self.scale = nnx.Param(jnp.ones((num_features,), param_dtype))
        self.bias = nnx.Param(jnp.zeros((num_features,), param_dtype))
        self.mean = nnx.BatchStat(jnp.zeros((num_features,), param_dtype))
        self.var = nnx.BatchStat(jnp.ones((num_features,), param_dtype))

    def __call__(self, x: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
        """Normalise ``x`` of shape ``(..., F)``; ``mask`` is boolean with shape ``x.shape[:-1]`` (or broadcastable)."""
        if x.shape[-1] != self.num_features:
            raise ValueError(f"x must have shape (..., {self.num_features}), got {x.shape}")
        dt = x.dtype
        if self.use_running_average:
            mean, var = self.mean[...].astype(dt), self.var[...].astype(dt)
        else:
            axes = tuple(range(x.ndim - 1))
            if mask is None or not self.masked:
                w = jnp.ones(x.shape[:-1] + (1,), dt)
            else:
                w = jnp.broadcast_to(mask, x.shape[:-1]).astype(dt)[..., None]
            count = jnp.maximum(jnp.sum(w), 1.0)
            mean = jnp.sum(w * x, axis=axes) / count
            var = jnp.sum(w * jnp.square(x - mean), axis=axes) / count
            p = self.momentum
            unbiased = var * (count / jnp.maximum(count - 1.0, 1.0))
            pd = self.mean[...].dtype
            self.mean[...] = ((1 - p) * self.mean[...] + p * jax.lax.stop_gradient(mean).astype(pd))
            self.var[...] = ((1 - p) * self.var[...] + p * jax.lax.stop_gradient(unbiased).astype(pd))
        y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
        return y * self.scale[...].astype(dt) + self.bias[...].astype(dt)
