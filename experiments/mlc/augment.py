"""Image augmentations of the self-supervised stages (in JAX, inside the jitted step; one key per image).

SimCLR-style views as the TCR / MLC recipes use (NMCE ``train_selfsup.py``; MLC §4.1): random resized crop (area in
``[crop_min, 1]``, aspect ratio in ``[3/4, 4/3]``, bilinear), horizontal flip, and for colour images a brightness /
contrast / saturation jitter and random grayscale. Inputs are normalised images ``(B, H, W, C)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _resized_crop(key, img, crop_min: float):
    h, w, c = img.shape
    k1, k2, k3, k4 = jax.random.split(key, 4)
    dt = img.dtype
    area = jax.random.uniform(k1, (), dt, minval=crop_min, maxval=1.0)
    ratio = jnp.exp(jax.random.uniform(k2, (), dt, minval=math.log(3 / 4), maxval=math.log(4 / 3)))
    ch = jnp.clip(jnp.sqrt(area / ratio), 0.1, 1.0) * h
    cw = jnp.clip(jnp.sqrt(area * ratio), 0.1, 1.0) * w
    oy = jax.random.uniform(k3, (), dt) * (h - ch)
    ox = jax.random.uniform(k4, (), dt) * (w - cw)
    scale = jnp.stack([h / ch, w / cw])
    trans = -jnp.stack([oy, ox]) * scale
    return jax.image.scale_and_translate(img, (h, w, c), (0, 1), scale, trans, method="linear", antialias=False)


def _colour(key, img, strength: float):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    dt = img.dtype
    u = lambda k: jax.random.uniform(k, (), dt, minval=-0.4, maxval=0.4)  # noqa: E731
    mean = jnp.mean(img)
    img = img + strength * u(k1)  # brightness (normalised units)
    img = mean + (img - mean) * (1 + strength * u(k2))  # contrast
    grey = jnp.mean(img, axis=-1, keepdims=True)
    img = grey + (img - grey) * (1 + strength * u(k3))  # saturation
    to_grey = jax.random.uniform(k4, (), dt) < 0.2 * strength
    return jnp.where(to_grey, jnp.broadcast_to(jnp.mean(img, axis=-1, keepdims=True), img.shape), img)


def augment(key: jax.Array, images, *, crop_min: float, flip: bool = True, colour: float = 0.0):
    """One random view of each image of ``images`` ``(B, H, W, C)`` (same shape and dtype)."""

    def one(k, img):
        kc, kf, kj = jax.random.split(k, 3)
        out = _resized_crop(kc, img, crop_min)
        if flip:
            out = jnp.where(jax.random.bernoulli(kf), out[:, ::-1, :], out)
        if colour > 0 and img.shape[-1] == 3:
            out = _colour(kj, out, colour)
        return out.astype(img.dtype)

    return jax.vmap(one)(jax.random.split(key, images.shape[0]), images)
