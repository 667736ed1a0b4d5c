"""Hugging Face LLaMA checkpoints: safetensors round trip (float32 / bf16, sharded), forward vs a float64 NumPy
reference of HF ``LlamaForCausalLM`` (RMSNorm, rotate-half RoPE, GQA, SwiGLU), bf16 decoding, clear errors."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit.data import (
    HFLlamaCheckpoint,
    MissingDataError,
    SafetensorsReader,
    decode_bf16,
    encode_bf16,
    hf_llama_config,
    hf_llama_tokenizer,
    write_hf_llama,
    write_safetensors,
)
from eigenkit.nn import LlamaConfig, LlamaModel, RopeLayout, llama_from_weights, llama_weights

CFG = LlamaConfig(vocab_size=40, dim=16, num_layers=2, num_heads=4, num_kv_heads=2, hidden_dim=24,
                  rope_theta=500000.0, norm_eps=1e-5, tie_embeddings=False, rope_layout=RopeLayout.HALF)


def tiny_weights(cfg=CFG, seed=0) -> dict:
    """Random weights (norm gains too, so a wrong norm mapping shows) as float32 NumPy arrays."""
    w = {k: np.asarray(v, np.float32) for k, v in llama_weights(LlamaModel(cfg, rngs=nnx.Rngs(seed))).items()}
    rng = np.random.default_rng(seed)
    for k in w:
        if k == "norm" or k.endswith("_norm"):
            w[k] = (1.0 + 0.3 * rng.standard_normal(w[k].shape)).astype(np.float32)
    w["embed"] = (w["embed"] * 20).astype(np.float32)  # unit-scale activations
    return w


def reference_logits(cfg: LlamaConfig, w: dict, tokens: np.ndarray) -> np.ndarray:
    """Float64 NumPy transcription of HF ``LlamaForCausalLM.forward`` (no cache, causal mask)."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    b, length = tokens.shape
    nh, nkv, hd = cfg.num_heads, cfg.num_kv_heads, cfg.dim // cfg.num_heads

    def rms(x, g):
        return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + cfg.norm_eps) * g

    inv = 1.0 / cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    freqs = np.arange(length, dtype=np.float64)[:, None] * inv[None]
    emb = np.concatenate([freqs, freqs], -1)  # (l, hd)
    cos, sin = np.cos(emb)[None, None], np.sin(emb)[None, None]  # (1, 1, l, hd)

    def rotate_half(x):
        return np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], -1)

    h = w["embed"][tokens]
    for i in range(cfg.num_layers):
        p = f"blocks.{i}."
        a = rms(h, w[p + "attn_norm"])
        q = (a @ w[p + "q"].T).reshape(b, length, nh, hd).transpose(0, 2, 1, 3)  # (b, h, l, hd)
        k = (a @ w[p + "k"].T).reshape(b, length, nkv, hd).transpose(0, 2, 1, 3)
        v = (a @ w[p + "v"].T).reshape(b, length, nkv, hd).transpose(0, 2, 1, 3)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = np.repeat(k, nh // nkv, axis=1), np.repeat(v, nh // nkv, axis=1)  # repeat_kv: head j -> j // n_rep
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
        s = np.where(np.tril(np.ones((length, length), bool)), s, -np.inf)
        pr = np.exp(s - s.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        o = (pr @ v).transpose(0, 2, 1, 3).reshape(b, length, nh * hd)
        h = h + o @ w[p + "o"].T
        m = rms(h, w[p + "mlp_norm"])
        g = m @ w[p + "gate"].T
        h = h + ((g / (1 + np.exp(-g))) * (m @ w[p + "up"].T)) @ w[p + "down"].T
    out = rms(h, w["norm"])
    return out @ (w["embed"] if cfg.tie_embeddings else w["lm_head"]).T


TOKENS = np.random.default_rng(1).integers(0, CFG.vocab_size, (2, 9)).astype(np.int32)


def bf16_round(x):
    import ml_dtypes

    return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bf16"])
def test_sharded_checkpoint_forward_matches_reference(tmp_path, bf16):
    w = tiny_weights()
    write_hf_llama(tmp_path, CFG, w, bf16=bf16, shards=2)
    assert (tmp_path / "model-00001-of-00002.safetensors").exists() and not (tmp_path / "model.safetensors").exists()
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 2
    ck = HFLlamaCheckpoint(tmp_path)
    assert ck.config == CFG
    got = ck.weights()
    want = {k: bf16_round(v) if bf16 else v for k, v in w.items()}
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    ref = reference_logits(CFG, want, TOKENS)
    ours = np.asarray(llama_from_weights(ck.config, got)(jnp.asarray(TOKENS)), np.float64)
    np.testing.assert_allclose(ours, ref, rtol=2e-4, atol=2e-4 * np.abs(ref).max())
    # the checkpoint's block interface gives the same tensors as the whole-model dict
    for i in range(CFG.num_layers):
        for name, arr in ck.block(i).items():
            np.testing.assert_array_equal(arr, got[f"blocks.{i}.{name}"])
    np.testing.assert_array_equal(ck.embed_tokens(TOKENS), got["embed"][TOKENS])
    np.testing.assert_array_equal(ck.head()["lm_head"], got["lm_head"])
    assert ck.block_nbytes(0) == 4 * sum(got[f"blocks.0.{n}"].size for n in ck.block(0))


def test_float64_reference_agrees_with_eigenkit_model():
    """The NumPy reference and eigenkit.nn.LlamaModel (HALF RoPE, GQA) agree on a model built in memory, tied too."""
    for tie in (False, True):
        cfg = LlamaConfig(**{**CFG.__dict__, "tie_embeddings": tie})
        w = tiny_weights(cfg, seed=3)
        model = llama_from_weights(cfg, w)
        ref = reference_logits(cfg, w, TOKENS)
        np.testing.assert_allclose(np.asarray(model(jnp.asarray(TOKENS)), np.float64), ref, rtol=2e-4,
                                   atol=2e-4 * np.abs(ref).max())


def test_bf16_codec_matches_ml_dtypes():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(2000).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 2000),
                        np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, 3.4e38, 1e-40, -1e-45,
                                  1.00390625, 1.01171875], np.float32)])  # 1 + 2^-8 / 1 + 3·2^-8: ties to even
    bits = encode_bf16(x)
    assert bits.dtype == np.uint16
    np.testing.assert_array_equal(decode_bf16(bits), bf16_round(x))
    import ml_dtypes

    np.testing.assert_array_equal(bits, x.astype(ml_dtypes.bfloat16).view(np.uint16))
    assert np.isnan(decode_bf16(encode_bf16(np.array([np.nan], np.float32))))[0]


def test_reader_single_file_dtypes_and_rows(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(4, 3) - 5.5
    write_safetensors(tmp_path / "x.safetensors", {"a": a, "h": a.astype(np.float16), "i": np.arange(3)},
                      metadata={"format": "pt"})
    write_safetensors(tmp_path / "y.safetensors", {"a": a}, bf16=True)
    r = SafetensorsReader(tmp_path / "x.safetensors")
    assert r.names() == ["a", "h", "i"] and r.shape("a") == (4, 3) and r.nbytes("h") == 24
    np.testing.assert_array_equal(r.get("a"), a)
    np.testing.assert_array_equal(r.get("h"), a)
    assert r.get("i").dtype == np.int64
    np.testing.assert_array_equal(r.rows("a", np.array([3, 1])), a[[3, 1]])
    rb = SafetensorsReader(tmp_path / "y.safetensors")
    assert rb.raw("a").dtype == np.uint16
    np.testing.assert_array_equal(rb.get("a"), bf16_round(a))


def test_bad_checkpoints_raise_clear_errors(tmp_path):
    w = tiny_weights()
    good = tmp_path / "good"
    write_hf_llama(good, CFG, w)
    with pytest.raises(MissingDataError, match="config.json"):
        HFLlamaCheckpoint(tmp_path / "nothing")
    # a tensor missing
    miss = tmp_path / "missing"
    miss.mkdir()
    (miss / "config.json").write_text((good / "config.json").read_text())
    r = SafetensorsReader(good)
    tensors = {n: r.get(n) for n in r.names() if n != "model.layers.1.mlp.up_proj.weight"}
    write_safetensors(miss / "model.safetensors", tensors)
    with pytest.raises(ValueError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        HFLlamaCheckpoint(miss)
    # a tensor of the wrong shape
    bad = tmp_path / "shape"
    bad.mkdir()
    (bad / "config.json").write_text((good / "config.json").read_text())
    tensors = {n: r.get(n) for n in r.names()}
    tensors["model.layers.0.self_attn.k_proj.weight"] = np.zeros((16, 16), np.float32)
    write_safetensors(bad / "model.safetensors", tensors)
    with pytest.raises(ValueError, match=r"self_attn\.k_proj\.weight has shape \(16, 16\), expected \(8, 16\)"):
        HFLlamaCheckpoint(bad)
    with pytest.raises(KeyError, match="nope"):
        SafetensorsReader(good).get("nope")
    # a shard listed in the index but absent
    sh = tmp_path / "shards"
    write_hf_llama(sh, CFG, w, shards=2)
    (sh / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(MissingDataError, match="model-00002-of-00002.safetensors"):
        HFLlamaCheckpoint(sh)
    # no weights at all
    (tmp_path / "cfgonly").mkdir()
    (tmp_path / "cfgonly" / "config.json").write_text((good / "config.json").read_text())
    with pytest.raises(MissingDataError, match="model.safetensors"):
        HFLlamaCheckpoint(tmp_path / "cfgonly")
    # unsupported config features are named
    c = json.loads((good / "config.json").read_text())
    for key, val in (("rope_scaling", {"rope_type": "llama3", "factor": 8.0}), ("attention_bias", True),
                     ("model_type", "mistral")):
        (tmp_path / "c.json").write_text(json.dumps({**c, key: val}))
        with pytest.raises(ValueError, match=key):
            hf_llama_config(tmp_path / "c.json")
    # token ids out of range
    with pytest.raises(ValueError, match="token ids"):
        HFLlamaCheckpoint(good).embed_tokens(np.array([[0, 40]]))
    # a header whose byte range does not hold the shape
    blob = bytearray((good / "model.safetensors").read_bytes())
    n = int.from_bytes(blob[:8], "little")
    head = json.loads(blob[8:8 + n])
    head["model.norm.weight"]["shape"] = [17]
    hb = json.dumps(head).encode()
    (tmp_path / "corrupt.safetensors").write_bytes(len(hb).to_bytes(8, "little") + hb + bytes(blob[8 + n:]))
    with pytest.raises(ValueError, match=r"model\.norm\.weight: 64 bytes do not hold shape \(17,\)"):
        SafetensorsReader(tmp_path / "corrupt.safetensors").get("model.norm.weight")


def write_tiny_tokenizer(path, vocab_size: int) -> None:
    """A word-level ``tokenizer.json`` with a LLaMA-3-like BOS post-processor (ids: 0 = BOS, 1 = unk, 2.. words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    words = ["<|begin_of_text|>", "<unk>"] + [f"w{i}" for i in range(vocab_size - 2)]
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", 0)])
    tok.save(str(path))


def test_tokenizer_adds_bos(tmp_path):
    write_tiny_tokenizer(tmp_path / "tokenizer.json", 10)
    tok = hf_llama_tokenizer(tmp_path)
    assert tok.encode("w0 w3 zzz").ids == [0, 2, 5, 1]
    with pytest.raises(MissingDataError, match="tokenizer.json"):
        hf_llama_tokenizer(tmp_path / "none")
