"""ResNet-D (He et al. 2019, "Bag of Tricks for Image Classification with CNNs", §4.1 ResNet-D) in Flax NNX.

ResNet-D changes two things of ResNet v1.5 (stride on the bottleneck's 3×3 conv): the **deep stem** (three 3×3
convs, 32-32-64 channels, the first with stride 2, instead of one 7×7 conv) and the **average-pool shortcut** (a
downsampling shortcut is ``AvgPool(stride) → Conv1×1 stride 1 → BN`` instead of a strided 1×1 conv, which discards
3/4 of the input). This is mmpretrain's ``ResNetV1d`` (the backbone of GCR's ``resnet50d_8xb32`` recipes) and
timm's ``resnet50d``: 25,576,264 parameters with a 1000-class linear head (25.58M, the published count).

Layout is NHWC. Padding is PyTorch's (explicit symmetric 1-pixel padding for every 3×3 conv and the stem max-pool;
XLA's ``"SAME"`` pads asymmetrically at stride 2), and the shortcut pool is ``ceil_mode=True,
count_include_pad=False``, so the network computes exactly the PyTorch one's function for any input size.
Initialisation follows mmpretrain's ResNet: Kaiming-normal convs (fan-out, ReLU gain), BN scale 1 / bias 0, and the
last BN of every bottleneck zero-initialised (``zero_init_residual=True``) so each block starts as the identity.

BatchNorm: ``bn_group_size=None`` normalises over the whole (global) batch — SyncBN under data parallelism; an
integer normalises each consecutive group of that many examples separately (ghost batch norm), which reproduces
per-GPU BN (the plain ResNet recipes: 8 GPUs × 32 images, statistics per GPU) on any device count. Running
statistics are the mean over groups of the per-group statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from flax import nnx

if TYPE_CHECKING:
    from jaxtyping import Array, Float

__all__ = ["BasicBlock", "CifarResNet", "GroupBatchNorm", "ResNetD", "resnet18_cifar", "resnet50d"]

RESNET50_STAGES = (3, 4, 6, 3)
RESNET18_STAGES = (2, 2, 2, 2)


def _kaiming_fan_out(key, shape, dtype):
    """Kaiming-normal for an HWIO conv kernel with PyTorch's ``mode='fan_out', nonlinearity='relu'``."""
    fan_out = shape[0] * shape[1] * shape[3]
    return jax.random.normal(key, shape, dtype) * jnp.asarray(math.sqrt(2.0 / fan_out), dtype)


class GroupBatchNorm(nnx.Module):
    """BatchNorm over the leading batch axis whose statistics are computed per group of ``group_size`` examples.

    ``group_size=None``: one group (ordinary BatchNorm over the batch). In train mode (``use_running_average`` False)
    the input ``(B, ..., C)`` is normalised with the biased mean/variance of each group over its examples and spatial
    positions; the running statistics move by ``1 - momentum`` towards the mean over groups of those statistics
    (Flax convention: ``momentum=0.9`` is PyTorch's ``momentum=0.1``). In eval mode the running statistics are used.

    Args:
      num_features: C.
      group_size: examples per statistics group (must divide the batch), or None.
      momentum, epsilon: running-average momentum, variance epsilon (PyTorch defaults 0.9 / 1e-5).
      scale_init: 1 (default) or 0 (the zero-init of a residual block's last BN).
      dtype: computation dtype (default: the input's); statistics are computed in float32.
      param_dtype: dtype of scale, bias and running statistics.
    """

    def __init__(self, num_features: int, *, group_size: int | None = None, momentum: float = 0.9,
                 epsilon: float = 1e-5, scale_init: float = 1.0, dtype: Any = None, param_dtype: Any = jnp.float32,
                 rngs: nnx.Rngs | None = None):
        del rngs
        if group_size is not None and int(group_size) < 1:
            raise ValueError(f"group_size must be a positive int or None, got {group_size!r}")
        c = int(num_features)
        self.scale = nnx.Param(jnp.full((c,), scale_init, param_dtype))
        self.bias = nnx.Param(jnp.zeros((c,), param_dtype))
        self.mean = nnx.BatchStat(jnp.zeros((c,), param_dtype))
        self.var = nnx.BatchStat(jnp.ones((c,), param_dtype))
        self.group_size = None if group_size is None else int(group_size)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.dtype = dtype
        self.use_running_average = False

    def __call__(self, x: Float[Array, "B ... C"]) -> Float[Array, "B ... C"]:
        dtype = self.dtype or x.dtype
        sdt = jnp.float64 if x.dtype == jnp.float64 else jnp.float32  # statistics in float32 (f64 for f64 input)
        eps = jnp.asarray(self.epsilon, sdt)
        if self.use_running_average:
            y = (x.astype(sdt) - self.mean[...].astype(sdt)) * jax.lax.rsqrt(self.var[...].astype(sdt) + eps)
        else:
            b = x.shape[0]
            g = b if self.group_size is None else self.group_size
            if b % g:
                raise ValueError(f"GroupBatchNorm: batch {b} is not a multiple of group_size {g}")
            xg = x.astype(sdt).reshape((b // g, g, *x.shape[1:]))
            axes = tuple(range(1, xg.ndim - 1))
            mean = jnp.mean(xg, axis=axes, keepdims=True)
            var = jnp.mean(jnp.square(xg - mean), axis=axes, keepdims=True)
            y = ((xg - mean) * jax.lax.rsqrt(var + eps)).reshape(x.shape)
            m = jnp.asarray(self.momentum, sdt)
            new_mean = jnp.mean(mean.reshape(b // g, -1), axis=0)
            new_var = jnp.mean(var.reshape(b // g, -1), axis=0)
            self.mean[...] = (m * self.mean[...].astype(sdt) + (1 - m) * new_mean).astype(self.mean.dtype)
            self.var[...] = (m * self.var[...].astype(sdt) + (1 - m) * new_var).astype(self.var.dtype)
        y = y * self.scale[...].astype(sdt) + self.bias[...].astype(sdt)
        return y.astype(dtype)


def _pad(p: int):
    return ((p, p), (p, p))


def _conv(cin, cout, k, stride, dtype, param_dtype, rngs):
    return nnx.Conv(cin, cout, (k, k), strides=(stride, stride), padding=_pad(k // 2), use_bias=False,
                    kernel_init=_kaiming_fan_out, dtype=dtype, param_dtype=param_dtype, rngs=rngs)


def avg_pool_ceil(x: Float[Array, "B H W C"], stride: int) -> Float[Array, "B h w C"]:
    """PyTorch ``AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)``: windows that hang over the
    bottom/right edge average only their in-image pixels; output ``ceil(H / stride) × ceil(W / stride)``."""
    b, h, w, c = x.shape
    s = int(stride)
    ph, pw = -h % s, -w % s
    xp = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)))
    sums = xp.reshape(b, (h + ph) // s, s, (w + pw) // s, s, c).sum(axis=(2, 4))
    ones = jnp.pad(jnp.ones((h, w), x.dtype), ((0, ph), (0, pw)))
    counts = ones.reshape((h + ph) // s, s, (w + pw) // s, s).sum(axis=(1, 3))
    return sums / counts[None, :, :, None]


class Bottleneck(nnx.Module):
    """``1×1 → 3×3 (stride) → 1×1 (×4)`` with BN after each conv, ReLU after the first two and after the sum;
    shortcut: identity, or ``AvgPool(stride, ceil) → 1×1 conv → BN`` when the shape changes (ResNet-D)."""

    def __init__(self, cin: int, width: int, stride: int, *, bn, dtype, param_dtype, rngs):
        cout = 4 * width
        self.conv1 = _conv(cin, width, 1, 1, dtype, param_dtype, rngs)
        self.bn1 = bn(width)
        self.conv2 = _conv(width, width, 3, stride, dtype, param_dtype, rngs)
        self.bn2 = bn(width)
        self.conv3 = _conv(width, cout, 1, 1, dtype, param_dtype, rngs)
        self.bn3 = bn(cout, scale_init=0.0)
        self.stride = int(stride)
        if stride != 1 or cin != cout:
            self.down_conv = _conv(cin, cout, 1, 1, dtype, param_dtype, rngs)
            self.down_bn = bn(cout)
        else:
            self.down_conv = self.down_bn = None

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.down_conv is not None:
            s = avg_pool_ceil(x, self.stride) if self.stride != 1 else x
            x = self.down_bn(self.down_conv(s))
        return jax.nn.relu(x + y)


class ResNetD(nnx.Module):
    """ResNet-D backbone (+ optional linear head). Images ``(B, H, W, 3)`` → features ``(B, 4·widths[-1])`` (global
    average pool of the last stage, post-ReLU) or logits ``(B, num_classes)``.

    Args:
      stage_sizes: bottlenecks per stage; ``(3, 4, 6, 3)`` is ResNet-50-D, ``(3, 4, 23, 3)`` ResNet-101-D.
      width: bottleneck width of the first stage (doubles per stage): 64.
      stem_width: channels of the first two stem convs (the third has ``2·stem_width``): 32.
      in_channels: 3.
      num_classes: size of a linear head on the pooled features; None → :meth:`__call__` returns the features
        (for a separate head such as GCR's).
      bn_group_size: see :class:`GroupBatchNorm` (None = statistics over the whole batch).
      dtype: computation dtype (e.g. ``jnp.bfloat16`` on accelerators; BN statistics and the pooled features stay
        float32); param_dtype: parameter dtype (float32).

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> net = ResNetD((1, 1, 1, 1), width=4, stem_width=4, rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((2, 32, 32, 3))).shape
      (2, 128)
    """

    def __init__(self, stage_sizes: Sequence[int] = RESNET50_STAGES, *, width: int = 64, stem_width: int = 32,
                 in_channels: int = 3, num_classes: int | None = None, bn_group_size: int | None = None,
                 dtype: Any = jnp.float32, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        if not stage_sizes or any(int(n) < 1 for n in stage_sizes):
            raise ValueError(f"stage_sizes must be positive ints, got {tuple(stage_sizes)}")

        def bn(c, scale_init=1.0):
            return GroupBatchNorm(c, group_size=bn_group_size, scale_init=scale_init, dtype=dtype,
                                  param_dtype=param_dtype)

        sw = int(stem_width)
        self.stem = nnx.List([_conv(int(in_channels), sw, 3, 2, dtype, param_dtype, rngs),
                              _conv(sw, sw, 3, 1, dtype, param_dtype, rngs),
                              _conv(sw, 2 * sw, 3, 1, dtype, param_dtype, rngs)])
        self.stem_bn = nnx.List([bn(sw), bn(sw), bn(2 * sw)])
        blocks, cin = [], 2 * sw
        for i, n in enumerate(stage_sizes):
            w = int(width) * 2**i
            for j in range(int(n)):
                blocks.append(Bottleneck(cin, w, 2 if (j == 0 and i > 0) else 1, bn=bn, dtype=dtype,
                                         param_dtype=param_dtype, rngs=rngs))
                cin = 4 * w
        self.blocks = nnx.List(blocks)
        self.num_features = cin
        self.head = (None if num_classes is None else
                     nnx.Linear(cin, int(num_classes), dtype=jnp.float32, param_dtype=param_dtype, rngs=rngs))

    def features(self, x: Float[Array, "B H W C"]) -> Float[Array, "B F"]:
        """Globally average-pooled post-ReLU features of the last stage, float32 ``(B, num_features)``."""
        if x.ndim != 4:
            raise ValueError(f"ResNetD expects images (B, H, W, C), got shape {x.shape}")
        dtype = self.stem[0].dtype
        x = x.astype(dtype)
        for conv, norm in zip(self.stem, self.stem_bn):
            x = jax.nn.relu(norm(conv(x)))
        x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=_pad(1))
        for block in self.blocks:
            x = block(x)
        return jnp.mean(x.astype(jnp.float32), axis=(1, 2))

    def __call__(self, x: Float[Array, "B H W C"]) -> Float[Array, "B K"]:
        f = self.features(x)
        return f if self.head is None else self.head(f)


def resnet50d(num_classes: int | None = 1000, **kwargs: Any) -> ResNetD:
    """ResNet-50-D (``stage_sizes=(3, 4, 6, 3)``, width 64, deep stem 32-32-64); kwargs go to :class:`ResNetD`."""
    return ResNetD(RESNET50_STAGES, num_classes=num_classes, **kwargs)


class BasicBlock(nnx.Module):
    """``3×3 (stride) → BN → ReLU → 3×3 → BN`` plus the shortcut (identity, or ``1×1 conv (stride) → BN`` when the
    shape changes), then ReLU — the ResNet-18/34 block of He et al. (2016), option B shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, *, bn, dtype, param_dtype, rngs):
        self.conv1 = _conv(cin, cout, 3, stride, dtype, param_dtype, rngs)
        self.bn1 = bn(cout)
        self.conv2 = _conv(cout, cout, 3, 1, dtype, param_dtype, rngs)
        self.bn2 = bn(cout)
        if stride != 1 or cin != cout:
            self.down_conv = _conv(cin, cout, 1, stride, dtype, param_dtype, rngs)
            self.down_bn = bn(cout)
        else:
            self.down_conv = self.down_bn = None

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.down_conv is not None:
            x = self.down_bn(self.down_conv(x))
        return jax.nn.relu(x + y)


class CifarResNet(nnx.Module):
    """The CIFAR variant of ResNet-18/34 used by the self-supervised clustering literature (SimCLR/SCAN/NMCE/MLC
    code bases): a ``3×3`` stride-1 stem conv without max-pool, four stages of :class:`BasicBlock` (widths
    ``width·(1, 2, 4, 8)``, stride 2 from the second), global average pool. Images ``(B, H, W, C)`` → features
    ``(B, 8·width)`` (512 for ResNet-18).

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> net = CifarResNet((1, 1, 1, 1), width=4, rngs=nnx.Rngs(0))
      >>> net(jnp.zeros((2, 16, 16, 3))).shape
      (2, 32)
    """

    def __init__(self, stage_sizes: Sequence[int] = RESNET18_STAGES, *, width: int = 64, in_channels: int = 3,
                 bn_group_size: int | None = None, dtype: Any = jnp.float32, param_dtype: Any = jnp.float32,
                 rngs: nnx.Rngs):
        if not stage_sizes or any(int(n) < 1 for n in stage_sizes):
            raise ValueError(f"stage_sizes must be positive ints, got {tuple(stage_sizes)}")

        def bn(c, scale_init=1.0):
            return GroupBatchNorm(c, group_size=bn_group_size, scale_init=scale_init, dtype=dtype,
                                  param_dtype=param_dtype)

        self.stem = _conv(int(in_channels), int(width), 3, 1, dtype, param_dtype, rngs)
        self.stem_bn = bn(int(width))
        blocks, cin = [], int(width)
        for i, n in enumerate(stage_sizes):
            w = int(width) * 2**i
            for j in range(int(n)):
                blocks.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1, bn=bn, dtype=dtype,
                                         param_dtype=param_dtype, rngs=rngs))
                cin = w
        self.blocks = nnx.List(blocks)
        self.num_features = cin

    def __call__(self, x: Float[Array, "B H W C"]) -> Float[Array, "B F"]:
        if x.ndim != 4:
            raise ValueError(f"CifarResNet expects images (B, H, W, C), got shape {x.shape}")
        x = jax.nn.relu(self.stem_bn(self.stem(x.astype(self.stem.dtype))))
        for block in self.blocks:
            x = block(x)
        return jnp.mean(x.astype(jnp.float32), axis=(1, 2))


def resnet18_cifar(**kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-18 (11.2M parameters at width 64); kwargs go to :class:`CifarResNet`."""
    return CifarResNet(RESNET18_STAGES, **kwargs)
