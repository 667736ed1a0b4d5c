"""BERT encoder: forward equals an independent float64 NumPy forward on random weights (HuggingFace layout through
``bert_from_weights``), padding does not change the real tokens' pooled embedding, inputs_embeds == input_ids path,
bad inputs; the real MiniLM-L6 reproduces the sentence-transformers cosine (skips without the package); the
safetensors reader round-trips."""

import json
import math
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.special import erf

from eigenkit import data
from eigenkit.nn import BertConfig, BertEncoder, bert_from_weights, mean_pool

C = BertConfig(vocab_size=40, hidden=12, num_layers=2, num_heads=3, intermediate=20, max_positions=10)


def _weights(rng, c=C):
    w = {"embeddings.word_embeddings.weight": rng.normal(size=(c.vocab_size, c.hidden)),
         "embeddings.position_embeddings.weight": rng.normal(size=(c.max_positions, c.hidden)),
         "embeddings.token_type_embeddings.weight": rng.normal(size=(c.type_vocab_size, c.hidden)),
         "embeddings.LayerNorm.weight": 1 + 0.1 * rng.normal(size=c.hidden),
         "embeddings.LayerNorm.bias": 0.1 * rng.normal(size=c.hidden)}
    shapes = {"attention.self.query": (c.hidden, c.hidden), "attention.self.key": (c.hidden, c.hidden),
              "attention.self.value": (c.hidden, c.hidden), "attention.output.dense": (c.hidden, c.hidden),
              "intermediate.dense": (c.intermediate, c.hidden), "output.dense": (c.hidden, c.intermediate)}
    for i in range(c.num_layers):
        for name, shp in shapes.items():
            w[f"encoder.layer.{i}.{name}.weight"] = rng.normal(size=shp) / math.sqrt(shp[1])
            w[f"encoder.layer.{i}.{name}.bias"] = 0.1 * rng.normal(size=shp[0])
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"encoder.layer.{i}.{name}.weight"] = 1 + 0.1 * rng.normal(size=c.hidden)
            w[f"encoder.layer.{i}.{name}.bias"] = 0.1 * rng.normal(size=c.hidden)
    return w


def _np_forward(w, ids, mask, c=C):
    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + c.norm_eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    t = ids.shape[-1]
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, "embeddings.LayerNorm")
    dh = c.hidden // c.num_heads
    for i in range(c.num_layers):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + f"attention.self.{n}").reshape(*x.shape[:-1], c.num_heads, dh)
                   for n in ("query", "key", "value"))
        s = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh) + np.where(mask[:, None, None, :], 0.0, -1e30)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        o = np.einsum("bhqk,bkhd->bqhd", a, v).reshape(x.shape)
        x = ln(x + lin(o, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        u = lin(x, p + "intermediate.dense")
        x = ln(x + lin(0.5 * u * (1 + erf(u / math.sqrt(2))), p + "output.dense"), p + "output.LayerNorm")
    m = mask[..., None]
    pooled = (x * m).sum(1) / m.sum(1)
    return x, pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


def test_forward_matches_numpy_reference():
    rng = np.random.default_rng(0)
    w = _weights(rng)
    ids = rng.integers(0, C.vocab_size, (3, 7))
    mask = np.ones((3, 7), bool)
    mask[1, 5:] = False
    mask[2, 2:] = False
    enc = bert_from_weights({"bert." + k: v for k, v in w.items()}, C, param_dtype=jnp.float64)
    h = enc(jnp.asarray(ids), jnp.asarray(mask))
    h_ref, pooled_ref = _np_forward(w, ids, mask)
    np.testing.assert_allclose(np.asarray(h)[mask], h_ref[mask], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(mean_pool(h, jnp.asarray(mask)), pooled_ref, rtol=1e-9, atol=1e-10)
    # inputs_embeds path == ids path; padding more does not change the real tokens' pooled embedding
    h2 = enc(None, jnp.asarray(mask), inputs_embeds=enc.embed_tokens(jnp.asarray(ids)))
    np.testing.assert_allclose(h2, h, atol=1e-12)
    ids_p, mask_p = np.pad(ids, ((0, 0), (0, 3))), np.pad(mask, ((0, 0), (0, 3)))
    np.testing.assert_allclose(mean_pool(enc(jnp.asarray(ids_p), jnp.asarray(mask_p)), jnp.asarray(mask_p)),
                               pooled_ref, rtol=1e-9, atol=1e-10)
    g = jax.grad(lambda e: jnp.sum(mean_pool(enc(None, jnp.asarray(mask), inputs_embeds=e), jnp.asarray(mask))))(
        enc.embed_tokens(jnp.asarray(ids)))
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[~mask] == 0)


def test_bad_inputs():
    rng = np.random.default_rng(1)
    w = _weights(rng)
    enc = BertEncoder(C, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        enc(None, jnp.ones((1, 3), bool))
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        enc(jnp.zeros((1, 3), jnp.int32), jnp.ones((1, 4), bool))
    with pytest.raises(ValueError, match="exceeds max_positions=10"):
        enc(jnp.zeros((1, 11), jnp.int32), jnp.ones((1, 11), bool))
    bad = dict(w)
    del bad["encoder.layer.1.output.dense.bias"]
    with pytest.raises(KeyError, match="encoder.layer.1.output.dense.bias"):
        bert_from_weights(bad, C)
    bad = dict(w, **{"embeddings.word_embeddings.weight": np.zeros((5, C.hidden))})
    with pytest.raises(ValueError, match="embeddings.word_embeddings.weight"):
        bert_from_weights(bad, C)


def test_safetensors_reader_round_trip(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -2], np.int64)}
    header, blobs, off = {}, [], 0
    for name, x in arrays.items():
        raw = x.astype(x.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": {"float32": "F32", "int64": "I64"}[str(x.dtype)], "shape": list(x.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    (tmp_path / "t.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    got = data.read_safetensors(tmp_path / "t.safetensors")
    for name, x in arrays.items():
        np.testing.assert_array_equal(got[name], x)
        assert got[name].dtype == x.dtype


def test_minilm_reproduces_sentence_transformers_cosine():
    try:
        w, cfg, tok = data.minilm_weights(), data.minilm_config(), data.minilm_tokenizer()
    except data.MissingDataError as e:
        pytest.skip(str(e))
    enc = bert_from_weights(w, BertConfig.from_hf(cfg))
    seqs = [tok.encode(s).ids for s in ("A man is playing a guitar.", "Someone plays an instrument.")]
    t = max(map(len, seqs))
    ids = np.zeros((2, t), np.int32)
    mask = np.zeros((2, t), bool)
    for i, s in enumerate(seqs):
        ids[i, :len(s)], mask[i, :len(s)] = s, True
    z = mean_pool(enc(jnp.asarray(ids), jnp.asarray(mask)), jnp.asarray(mask))
    # ../shared/DATA.md: a NumPy forward matching sentence-transformers to 1.2e-7 gives ≈ 0.667
    assert abs(float(z[0] @ z[1]) - 0.667) < 1e-3
