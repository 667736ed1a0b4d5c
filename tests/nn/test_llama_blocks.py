"""LLaMA blocks: RoPE layouts, RMSNorm, GQA block vs a NumPy reference, causality, functional block_apply, jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit.nn import (
    LINEAR_NAMES,
    LlamaConfig,
    LlamaModel,
    RopeLayout,
    block_apply,
    greedy_generate,
    llama_from_weights,
    llama_weights,
    next_token_nll,
    rope,
)

CFG = LlamaConfig(vocab_size=40, dim=16, num_layers=2, num_heads=4, num_kv_heads=2, hidden_dim=24, rope_theta=100.0)


def _np_block(bw, x, cfg, interleaved=True):
    """Float64 NumPy reference of one block."""
    def rms(v, g):
        return v / np.sqrt(np.mean(v**2, -1, keepdims=True) + cfg.norm_eps) * g

    def rot(t):
        l, h, d = t.shape
        inv = 1.0 / cfg.rope_theta ** (np.arange(0, d, 2) / d)
        ang = np.arange(l)[:, None] * inv
        c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
        out = np.empty_like(t)
        if interleaved:
            out[..., 0::2] = t[..., 0::2] * c - t[..., 1::2] * s
            out[..., 1::2] = t[..., 0::2] * s + t[..., 1::2] * c
        else:
            a, b = t[..., : d // 2], t[..., d // 2:]
            out = np.concatenate([a * c - b * s, a * s + b * c], -1)
        return out

    hd = cfg.dim // cfg.num_heads
    l = x.shape[0]
    a = rms(x, bw["attn_norm"])
    q = rot((a @ bw["q"].T).reshape(l, cfg.num_heads, hd))
    k = rot((a @ bw["k"].T).reshape(l, cfg.num_kv_heads, hd))
    v = (a @ bw["v"].T).reshape(l, cfg.num_kv_heads, hd)
    rep = cfg.num_heads // cfg.num_kv_heads
    out = np.zeros((l, cfg.num_heads, hd))
    for h in range(cfg.num_heads):
        sc = q[:, h] @ k[:, h // rep].T / np.sqrt(hd)
        sc = np.where(np.tril(np.ones((l, l), bool)), sc, -np.inf)
        p = np.exp(sc - sc.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        out[:, h] = p @ v[:, h // rep]
    hcur = x + out.reshape(l, -1) @ bw["o"].T
    m = rms(hcur, bw["mlp_norm"])
    g = m @ bw["gate"].T
    return hcur + ((g / (1 + np.exp(-g))) * (m @ bw["up"].T)) @ bw["down"].T


@pytest.mark.parametrize("layout", list(RopeLayout))
def test_block_matches_numpy(rng, dtype, tol, layout):
    cfg = LlamaConfig(**{**CFG.__dict__, "rope_layout": layout})
    bw = {n: rng.standard_normal(s) * 0.3 for n, s in [
        ("q", (16, 16)), ("k", (8, 16)), ("v", (8, 16)), ("o", (16, 16)), ("gate", (24, 16)), ("up", (24, 16)),
        ("down", (16, 24))]}
    bw["attn_norm"] = 1 + 0.1 * rng.standard_normal(16)
    bw["mlp_norm"] = 1 + 0.1 * rng.standard_normal(16)
    x = rng.standard_normal((2, 7, 16))
    f = jax.jit(lambda bw, x: block_apply(cfg, bw, x))
    y = f({k: jnp.asarray(v, dtype) for k, v in bw.items()}, jnp.asarray(x, dtype))
    assert y.dtype == dtype
    for b in range(2):
        np.testing.assert_allclose(np.asarray(y[b]), _np_block(bw, x[b], cfg, layout is RopeLayout.INTERLEAVED),
                                   rtol=10 * tol[0], atol=10 * tol[0])


def test_rope_is_rotation_and_relative(rng):
    x = jnp.asarray(rng.standard_normal((5, 2, 8)))
    for layout in RopeLayout:
        y = rope(x, jnp.arange(5), 100.0, layout)
        np.testing.assert_allclose(np.linalg.norm(np.asarray(y), axis=-1), np.linalg.norm(np.asarray(x), axis=-1))
        # <R_m q, R_n k> depends on m - n only
        q = jnp.broadcast_to(x[0:1], (5, 2, 8))
        k = jnp.broadcast_to(x[1:2], (5, 2, 8))
        rq, rk = rope(q, jnp.arange(5), 100.0, layout), rope(k, jnp.arange(5) + 2, 100.0, layout)
        dots = np.einsum("lhd,lhd->lh", np.asarray(rq), np.asarray(rk))
        np.testing.assert_allclose(dots, np.broadcast_to(dots[0], dots.shape), atol=1e-12)


def test_model_causal_roundtrip_and_generation():
    m = LlamaModel(CFG, rngs=nnx.Rngs(0))
    toks = jnp.asarray(np.random.default_rng(1).integers(0, 40, (2, 9)), jnp.int32)
    logits = m(toks)
    assert logits.shape == (2, 9, 40)
    toks2 = toks.at[:, 6:].set(0)  # changing the future does not change the past
    np.testing.assert_allclose(np.asarray(m(toks2)[:, :6]), np.asarray(logits[:, :6]), atol=1e-5)
    m2 = llama_from_weights(CFG, {k: np.asarray(v) for k, v in llama_weights(m).items()})
    np.testing.assert_array_equal(np.asarray(m2(toks)), np.asarray(logits))
    graphdef, state = nnx.split(m)
    jitted = jax.jit(lambda s, t: nnx.merge(graphdef, s)(t))
    np.testing.assert_allclose(np.asarray(jitted(state, toks)), np.asarray(logits), atol=1e-5)
    nll = next_token_nll(logits, toks)
    assert nll.shape == (2, 8) and np.all(np.asarray(nll) > 0)
    out = greedy_generate(m, toks[0, :3], 2)
    assert out.shape == (5,) and int(out[3]) == int(jnp.argmax(m(toks[:1, :3])[0, -1]))
    assert set(llama_weights(m)) >= {f"blocks.1.{n}" for n in LINEAR_NAMES}


def test_bad_config_and_weights():
    with pytest.raises(ValueError, match="num_heads"):
        LlamaConfig(dim=10, num_heads=3)
    w = {k: np.asarray(v) for k, v in llama_weights(LlamaModel(CFG, rngs=nnx.Rngs(0))).items()}
    w["blocks.0.q"] = w["blocks.0.q"][:, :3]
    with pytest.raises(ValueError, match="blocks.0.q"):
        llama_from_weights(CFG, w)
