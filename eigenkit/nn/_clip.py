"""CLIP vision transformer and a LLaVA-1.5-style vision-language model in Flax NNX, with Hugging Face-layout weights.

* :class:`ClipVision` — the CLIP ViT image tower (Radford et al. 2021) as ``transformers.CLIPVisionModel`` computes
  it: patch embedding (a stride-``p`` convolution without bias, written as a reshape and a matmul), a class token,
  learned absolute positions, ``pre_layrnorm``, pre-LayerNorm encoder layers
  ``h = x + out(Attn(LN₁ x))``, ``y = h + fc₂(act(fc₁(LN₂ h)))`` with ``q`` scaled by ``d_head^{-1/2}`` and
  ``quick_gelu(x) = x σ(1.702 x)``. ``__call__(…, num_layers=k)`` returns ``hidden_states[k]`` of the Hugging Face
  model (``k = 0``: the embeddings after ``pre_layrnorm``); ``post_layernorm`` belongs to the pooled output only.
* :class:`Llava` — LLaVA-1.5 (Liu et al. 2023, "Improved Baselines with Visual Instruction Tuning"):
  image features = ``hidden_states[vision_feature_layer]`` of the tower (default −2: the penultimate layer) without
  the class token (``vision_feature_select_strategy="default"``), mapped by the 2-layer MLP projector
  (``linear₂(gelu(linear₁ ·))``, erf GELU) to the language model's width and spliced into the token embeddings of a
  :class:`eigenkit.nn.LlamaModel` at the ``<image>`` position. :meth:`Llava.logits` takes an optional
  ``feature_filter`` applied to the projected image tokens — where an embedding-space defence such as EigenShield sits.

Linear weights are ``(d_out, d_in)`` (PyTorch), so checkpoints load without transposes
(:func:`clip_vision_from_weights`, :func:`llava_from_weights`; :class:`eigenkit.data.HFLlavaCheckpoint` reads a
``llava-hf`` directory). Images enter as ``(b, H, W, 3)`` floats in ``[0, 1]``; :meth:`Llava.image_features`
applies the CLIP normalisation, so attacks work in pixel space.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int

from eigenkit.nn._bert import _LayerNorm, _Linear
from eigenkit.nn._llama import LlamaConfig, LlamaModel, RopeLayout, llama_from_weights

__all__ = ["CLIP_MEAN", "CLIP_STD", "ClipVision", "ClipVisionConfig", "Llava", "LlavaConfig",
           "clip_vision_from_weights", "llava_from_weights", "llava_weights", "quick_gelu"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def quick_gelu(x):
    """CLIP's activation ``x · σ(1.702 x)``."""
    return x * jax.nn.sigmoid(1.702 * x)


_ACTS = {"quick_gelu": quick_gelu, "gelu": lambda x: jax.nn.gelu(x, approximate=False),
         "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True)}


def _act(name: str, field: str) -> Callable:
    if name not in _ACTS:
        raise ValueError(f"{field} {name!r} is not supported (one of {sorted(_ACTS)})")
    return _ACTS[name]


@dataclasses.dataclass(frozen=True)
class ClipVisionConfig:
    """Static hyperparameters (defaults: CLIP ViT-L/14-336, LLaVA-1.5's vision tower)."""

    image_size: int = 336
    patch_size: int = 14
    hidden: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    intermediate: int = 4096
    norm_eps: float = 1e-5
    act: str = "quick_gelu"
    num_channels: int = 3

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")
        if self.hidden % self.num_heads:
            raise ValueError(f"hidden ({self.hidden}) must divide by num_heads ({self.num_heads})")
        _act(self.act, "act")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @classmethod
    def from_hf(cls, c: dict) -> ClipVisionConfig:
        """From a ``vision_config`` / CLIPVisionConfig dict; absent keys take ``transformers.CLIPVisionConfig``'s
        defaults (ViT-B/32: hidden 768, 12 layers, 12 heads, 3072, image 224, patch 32)."""
        return cls(image_size=int(c.get("image_size", 224)), patch_size=int(c.get("patch_size", 32)),
                   hidden=int(c.get("hidden_size", 768)), num_layers=int(c.get("num_hidden_layers", 12)),
                   num_heads=int(c.get("num_attention_heads", 12)), intermediate=int(c.get("intermediate_size", 3072)),
                   norm_eps=float(c.get("layer_norm_eps", 1e-5)), act=str(c.get("hidden_act", "quick_gelu")),
                   num_channels=int(c.get("num_channels", 3)))


class _ClipLayer(nnx.Module):
    def __init__(self, c: ClipVisionConfig, dtype, rngs):
        self.c = c
        self.layer_norm1 = _LayerNorm(c.hidden, c.norm_eps, dtype)
        self.q_proj = _Linear(c.hidden, c.hidden, dtype, rngs)
        self.k_proj = _Linear(c.hidden, c.hidden, dtype, rngs)
        self.v_proj = _Linear(c.hidden, c.hidden, dtype, rngs)
        self.out_proj = _Linear(c.hidden, c.hidden, dtype, rngs)
        self.layer_norm2 = _LayerNorm(c.hidden, c.norm_eps, dtype)
        self.fc1 = _Linear(c.hidden, c.intermediate, dtype, rngs)
        self.fc2 = _Linear(c.intermediate, c.hidden, dtype, rngs)

    def __call__(self, x):
        c = self.c
        b, t, d = x.shape
        hd = d // c.num_heads
        a = self.layer_norm1(x)

        def split(z):
            return z.reshape(b, t, c.num_heads, hd)

        q = split(self.q_proj(a)) * (hd ** -0.5)
        k, v = split(self.k_proj(a)), split(self.v_proj(a))
        probs = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k), axis=-1)
        h = x + self.out_proj(jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, t, d))
        return h + self.fc2(_ACTS[c.act](self.fc1(self.layer_norm2(h))))


class ClipVision(nnx.Module):
    """CLIP ViT image tower (``transformers.CLIPVisionModel``'s hidden states).

    Example:
      >>> cfg = ClipVisionConfig(image_size=28, patch_size=14, hidden=16, num_layers=2, num_heads=2, intermediate=32)
      >>> m = ClipVision(cfg, rngs=nnx.Rngs(0))
      >>> m(jnp.zeros((2, 28, 28, 3))).shape  # class token + 2 × 2 patches
      (2, 5, 16)
    """

    def __init__(self, config: ClipVisionConfig, *, param_dtype=jnp.float32, rngs: nnx.Rngs):
        c = config
        self.config = c
        p = c.patch_size
        self.patch_embedding = nnx.Param(jax.random.normal(rngs.params(), (c.hidden, c.num_channels, p, p),
                                                           param_dtype) * 0.02)
        self.class_embedding = nnx.Param(jax.random.normal(rngs.params(), (c.hidden,), param_dtype) * 0.02)
        self.position_embedding = nnx.Param(jax.random.normal(rngs.params(), (c.num_patches + 1, c.hidden),
                                                              param_dtype) * 0.02)
        self.pre_layrnorm = _LayerNorm(c.hidden, c.norm_eps, param_dtype)
        self.layers = nnx.List([_ClipLayer(c, param_dtype, rngs) for _ in range(c.num_layers)])
        self.post_layernorm = _LayerNorm(c.hidden, c.norm_eps, param_dtype)

    def embed(self, pixels: Float[Array, "b h w c"]) -> Float[Array, "b t d"]:
        """Patch + class-token + position embeddings of normalised pixels (before ``pre_layrnorm``)."""
        c = self.config
        if pixels.ndim != 4 or pixels.shape[1:] != (c.image_size, c.image_size, c.num_channels):
            raise ValueError(f"pixels must have shape (batch, {c.image_size}, {c.image_size}, {c.num_channels}), got "
                             f"{pixels.shape}")
        b = pixels.shape[0]
        p, g = c.patch_size, c.image_size // c.patch_size
        w = self.patch_embedding[...]
        x = pixels.astype(w.dtype).reshape(b, g, p, g, p, c.num_channels).transpose(0, 1, 3, 2, 4, 5)
        x = x.reshape(b, g * g, p * p * c.num_channels)  # each patch flattened as (row, col, channel)
        x = x @ w.transpose(2, 3, 1, 0).reshape(p * p * c.num_channels, c.hidden)
        cls = jnp.broadcast_to(self.class_embedding[...], (b, 1, c.hidden))
        return jnp.concatenate([cls, x], axis=1) + self.position_embedding[...][None]

    def __call__(self, pixels: Float[Array, "b h w c"], *, num_layers: int | None = None) -> Float[Array, "b t d"]:
        """``hidden_states[num_layers]`` (default: the last layer's output, without ``post_layernorm``) for
        normalised pixels ``(b, H, W, C)``; ``t = 1 + (H / p)²`` (class token first)."""
        k = self.config.num_layers if num_layers is None else int(num_layers)
        if not 0 <= k <= self.config.num_layers:
            raise ValueError(f"num_layers must be in [0, {self.config.num_layers}], got {num_layers}")
        h = self.pre_layrnorm(self.embed(pixels))
        for layer in self.layers[:k]:
            h = layer(h)
        return h


@dataclasses.dataclass(frozen=True)
class LlavaConfig:
    """A LLaVA-1.5 model: vision tower, projector and LLaMA language model (defaults: ``llava-1.5-7b-hf``)."""

    vision: ClipVisionConfig = ClipVisionConfig()
    text: LlamaConfig = LlamaConfig(vocab_size=32064, dim=4096, num_layers=32, num_heads=32, num_kv_heads=32,
                                    hidden_dim=11008, norm_eps=1e-5, tie_embeddings=False,
                                    rope_layout=RopeLayout.HALF)  # Hugging Face q/k layout
    feature_layer: int = -2
    select_strategy: str = "default"  # "default": drop the class token; "full": keep it
    projector_act: str = "gelu"
    image_token_index: int = 32000

    def __post_init__(self):
        n = self.vision.num_layers
        if not -(n + 1) <= self.feature_layer <= n:
            raise ValueError(f"feature_layer must index hidden_states of {n + 1} entries, got {self.feature_layer}")
        if self.select_strategy not in ("default", "full"):
            raise ValueError(f"select_strategy must be 'default' or 'full', got {self.select_strategy!r}")
        _act(self.projector_act, "projector_act")

    @property
    def num_image_tokens(self) -> int:
        return self.vision.num_patches + (self.select_strategy == "full")


class Llava(nnx.Module):
    """LLaVA-1.5: ``[embed(prefix), projector(vision features), embed(suffix)]`` through a LLaMA decoder.

    Example:
      >>> v = ClipVisionConfig(image_size=28, patch_size=14, hidden=16, num_layers=2, num_heads=2, intermediate=32)
      >>> t = LlamaConfig(vocab_size=40, dim=16, num_layers=1, num_heads=2, num_kv_heads=1, hidden_dim=32,
      ...                 tie_embeddings=False)
      >>> m = Llava(LlavaConfig(vision=v, text=t, image_token_index=39), rngs=nnx.Rngs(0))
      >>> m.image_features(jnp.zeros((2, 28, 28, 3))).shape  # 4 patch tokens of the LM's width
      (2, 4, 16)
      >>> m.logits(jnp.zeros((2, 28, 28, 3)), jnp.ones((2, 2), jnp.int32), jnp.ones((2, 3), jnp.int32)).shape
      (2, 9, 40)
    """

    def __init__(self, config: LlavaConfig, *, param_dtype=jnp.float32, rngs: nnx.Rngs):
        self.config = config
        self.vision = ClipVision(config.vision, param_dtype=param_dtype, rngs=rngs)
        self.linear_1 = _Linear(config.vision.hidden, config.text.dim, param_dtype, rngs)
        self.linear_2 = _Linear(config.text.dim, config.text.dim, param_dtype, rngs)
        self.lm = LlamaModel(config.text, rngs=rngs, dtype=param_dtype)

    def image_features(self, images: Float[Array, "b h w 3"]) -> Float[Array, "b n d"]:
        """Projected image tokens for images in ``[0, 1]`` (CLIP-normalised here): ``(b, num_image_tokens, dim)``."""
        c = self.config
        m = jnp.asarray(CLIP_MEAN, images.dtype)
        s = jnp.asarray(CLIP_STD, images.dtype)
        k = c.feature_layer % (c.vision.num_layers + 1)
        h = self.vision((images - m) / s, num_layers=k)
        if c.select_strategy == "default":
            h = h[:, 1:]
        return self.linear_2(_ACTS[c.projector_act](self.linear_1(h)))

    def logits(self, images: Float[Array, "b h w 3"], prefix: Int[Array, "b p"], suffix: Int[Array, "b s"], *,
               feature_filter: Callable | None = None) -> Float[Array, "b l v"]:
        """Next-token logits of the sequence ``prefix, <image tokens>, suffix`` (``l = p + n + s``), the image tokens
        first passed through ``feature_filter`` (``(b, n, d) -> (b, n, d)``) when given. Causal attention, so
        right-padding ``suffix`` leaves the earlier logits unchanged."""
        img = self.image_features(images)
        if feature_filter is not None:
            img = feature_filter(img)
        return self.logits_from_embeds(jnp.concatenate(
            [self.lm.embed_tokens(prefix), img.astype(self.lm.embed.dtype), self.lm.embed_tokens(suffix)], axis=1))

    def logits_from_embeds(self, h: Float[Array, "b l d"]) -> Float[Array, "b l v"]:
        for blk in self.lm.blocks:
            h = blk(h)
        return self.lm.head(h)


def _put(tree: dict, key: str, weights: dict, name: str, dtype) -> None:
    if name not in weights:
        raise ValueError(f"weights has no {name!r}")
    arr = jnp.asarray(weights[name], dtype)
    if arr.shape != tuple(tree[key].shape):
        raise ValueError(f"weight {name} has shape {arr.shape}, expected {tuple(tree[key].shape)}")
    tree[key] = arr


_LAYER_KEYS = ("layer_norm1", "q_proj", "k_proj", "v_proj", "out_proj", "layer_norm2", "fc1", "fc2")
_HF_LAYER = {"layer_norm1": "layer_norm1", "q_proj": "self_attn.q_proj", "k_proj": "self_attn.k_proj",
             "v_proj": "self_attn.v_proj", "out_proj": "self_attn.out_proj", "layer_norm2": "layer_norm2",
             "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


def _fill_vision(pure: dict, c: ClipVisionConfig, weights: dict, prefix: str, dtype) -> None:
    e = prefix + "embeddings."
    _put(pure, "patch_embedding", weights, e + "patch_embedding.weight", dtype)
    _put(pure, "class_embedding", weights, e + "class_embedding", dtype)
    _put(pure, "position_embedding", weights, e + "position_embedding.weight", dtype)
    for ln in ("pre_layrnorm", "post_layernorm"):
        for p in ("weight", "bias"):
            _put(pure[ln], p, weights, f"{prefix}{ln}.{p}", dtype)
    for i in range(c.num_layers):
        for k in _LAYER_KEYS:
            for p in ("weight", "bias"):
                _put(pure["layers"][i][k], p, weights, f"{prefix}encoder.layers.{i}.{_HF_LAYER[k]}.{p}", dtype)


def clip_vision_from_weights(config: ClipVisionConfig, weights: dict, *, prefix: str = "vision_model.",
                             param_dtype=jnp.float32) -> ClipVision:
    """A :class:`ClipVision` from Hugging Face ``CLIPVisionModel`` tensors (``{prefix}embeddings.…``,
    ``{prefix}encoder.layers.{i}.…``, ``{prefix}pre_layrnorm.…``; ``weights`` maps names to arrays).

    Raises:
      ValueError: a tensor is missing or has the wrong shape (naming it).
    """
    graphdef, state = nnx.split(nnx.eval_shape(lambda: ClipVision(config, param_dtype=param_dtype,
                                                                  rngs=nnx.Rngs(0))))
    pure = nnx.to_pure_dict(state)
    _fill_vision(pure, config, weights, prefix, param_dtype)
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graphdef, state)


def llava_from_weights(config: LlavaConfig, weights: dict, *, param_dtype=jnp.float32) -> Llava:
    """A :class:`Llava` from tensors under the generic names ``vision.{CLIPVisionModel name without
    'vision_model.'}``, ``projector.linear_{1,2}.{weight,bias}`` and ``lm.{eigenkit.nn.llama_from_weights name}``
    (what :meth:`eigenkit.data.HFLlavaCheckpoint.weights` returns).

    Raises:
      ValueError: a tensor is missing or has the wrong shape (naming it).
    """
    graphdef, state = nnx.split(nnx.eval_shape(lambda: Llava(config, param_dtype=param_dtype, rngs=nnx.Rngs(0))))
    pure = nnx.to_pure_dict(state)
    _fill_vision(pure["vision"], config.vision, weights, "vision.", param_dtype)
    for lin in ("linear_1", "linear_2"):
        for p in ("weight", "bias"):
            _put(pure[lin], p, weights, f"projector.{lin}.{p}", param_dtype)
    lm = llama_from_weights(config.text, {k[3:]: v for k, v in weights.items() if k.startswith("lm.")},
                            dtype=param_dtype)
    pure["lm"] = nnx.to_pure_dict(nnx.state(lm))
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graphdef, state)



def llava_weights(model: Llava) -> dict:
    """The inverse of :func:`llava_from_weights`: a flat dict of arrays under the generic names."""
    from eigenkit.nn._llama import llama_weights

    v = model.vision
    out = {"vision.embeddings.patch_embedding.weight": v.patch_embedding[...],
           "vision.embeddings.class_embedding": v.class_embedding[...],
           "vision.embeddings.position_embedding.weight": v.position_embedding[...]}
    for ln in ("pre_layrnorm", "post_layernorm"):
        for p in ("weight", "bias"):
            out[f"vision.{ln}.{p}"] = getattr(getattr(v, ln), p)[...]
    for i, layer in enumerate(v.layers):
        for k in _LAYER_KEYS:
            for p in ("weight", "bias"):
                out[f"vision.encoder.layers.{i}.{_HF_LAYER[k]}.{p}"] = getattr(getattr(layer, k), p)[...]
    for lin in ("linear_1", "linear_2"):
        for p in ("weight", "bias"):
            out[f"projector.{lin}.{p}"] = getattr(getattr(model, lin), p)[...]
    out.update({"lm." + k: w for k, w in llama_weights(model.lm).items()})
    return out
