"""eigenkit.nn.ClipVision / Llava and eigenkit.data.HFLlavaCheckpoint: parity with transformers'
LlavaForConditionalGeneration (the committed fixture of experiments/eigenshield/make_llava_fixture.py), an
independent float64 NumPy forward of the CLIP tower, the three checkpoint layouts, and clear errors."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit.data import HFLlavaCheckpoint, MissingDataError, hf_llava_config, write_hf_llava
from eigenkit.nn import (
    CLIP_MEAN,
    CLIP_STD,
    ClipVision,
    ClipVisionConfig,
    LlamaConfig,
    Llava,
    LlavaConfig,
    RopeLayout,
    clip_vision_from_weights,
    llava_from_weights,
    llava_weights,
)

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "llava_tiny"
V = ClipVisionConfig(image_size=28, patch_size=14, hidden=16, num_layers=2, num_heads=2, intermediate=32)
T = LlamaConfig(vocab_size=40, dim=16, num_layers=1, num_heads=2, num_kv_heads=1, hidden_dim=32,
                tie_embeddings=False, rope_layout=RopeLayout.HALF)
C = LlavaConfig(vision=V, text=T, image_token_index=39)


def test_matches_transformers_llava_fixture():
    """Logits of the tiny random transformers 5.24 LLaVA (save_pretrained layout), to float32 rounding."""
    ck = HFLlavaCheckpoint(FIXTURE)
    assert ck.layout["vision."] == "vision_tower."  # transformers 5 drops 'vision_model.' on save
    m = llava_from_weights(ck.config, ck.weights())
    io = np.load(FIXTURE / "io.npz")
    lg = m.logits(jnp.asarray(io["images"]), jnp.asarray(io["prefix"]), jnp.asarray(io["suffix"]))
    assert lg.shape == io["logits"].shape
    np.testing.assert_allclose(np.asarray(lg), io["logits"], rtol=0, atol=2e-5)
    assert np.abs(io["logits"]).max() > 0.3  # not a trivially small comparison


def _np_clip(w, pixels, k):
    """float64 NumPy forward of hidden_states[k] of a CLIP vision tower (conv as an explicit loop over patches)."""
    c = V
    x = pixels.astype(np.float64)
    b, p, g = x.shape[0], c.patch_size, c.image_size // c.patch_size
    conv = w["vision_model.embeddings.patch_embedding.weight"].astype(np.float64)  # (out, C, p, p)
    patches = np.zeros((b, g * g, c.hidden))
    for i in range(g):
        for j in range(g):
            patch = x[:, i * p:(i + 1) * p, j * p:(j + 1) * p, :]  # (b, p, p, C)
            patches[:, i * g + j] = np.einsum("bhwc,ochw->bo", patch, conv)
    cls = np.broadcast_to(w["vision_model.embeddings.class_embedding"], (b, 1, c.hidden))
    h = np.concatenate([cls, patches], 1) + w["vision_model.embeddings.position_embedding.weight"][None]

    def ln(z, name):
        mu, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        return (z - mu) / np.sqrt(var + c.norm_eps) * w[name + ".weight"] + w[name + ".bias"]

    def lin(z, name):
        return z @ w[name + ".weight"].T + w[name + ".bias"]

    h = ln(h, "vision_model.pre_layrnorm")
    hd = c.hidden // c.num_heads
    for i in range(k):
        pre = f"vision_model.encoder.layers.{i}."
        a = ln(h, pre + "layer_norm1")
        q, kk, v = (lin(a, pre + f"self_attn.{n}_proj").reshape(b, -1, c.num_heads, hd) for n in "qkv")
        s = np.einsum("bqhd,bkhd->bhqk", q, kk) / np.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        h = h + lin(np.einsum("bhqk,bkhd->bqhd", s, v).reshape(b, -1, c.hidden), pre + "self_attn.out_proj")
        f = lin(ln(h, pre + "layer_norm2"), pre + "mlp.fc1")
        h = h + lin(f / (1 + np.exp(-1.702 * f)), pre + "mlp.fc2")
    return h


@pytest.mark.parametrize("k", [0, 1, 2])
def test_clip_vision_matches_a_numpy_forward(k):
    m = Llava(C, param_dtype=jnp.float64, rngs=nnx.Rngs(1))
    w = {"vision_model." + n[len("vision."):]: np.asarray(a) for n, a in llava_weights(m).items()
         if n.startswith("vision.")}
    tower = clip_vision_from_weights(V, w, param_dtype=jnp.float64)
    x = np.random.default_rng(0).normal(size=(3, 28, 28, 3))
    np.testing.assert_allclose(np.asarray(tower(jnp.asarray(x), num_layers=k)), _np_clip(w, x, k),
                               rtol=1e-10, atol=1e-12)


def test_image_features_use_the_penultimate_layer_without_the_class_token():
    m = Llava(C, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(0), (2, 28, 28, 3))
    h = m.vision((x - jnp.asarray(CLIP_MEAN)) / jnp.asarray(CLIP_STD), num_layers=V.num_layers - 1)[:, 1:]
    want = m.linear_2(jax.nn.gelu(m.linear_1(h), approximate=False))
    np.testing.assert_allclose(np.asarray(m.image_features(x)), np.asarray(want), rtol=1e-6, atol=1e-6)
    assert C.num_image_tokens == 4


@pytest.mark.parametrize("layout", ["legacy", "v4.52", "v5"])
def test_checkpoint_round_trip_in_every_layout(tmp_path, layout):
    m = Llava(C, rngs=nnx.Rngs(0))
    write_hf_llava(tmp_path, C, llava_weights(m), layout=layout)
    ck = HFLlavaCheckpoint(tmp_path)
    assert ck.config == C
    m2 = llava_from_weights(ck.config, ck.weights())
    x = jax.random.uniform(jax.random.key(1), (1, 28, 28, 3))
    pre, suf = jnp.array([[1, 2]], jnp.int32), jnp.array([[3, 4, 5]], jnp.int32)
    np.testing.assert_array_equal(np.asarray(m.logits(x, pre, suf)), np.asarray(m2.logits(x, pre, suf)))


def test_feature_filter_and_right_padding():
    m = Llava(C, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(2), (1, 28, 28, 3))
    pre = jnp.array([[1, 2]], jnp.int32)
    a = m.logits(x, pre, jnp.array([[3, 4, 0, 0]], jnp.int32))
    b = m.logits(x, pre, jnp.array([[3, 4, 7, 9]], jnp.int32))
    np.testing.assert_allclose(np.asarray(a[:, :8]), np.asarray(b[:, :8]), rtol=1e-6, atol=1e-6)  # causal
    z = m.logits(x, pre, jnp.array([[3, 4]], jnp.int32), feature_filter=jnp.zeros_like)
    zero_img = m.logits_from_embeds(jnp.concatenate([m.lm.embed_tokens(pre), jnp.zeros((1, 4, 16), jnp.float32),
                                                     m.lm.embed_tokens(jnp.array([[3, 4]], jnp.int32))], 1))
    np.testing.assert_allclose(np.asarray(z), np.asarray(zero_img), rtol=1e-6, atol=1e-6)


def test_hub_style_sparse_config_takes_transformers_defaults(tmp_path):
    """llava-1.5-7b-hf's config.json lists few text_config fields: the rest are LLaMA-7B's defaults."""
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "llava", "image_token_index": 32000, "projector_hidden_act": "gelu",
        "vision_feature_layer": -2, "vision_feature_select_strategy": "default",
        "text_config": {"model_type": "llama", "vocab_size": 32064, "rms_norm_eps": 1e-5},
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "image_size": 336,
                          "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24,
                          "patch_size": 14}}))
    c = hf_llava_config(tmp_path)
    assert c == LlavaConfig()  # the defaults are llava-1.5-7b
    assert (c.text.dim, c.text.num_layers, c.text.hidden_dim, c.num_image_tokens) == (4096, 32, 11008, 576)


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(MissingDataError, match="config.json"):
        HFLlavaCheckpoint(tmp_path / "absent")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="model_type 'llama' is not 'llava'"):
        hf_llava_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava", "vision_feature_layer": [-2, -5]}))
    with pytest.raises(ValueError, match="vision_feature_layer"):
        hf_llava_config(tmp_path)
    m = ClipVision(V, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"pixels must have shape \(batch, 28, 28, 3\)"):
        m(jnp.zeros((1, 3, 28, 28)))
    with pytest.raises(ValueError, match="num_layers must be in"):
        m(jnp.zeros((1, 28, 28, 3)), num_layers=3)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        ClipVisionConfig(image_size=30, patch_size=14)
    d = tmp_path / "ck"
    write_hf_llava(d, C, llava_weights(Llava(C, rngs=nnx.Rngs(0))))
    cfg = json.loads((d / "config.json").read_text())
    cfg["text_config"]["hidden_size"] = 32
    cfg["text_config"]["num_attention_heads"] = 4
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="has shape"):
        HFLlavaCheckpoint(d)
