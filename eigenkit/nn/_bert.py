"""BERT encoder in Flax NNX (post-LayerNorm, absolute positions, erf GELU), with HuggingFace-layout weight loading and
sentence-transformers mean pooling — enough to run MiniLM-L6 (all-MiniLM-L6-v2, ``eigenkit.data.minilm_weights``).

One layer: ``h = LN(x + W_o Attn(x))``, ``y = LN(h + W_2 gelu(W_1 h))``, attention ``softmax(q kᵀ / √d_head + mask)``
over the real tokens. Linear weights are ``(d_out, d_in)`` (PyTorch convention: ``y = x Wᵀ + b``), so HuggingFace
checkpoints load without transposes. The encoder also accepts ``inputs_embeds`` (token vectors in place of ids), the
input of embedding-space attacks.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

__all__ = ["BertConfig", "BertEncoder", "bert_from_weights", "mean_pool"]


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Static hyperparameters (defaults: MiniLM-L6-H384, i.e. all-MiniLM-L6-v2)."""

    vocab_size: int = 30522
    hidden: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate: int = 1536
    max_positions: int = 512
    type_vocab_size: int = 2
    norm_eps: float = 1e-12

    def __post_init__(self):
        if self.hidden % self.num_heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by num_heads ({self.num_heads})")

    @classmethod
    def from_hf(cls, config: dict) -> BertConfig:
        """From a HuggingFace ``config.json`` dict (``hidden_act`` must be ``gelu``, absolute positions)."""
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"only hidden_act='gelu' (erf) is implemented, got {config['hidden_act']!r}")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only position_embedding_type='absolute' is implemented")
        return cls(config["vocab_size"], config["hidden_size"], config["num_hidden_layers"],
                   config["num_attention_heads"], config["intermediate_size"], config["max_position_embeddings"],
                   config["type_vocab_size"], config["layer_norm_eps"])


def _param(rngs, shape, dtype, scale=0.02):
    return nnx.Param(jax.random.normal(rngs.params(), shape, dtype) * scale)


class _Linear(nnx.Module):
    def __init__(self, d_in, d_out, dtype, rngs):
        self.weight = _param(rngs, (d_out, d_in), dtype)
        self.bias = nnx.Param(jnp.zeros((d_out,), dtype))

    def __call__(self, x):
        return x @ self.weight[...].T.astype(x.dtype) + self.bias[...].astype(x.dtype)


class _LayerNorm(nnx.Module):
    def __init__(self, d, eps, dtype):
        self.weight = nnx.Param(jnp.ones((d,), dtype))
        self.bias = nnx.Param(jnp.zeros((d,), dtype))
        self.eps = eps

    def __call__(self, x):
        mu = jnp.mean(x, -1, keepdims=True)
        var = jnp.mean(jnp.square(x - mu), -1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + self.eps) * self.weight[...].astype(x.dtype) + self.bias[...].astype(
            x.dtype)


class _Layer(nnx.Module):
    def __init__(self, c: BertConfig, dtype, rngs):
        self.c = c
        self.query, self.key, self.value = (_Linear(c.hidden, c.hidden, dtype, rngs) for _ in range(3))
        self.attn_out = _Linear(c.hidden, c.hidden, dtype, rngs)
        self.attn_norm = _LayerNorm(c.hidden, c.norm_eps, dtype)
        self.up = _Linear(c.hidden, c.intermediate, dtype, rngs)
        self.down = _Linear(c.intermediate, c.hidden, dtype, rngs)
        self.out_norm = _LayerNorm(c.hidden, c.norm_eps, dtype)

    def __call__(self, x, mask):
        *lead, t, d = x.shape
        h, dh = self.c.num_heads, d // self.c.num_heads

        def split(z):
            return z.reshape(*lead, t, h, dh)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        s = jnp.einsum("...qhd,...khd->...hqk", q, k) / jnp.asarray(math.sqrt(dh), x.dtype)
        s = jnp.where(mask[..., None, None, :], s, jnp.asarray(jnp.finfo(x.dtype).min, x.dtype))
        a = jnp.einsum("...hqk,...khd->...qhd", jax.nn.softmax(s, axis=-1), v).reshape(x.shape)
        x = self.attn_norm(x + self.attn_out(a))
        return self.out_norm(x + self.down(jax.nn.gelu(self.up(x), approximate=False)))


class BertEncoder(nnx.Module):
    """``(input_ids [..., T], attention_mask [..., T]) → hidden states [..., T, hidden]`` (token type 0).

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from eigenkit.nn import BertConfig, BertEncoder, mean_pool
      >>> c = BertConfig(vocab_size=50, hidden=16, num_layers=2, num_heads=4, intermediate=32, max_positions=8)
      >>> enc = BertEncoder(c, rngs=nnx.Rngs(0))
      >>> ids, mask = jnp.array([[2, 7, 9, 3, 0]]), jnp.array([[True, True, True, True, False]])
      >>> mean_pool(enc(ids, mask), mask).shape
      (1, 16)
    """

    def __init__(self, config: BertConfig, *, param_dtype=jnp.float32, rngs: nnx.Rngs):
        c = self.config = config
        self.word = _param(rngs, (c.vocab_size, c.hidden), param_dtype)
        self.position = _param(rngs, (c.max_positions, c.hidden), param_dtype)
        self.token_type = _param(rngs, (c.type_vocab_size, c.hidden), param_dtype)
        self.embed_norm = _LayerNorm(c.hidden, c.norm_eps, param_dtype)
        self.layers = nnx.List([_Layer(c, param_dtype, rngs) for _ in range(c.num_layers)])

    def embed_tokens(self, input_ids: Int[Array, "... t"]) -> Float[Array, "... t d"]:
        """Word vectors of ``input_ids`` (the ``inputs_embeds`` an embedding-space attack perturbs)."""
        return self.word[...][input_ids]

    def __call__(self, input_ids: Int[Array, "... t"] | None, attention_mask: Bool[Array, "... t"], *,
                 inputs_embeds: Float[Array, "... t d"] | None = None) -> Float[Array, "... t d"]:
        """Hidden states of the last layer; give ``input_ids`` or ``inputs_embeds`` (word vectors, before the
        position / type embeddings and the embedding LayerNorm)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        t = x.shape[-2]
        if t > self.config.max_positions:
            raise ValueError(f"sequence length {t} exceeds max_positions={self.config.max_positions}")
        mask = jnp.asarray(attention_mask, bool)
        if mask.shape != x.shape[:-1]:
            raise ValueError(f"attention_mask must have shape {x.shape[:-1]} (batch..., T), got {mask.shape}")
        x = x + self.position[...][:t].astype(x.dtype) + self.token_type[...][0].astype(x.dtype)
        x = self.embed_norm(x)
        for layer in self.layers:
            x = layer(x, mask)
        return x


def mean_pool(hidden: Float[Array, "... t d"], attention_mask: Bool[Array, "... t"], *, normalize: bool = True
              ) -> Float[Array, "... d"]:
    """Mean of the real tokens' hidden states, then (``normalize``) L2-normalised: the sentence-transformers pooling
    of all-MiniLM-L6-v2."""
    m = jnp.asarray(attention_mask, hidden.dtype)[..., None]
    pooled = jnp.sum(hidden * m, -2) / jnp.maximum(jnp.sum(m, -2), 1.0)
    if normalize:
        pooled = pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
    return pooled


def bert_from_weights(weights: dict, config: BertConfig, *, param_dtype=jnp.float32) -> BertEncoder:
    """A :class:`BertEncoder` holding HuggingFace BERT weights (names with or without the ``bert.`` prefix).

    Raises:
      KeyError / ValueError: a missing tensor or a shape that does not match ``config`` (names it).
    """
    w = {k.removeprefix("bert."): v for k, v in weights.items()}
    enc = BertEncoder(config, param_dtype=param_dtype, rngs=nnx.Rngs(0))

    def put(param, name):
        if name not in w:
            raise KeyError(f"weight {name!r} missing (have e.g. {sorted(w)[:3]})")
        arr = jnp.asarray(w[name], param_dtype)
        if arr.shape != param[...].shape:
            raise ValueError(f"weight {name!r} has shape {arr.shape}, the config expects {param[...].shape}")
        param[...] = arr

    put(enc.word, "embeddings.word_embeddings.weight")
    put(enc.position, "embeddings.position_embeddings.weight")
    put(enc.token_type, "embeddings.token_type_embeddings.weight")
    put(enc.embed_norm.weight, "embeddings.LayerNorm.weight")
    put(enc.embed_norm.bias, "embeddings.LayerNorm.bias")
    names = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
             "attn_out": "attention.output.dense", "attn_norm": "attention.output.LayerNorm",
             "up": "intermediate.dense", "down": "output.dense", "out_norm": "output.LayerNorm"}
    for i, layer in enumerate(enc.layers):
        for attr, hf in names.items():
            mod = getattr(layer, attr)
            put(mod.weight, f"encoder.layer.{i}.{hf}.weight")
            put(mod.bias, f"encoder.layer.{i}.{hf}.bias")
    return enc
