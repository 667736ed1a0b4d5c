"""LLaMA-style decoder-only transformer in Flax NNX (RMSNorm, RoPE, grouped-query attention, SwiGLU, tied embeddings).

Linear weights are stored as ``(d_out, d_in)`` (PyTorch / GGUF convention; ``y = x Wᵀ``), so compression code sees the
same matrices as the reference implementations. RoPE comes in two layouts (:class:`RopeLayout`): ``INTERLEAVED``
rotates the pairs ``(x₀, x₁), (x₂, x₃), …`` — required for GGUF checkpoints, whose q/k weights llama.cpp stores
pre-permuted — and ``HALF`` rotates ``(x_i, x_{i+d/2})`` (Hugging Face layout).

Forward of one block (pre-norm): ``h = x + Attn(RMSNorm(x))``, ``y = h + W_down(silu(W_gate n) ⊙ W_up n)`` with
``n = RMSNorm(h)``. :meth:`LlamaBlock.__call__` can also return the inputs of every linear layer (for calibration).
"""

from __future__ import annotations

import dataclasses
import enum
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int


class RopeLayout(enum.Enum):
    """Which coordinate pairs RoPE rotates."""

    INTERLEAVED = "interleaved"
    HALF = "half"


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """Static hyperparameters (SmolLM2-135M: ``vocab_size=49152, dim=576, num_layers=30, num_heads=9,
    num_kv_heads=3, hidden_dim=1536, rope_theta=1e5, norm_eps=1e-5``)."""

    vocab_size: int = 49152
    dim: int = 576
    num_layers: int = 30
    num_heads: int = 9
    num_kv_heads: int = 3
    hidden_dim: int = 1536
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    rope_layout: RopeLayout = RopeLayout.INTERLEAVED

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    def __post_init__(self):
        if self.dim % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError(f"dim ({self.dim}) must divide by num_heads ({self.num_heads}), which must divide by "
                             f"num_kv_heads ({self.num_kv_heads})")
        if (self.dim // self.num_heads) % 2:
            raise ValueError("head_dim must be even for RoPE")


def _init(rngs, shape, dtype):
    return jax.random.normal(rngs.params(), shape, dtype) * (1.0 / math.sqrt(shape[-1]))


class Linear(nnx.Module):
    """Bias-free linear layer with ``weight`` of shape ``(d_out, d_in)``: ``y = x Wᵀ``."""

    def __init__(self, d_in: int, d_out: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.weight = nnx.Param(_init(rngs, (d_out, d_in), dtype))

    def __call__(self, x: Float[Array, "... d_in"]) -> Float[Array, "... d_out"]:
        return x @ self.weight[...].T


class RMSNorm(nnx.Module):
    """``x / sqrt(mean(x²) + eps) · g``."""

    def __init__(self, dim: int, *, eps: float = 1e-5, dtype=jnp.float32):
        self.weight = nnx.Param(jnp.ones((dim,), dtype))
        self.eps = eps

    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, "... d"]:
        ms = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        return x * jax.lax.rsqrt(ms + self.eps) * self.weight[...]


def rope(
    x: Float[Array, "... l h d"], positions: Int[Array, " l"], theta: float, layout: RopeLayout
) -> Float[Array, "... l h d"]:
    """Rotary position embedding (Su et al. 2021): pair ``j`` rotated by ``pos · theta^{−2j/d}``."""
    d = x.shape[-1]
    inv = 1.0 / (theta ** (jnp.arange(0, d, 2, dtype=x.dtype) / d))
    ang = positions.astype(x.dtype)[:, None] * inv[None, :]  # (l, d/2)
    cos, sin = jnp.cos(ang)[:, None, :], jnp.sin(ang)[:, None, :]  # (l, 1, d/2)
    if layout is RopeLayout.INTERLEAVED:
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return jnp.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1).reshape(x.shape)
    x0, x1 = x[..., : d // 2], x[..., d // 2:]
    return jnp.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)


LINEAR_NAMES = ("q", "k", "v", "o", "gate", "up", "down")
"""Linear layers of a block, in order; their inputs are ``attn_in`` (q, k, v), ``o_in``, ``mlp_in`` (gate, up),
``down_in``."""

LINEAR_INPUTS = {"q": "attn_in", "k": "attn_in", "v": "attn_in", "o": "o_in", "gate": "mlp_in", "up": "mlp_in",
                 "down": "down_in"}


class LlamaBlock(nnx.Module):
    """One pre-norm decoder block with causal GQA attention and a SwiGLU MLP."""

    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs, dtype=jnp.float32):
        c = config
        self.config = c
        hd = c.head_dim
        self.attn_norm = RMSNorm(c.dim, eps=c.norm_eps, dtype=dtype)
        self.q = Linear(c.dim, c.num_heads * hd, rngs=rngs, dtype=dtype)
        self.k = Linear(c.dim, c.num_kv_heads * hd, rngs=rngs, dtype=dtype)
        self.v = Linear(c.dim, c.num_kv_heads * hd, rngs=rngs, dtype=dtype)
        self.o = Linear(c.num_heads * hd, c.dim, rngs=rngs, dtype=dtype)
        self.mlp_norm = RMSNorm(c.dim, eps=c.norm_eps, dtype=dtype)
        self.gate = Linear(c.dim, c.hidden_dim, rngs=rngs, dtype=dtype)
        self.up = Linear(c.dim, c.hidden_dim, rngs=rngs, dtype=dtype)
        self.down = Linear(c.hidden_dim, c.dim, rngs=rngs, dtype=dtype)

    def __call__(self, x: Float[Array, "b l d"], *, return_inputs: bool = False):
        """``(b, l, d) -> (b, l, d)``; with ``return_inputs`` also a dict of the linear layers' inputs
        (keys ``attn_in``, ``o_in``, ``mlp_in``, ``down_in``; see :data:`LINEAR_INPUTS`)."""
        c = self.config
        b, l, _ = x.shape
        hd = c.head_dim
        pos = jnp.arange(l)
        a_in = self.attn_norm(x)
        q = rope(self.q(a_in).reshape(b, l, c.num_heads, hd), pos, c.rope_theta, c.rope_layout)
        k = rope(self.k(a_in).reshape(b, l, c.num_kv_heads, hd), pos, c.rope_theta, c.rope_layout)
        v = self.v(a_in).reshape(b, l, c.num_kv_heads, hd)
        rep = c.num_heads // c.num_kv_heads
        k = jnp.repeat(k, rep, axis=2)
        v = jnp.repeat(v, rep, axis=2)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
        causal = jnp.tril(jnp.ones((l, l), bool))
        logits = jnp.where(causal[None, None], logits, jnp.finfo(logits.dtype).min)
        probs = jax.nn.softmax(logits, axis=-1)
        o_in = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, l, c.num_heads * hd)
        h = x + self.o(o_in)
        m_in = self.mlp_norm(h)
        d_in = jax.nn.silu(self.gate(m_in)) * self.up(m_in)
        y = h + self.down(d_in)
        if return_inputs:
            return y, {"attn_in": a_in, "o_in": o_in, "mlp_in": m_in, "down_in": d_in}
        return y


class LlamaModel(nnx.Module):
    """Token embedding, ``num_layers`` :class:`LlamaBlock` s, final RMSNorm, (tied) output projection.

    Example:
      >>> cfg = LlamaConfig(vocab_size=32, dim=16, num_layers=2, num_heads=4, num_kv_heads=2, hidden_dim=32)
      >>> m = LlamaModel(cfg, rngs=nnx.Rngs(0))
      >>> m(jnp.zeros((1, 5), jnp.int32)).shape
      (1, 5, 32)
    """

    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.config = config
        self.embed = nnx.Param(jax.random.normal(rngs.params(), (config.vocab_size, config.dim), dtype) * 0.02)
        self.blocks = nnx.List([LlamaBlock(config, rngs=rngs, dtype=dtype) for _ in range(config.num_layers)])
        self.norm = RMSNorm(config.dim, eps=config.norm_eps, dtype=dtype)
        self.lm_head = None if config.tie_embeddings else Linear(config.dim, config.vocab_size, rngs=rngs, dtype=dtype)

    def embed_tokens(self, tokens: Int[Array, "b l"]) -> Float[Array, "b l d"]:
        return jnp.take(self.embed[...], tokens, axis=0)

    def head(self, h: Float[Array, "b l d"]) -> Float[Array, "b l v"]:
        """Final norm and output projection."""
        h = self.norm(h)
        return h @ self.embed[...].T if self.lm_head is None else self.lm_head(h)

    def __call__(self, tokens: Int[Array, "b l"]) -> Float[Array, "b l v"]:
        h = self.embed_tokens(tokens)
        for blk in self.blocks:
            h = blk(h)
        return self.head(h)


def next_token_nll(logits: Float[Array, "b l v"], tokens: Int[Array, "b l"]) -> Float[Array, "b l-1"]:
    """Per-position negative log-likelihood of ``tokens[:, 1:]`` under ``logits[:, :-1]``."""
    lp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
    return -jnp.take_along_axis(lp, tokens[:, 1:, None], axis=-1)[..., 0]


def greedy_generate(model: LlamaModel, tokens: Int[Array, " l"], num_new: int) -> Int[Array, " l+num_new"]:
    """Greedy decoding without a KV cache (full re-forward per token; fine for short sanity checks)."""
    toks = jnp.asarray(tokens)
    for _ in range(num_new):
        logits = model(toks[None])
        toks = jnp.concatenate([toks, jnp.argmax(logits[0, -1])[None].astype(toks.dtype)])
    return toks


__all__ = [
    "LINEAR_INPUTS",
    "LINEAR_NAMES",
    "Linear",
    "LlamaBlock",
    "LlamaConfig",
    "LlamaModel",
    "RMSNorm",
    "RopeLayout",
    "greedy_generate",
    "next_token_nll",
    "rope",
]


def llama_from_weights(config: LlamaConfig, weights: dict, *, dtype=jnp.float32) -> LlamaModel:
    """Build a :class:`LlamaModel` from a dict of arrays named ``embed``, ``norm``, ``lm_head`` (untied only),
    ``blocks.{i}.{attn_norm,q,k,v,o,mlp_norm,gate,up,down}`` (``(d_out, d_in)``), e.g.
    ``eigenkit.data.smollm2_weights()``."""
    abstract = nnx.eval_shape(lambda: LlamaModel(config, rngs=nnx.Rngs(0), dtype=dtype))
    graphdef, state = nnx.split(abstract)
    pure = nnx.to_pure_dict(state)

    def put(tree, key, name):
        want = tree[key].shape
        arr = jnp.asarray(weights[name], dtype)
        if arr.shape != tuple(want):
            raise ValueError(f"weight {name} has shape {arr.shape}, expected {tuple(want)}")
        tree[key] = arr

    put(pure, "embed", "embed")
    put(pure["norm"], "weight", "norm")
    if not config.tie_embeddings:
        put(pure["lm_head"], "weight", "lm_head")
    for i in range(config.num_layers):
        blk = pure["blocks"][i]
        put(blk["attn_norm"], "weight", f"blocks.{i}.attn_norm")
        put(blk["mlp_norm"], "weight", f"blocks.{i}.mlp_norm")
        for n in LINEAR_NAMES:
            put(blk[n], "weight", f"blocks.{i}.{n}")
    nnx.replace_by_pure_dict(state, pure)
    model = nnx.merge(graphdef, state)
    return model


__all__ += ["llama_from_weights"]


def llama_weights(model: LlamaModel) -> dict:
    """The inverse of :func:`llama_from_weights`: a flat dict of arrays under the generic names."""
    out = {"embed": model.embed[...], "norm": model.norm.weight[...]}
    if model.lm_head is not None:
        out["lm_head"] = model.lm_head.weight[...]
    for i, blk in enumerate(model.blocks):
        out[f"blocks.{i}.attn_norm"] = blk.attn_norm.weight[...]
        out[f"blocks.{i}.mlp_norm"] = blk.mlp_norm.weight[...]
        for n in LINEAR_NAMES:
            out[f"blocks.{i}.{n}"] = getattr(blk, n).weight[...]
    return out


def block_apply(config: LlamaConfig, block_weights: dict, x, *, return_inputs: bool = False):
    """Pure functional forward of one :class:`LlamaBlock` from a dict ``{attn_norm, q, k, v, o, mlp_norm, gate, up,
    down}`` of arrays (jit-friendly: the module is rebuilt abstractly at trace time)."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: LlamaBlock(config, rngs=nnx.Rngs(0), dtype=x.dtype)))
    pure = nnx.to_pure_dict(state)
    pure["attn_norm"]["weight"] = block_weights["attn_norm"]
    pure["mlp_norm"]["weight"] = block_weights["mlp_norm"]
    for n in LINEAR_NAMES:
        pure[n]["weight"] = block_weights[n]
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graphdef, state)(x, return_inputs=return_inputs)


__all__ += ["block_apply", "llama_weights"]
