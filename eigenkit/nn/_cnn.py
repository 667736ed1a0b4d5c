"""A small convolutional feature extractor for 28×28-ish images (Fashion-MNIST / MNIST scale)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from flax import nnx

if TYPE_CHECKING:
    from jaxtyping import Array, Float

__all__ = ["SmallCNN"]


def _avg_pool_2x2(x):
    """2×2 average pooling, stride 2, VALID (odd trailing rows/columns dropped); dtype-preserving (flax's
    ``avg_pool`` divides by an int64 window size, which strict dtype promotion rejects)."""
    b, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2, :]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class SmallCNN(nnx.Module):
    """Stacked ``[Conv3×3 → (BatchNorm) → ReLU → 2×2 average pool]`` blocks, flatten, ``Linear → (ReLU)``.

    Maps images ``(..., H, W, C_in)`` (NHWC) to non-negative features ``(..., features)`` — post-ReLU like a
    ResNet's pooled features, which is what a classifier head (linear softmax or GCR subspaces) sees.

    Args:
      in_channels: C_in.
      image_size: ``(H, W)``; each block halves both (floor), so the flattened size is static.
      channels: output channels of each conv block.
      features: output feature dimension D.
      batch_norm: add BatchNorm after each conv (its statistics live in ``BatchStat`` variables, outside the
        optimiser).
      final_relu: apply ReLU to the output features (ResNet-like non-negative features); False gives a linear
        output layer.
      final_batch_norm: BatchNorm on the last hidden layer, between ``Linear`` and the final ReLU — the shape of a
        ResNet's last block (BN before its last ReLU). It keeps the feature norm at O(√features) from the first
        step, which normalised-feature heads (GCR, cosine classifiers) need: their backbone gradient scales as
        ``γ / ‖f‖``, and an unnormalised small backbone blows up in the first steps without it.
      dtype: parameter dtype.
      rngs: ``nnx.Rngs`` (``params`` stream).

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> net = SmallCNN(1, (28, 28), channels=(8, 16), features=32, rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((2, 28, 28, 1))).shape
      (2, 32)
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        *,
        channels: Sequence[int] = (16, 32),
        features: int = 64,
        batch_norm: bool = False,
        final_relu: bool = True,
        final_batch_norm: bool = False,
        dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        h, w = (int(s) for s in image_size)
        convs, norms = [], []
        cin = int(in_channels)
        for cout in channels:
            convs.append(nnx.Conv(cin, int(cout), (3, 3), padding="SAME", dtype=dtype, param_dtype=dtype, rngs=rngs))
            norms.append(nnx.BatchNorm(int(cout), dtype=dtype, param_dtype=dtype, rngs=rngs) if batch_norm else None)
            cin = int(cout)
            h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"image_size {image_size} is too small for {len(channels)} pooling blocks")
        self.convs = nnx.List(convs)
        self.norms = nnx.List(norms) if batch_norm else None
        self.fc = nnx.Linear(cin * h * w, int(features), dtype=dtype, param_dtype=dtype, rngs=rngs)
        self.fc_norm = (nnx.BatchNorm(int(features), dtype=dtype, param_dtype=dtype, rngs=rngs)
                        if final_batch_norm else None)
        self.features = int(features)
        self.final_relu = bool(final_relu)

    def __call__(self, x: Float[Array, "... H W C"]) -> Float[Array, "... F"]:
        lead = x.shape[:-3]
        x = x.reshape((-1, *x.shape[-3:]))
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.norms is not None:
                x = self.norms[i](x)
            x = jax.nn.relu(x)
            x = _avg_pool_2x2(x)
        x = x.reshape((x.shape[0], -1))
        x = self.fc(x)
        if self.fc_norm is not None:
            x = self.fc_norm(x)
        if self.final_relu:
            x = jax.nn.relu(x)
        return x.reshape((*lead, self.features))
