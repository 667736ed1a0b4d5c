"""A plain MLP block: ``n_layers − 1`` × [Linear → (masked) BatchNorm → ReLU → Dropout], then a final Linear.

This is the MLP used throughout the SPE / SignNet / GINE code bases (Graph-COM/SPE ``src/mlp.py``), with PyTorch's
``nn.Linear`` initialisation (kernel U(±1/√fan_in)); biases start at zero (torch draws them from the same uniform —
irrelevant for parity, which loads weights). Unlike the official code, ``n_layers = 1`` builds ``Linear(in → out)``
(the official one builds it with the hidden width as input, a latent bug).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from eigenkit.nn._norm import MaskedBatchNorm

__all__ = ["MLP", "torch_linear_init"]

#: PyTorch ``nn.Linear`` default kernel init: U(−1/√fan_in, 1/√fan_in).
torch_linear_init = jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class MLP(nnx.Module):
    """MLP over the last axis of ``x[..., in_features]`` → ``(..., out_features)``.

    Args:
      n_layers: number of Linear layers (>= 1).
      in_features, hidden_features, out_features: widths.
      use_bn: BatchNorm after each hidden Linear (statistics over all leading axes, padding excluded by ``mask``).
      masked_bn: if False, BatchNorm ignores the mask (official unmasked statistics).
      dropout: dropout rate after each hidden activation.
      param_dtype: parameter dtype.
      rngs: ``nnx.Rngs`` (``params``; ``dropout`` if dropout > 0).

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> mlp = MLP(3, 4, 16, 2, rngs=nnx.Rngs(0))
      >>> mlp(jnp.ones((5, 4))).shape
      (5, 2)
    """

    def __init__(
        self,
        n_layers: int,
        in_features: int,
        hidden_features: int,
        out_features: int,
        *,
        use_bn: bool = True,
        masked_bn: bool = True,
        dropout: float = 0.0,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_features, self.out_features = in_features, out_features
        lin = dict(kernel_init=torch_linear_init, param_dtype=param_dtype, rngs=rngs)
        widths = [in_features] + [hidden_features] * (n_layers - 1)
        self.hidden = nnx.List([nnx.Linear(a, hidden_features, **lin) for a in widths[:-1]])
        self.norms = nnx.List(
            [MaskedBatchNorm(hidden_features, masked=masked_bn, param_dtype=param_dtype) for _ in widths[:-1]]
            if use_bn else []
        )
        self.out = nnx.Linear(widths[-1], out_features, **lin)
        self.dropout = nnx.Dropout(dropout, rngs=rngs) if dropout > 0 else None

    def __call__(self, x: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
        """``x[..., in]`` → ``[..., out]``; ``mask`` (bool, ``x.shape[:-1]``) marks real entries for BatchNorm."""
        for i, layer in enumerate(self.hidden):
            x = layer(x)
            if len(self.norms):
                x = self.norms[i](x, mask=mask)
            x = jax.nn.relu(x)
            if self.dropout is not None:
                x = self.dropout(x)
        return self.out(x)
