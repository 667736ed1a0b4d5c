"""Block-streamed EoRA passes (``stream_compress`` / ``stream_compensate`` / ``stream_perplexity``) equal the
whole-model driver, read checkpoints from disk, and keep about one block on the device."""

import numpy as np
import pytest
from flax import nnx

from eigenkit.data import HFLlamaCheckpoint, write_hf_llama
from eigenkit.methods import eora
from eigenkit.nn import LINEAR_NAMES, LlamaConfig, LlamaModel, RopeLayout, llama_weights

CFG = LlamaConfig(vocab_size=48, dim=16, num_layers=2, num_heads=4, num_kv_heads=2, hidden_dim=24,
                  tie_embeddings=False, rope_layout=RopeLayout.HALF)
GPTQ3 = eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=3, block_size=8)
EORA4 = eora.CompensationSpec(eora.Compensation.EORA, rank=4)
SVD4 = eora.CompensationSpec(eora.Compensation.SVD, rank=4)


@pytest.fixture(scope="module")
def whole():
    """The whole-model reference: GPTQ 3-bit on one set, EoRA on another, perplexity on a third."""
    model = LlamaModel(CFG, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    calib, calib_e, ev = (rng.integers(0, 48, (n, 12)).astype(np.int32) for n in (6, 5, 3))
    compressed, report = eora.compress_model(model, calib, GPTQ3, batch_size=4)
    eora_model, eora_f, _ = eora.compensate_model(model, compressed, calib_e, EORA4, batch_size=4)
    svd_model, svd_f, _ = eora.compensate_model(model, compressed, None, SVD4)
    ppl = {"uncompressed": eora.perplexity(model, ev, batch_size=2),
           "none": eora.perplexity(eora.apply_factors(model, compressed), ev, batch_size=2),
           "eora": eora.perplexity(eora_model, ev, batch_size=2), "svd": eora.perplexity(svd_model, ev, batch_size=2)}
    return dict(model=model, calib=calib, calib_e=calib_e, ev=ev, compressed=compressed, report=report,
                eora_f=eora_f, svd_f=svd_f, ppl=ppl)


def _check_factors(store, factors):
    for i in range(CFG.num_layers):
        f = store.read(i)
        for name in LINEAR_NAMES:
            b, a = factors[f"blocks.{i}.{name}"]
            np.testing.assert_allclose(f[f"{name}.B"] @ f[f"{name}.A"], np.asarray(b @ a), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{i}.{name}")


@pytest.mark.parametrize("placement", [eora.StatePlacement.HOST, eora.StatePlacement.DEVICE])
def test_streamed_passes_equal_whole_model(whole, tmp_path, placement):
    w = whole
    src = eora.ModelSource(w["model"])
    cs = eora.BlockStore(tmp_path / "gptq3")
    report = eora.stream_compress(src, w["calib"], GPTQ3, cs, batch_size=4, placement=placement, key="k1")
    assert cs.complete("k1") and not cs.complete("other")
    assert [(r["layer"], r["name"]) for r in report] == [(r["layer"], r["name"]) for r in w["report"]]
    np.testing.assert_allclose([r["rel_err"] for r in report], [r["rel_err"] for r in w["report"]], rtol=1e-5)
    for i in range(CFG.num_layers):
        got = cs.read(i)
        assert set(got) == set(LINEAR_NAMES)
        for name in LINEAR_NAMES:  # the same covariances -> the same GPTQ grid and rounding
            np.testing.assert_allclose(got[name], np.asarray(w["compressed"][f"blocks.{i}.{name}"]), atol=1e-6)
    fe, fs = eora.BlockStore(tmp_path / "eora4"), eora.BlockStore(tmp_path / "svd4")
    eora.stream_compensate(src, cs, w["calib_e"], EORA4, fe, batch_size=4, placement=placement)
    eora.stream_compensate(src, cs, None, SVD4, fs)
    _check_factors(fe, w["eora_f"])
    _check_factors(fs, w["svd_f"])
    f0 = fe.read(0)
    assert f0["q.B"].shape == (16, 4) and f0["q.A"].shape == (4, 16) and f0["down.A"].shape == (4, 24)
    ppl = {"uncompressed": eora.stream_perplexity(src, w["ev"], batch_size=2, placement=placement),
           "none": eora.stream_perplexity(src, w["ev"], compressed=cs, batch_size=2, placement=placement),
           "eora": eora.stream_perplexity(src, w["ev"], compressed=cs, factors=fe, batch_size=2, placement=placement),
           "svd": eora.stream_perplexity(src, w["ev"], compressed=cs, factors=fs, batch_size=2, placement=placement)}
    for k, v in w["ppl"].items():
        np.testing.assert_allclose(ppl[k], v, rtol=1e-5, err_msg=k)
    assert len(set(np.round(list(ppl.values()), 4))) == 4  # the four models differ


def test_stream_from_hf_checkpoint_on_disk(whole, tmp_path):
    """The same passes from a bf16-free float32 safetensors checkpoint (HFLlamaCheckpoint as the block source)."""
    w = whole
    write_hf_llama(tmp_path / "ck", CFG, {k: np.asarray(v) for k, v in llama_weights(w["model"]).items()}, shards=2)
    ck = HFLlamaCheckpoint(tmp_path / "ck")
    cs, fe = eora.BlockStore(tmp_path / "c"), eora.BlockStore(tmp_path / "f")
    eora.stream_compress(ck, w["calib"], GPTQ3, cs, batch_size=4)
    eora.stream_compensate(ck, cs, w["calib_e"], EORA4, fe, batch_size=4)
    _check_factors(fe, w["eora_f"])
    np.testing.assert_allclose(eora.stream_perplexity(ck, w["ev"], compressed=cs, factors=fe, batch_size=2),
                               w["ppl"]["eora"], rtol=1e-5)


def test_stream_errors(whole, tmp_path):
    src = eora.ModelSource(whole["model"])
    incomplete = eora.BlockStore(tmp_path / "inc")
    incomplete.start()
    with pytest.raises(ValueError, match="incomplete"):
        eora.stream_compensate(src, incomplete, whole["calib"], EORA4, eora.BlockStore(tmp_path / "o"))
    with pytest.raises(ValueError, match="2-D integer"):
        eora.stream_compress(src, np.zeros(5, np.int32), GPTQ3, eora.BlockStore(tmp_path / "x"))
    with pytest.raises(ValueError, match="compressed store"):
        eora.stream_perplexity(src, whole["ev"], factors=incomplete)
    with pytest.raises(FileNotFoundError, match="block-00000"):
        incomplete.read(0)


def test_device_memory_is_about_one_block(tmp_path):
    """8 blocks with weights large relative to the activations: the live device bytes sampled during every pass stay
    within the per-block working set — compression: ``W`` and ``W_c`` of one block; EoRA: ``W``, ``W_c``,
    ``W_c + B A`` and the factors — plus one chunk of states, and well below the whole model. (Samples are taken
    between jitted calls; transients inside a call are not seen on CPU, see ``DeviceMemory.allocator_peak``.)"""
    cfg = LlamaConfig(vocab_size=64, dim=64, num_layers=8, num_heads=4, num_kv_heads=2, hidden_dim=192,
                      tie_embeddings=False, rope_layout=RopeLayout.HALF)
    src = eora.ModelSource(LlamaModel(cfg, rngs=nnx.Rngs(1)))
    toks = np.random.default_rng(1).integers(0, 64, (4, 8)).astype(np.int32)  # 2 chunks of (2, 8)
    block = sum(np.asarray(v).nbytes for v in src.block(0).values())
    head = 2 * cfg.vocab_size * cfg.dim * 4
    model_bytes = cfg.num_layers * block + head
    margin = 8 * (2 * 8 * cfg.hidden_dim * 4)  # a few chunk-sized activations, (2, 8, hidden_dim) float32
    factors = sum(4 * 4 * (a + b) for a, b in ((64, 64), (32, 64), (32, 64), (64, 64), (192, 64), (192, 64),
                                               (64, 192)))
    cs, fe = eora.BlockStore(tmp_path / "c"), eora.BlockStore(tmp_path / "f")
    m1, m2, m3 = eora.DeviceMemory(), eora.DeviceMemory(), eora.DeviceMemory()
    eora.stream_compress(src, toks, eora.CompressionSpec(quantizer=eora.Quantizer.RTN, bits=3), cs, batch_size=2,
                         memory=m1)
    eora.stream_compensate(src, cs, toks, EORA4, fe, batch_size=2, memory=m2)
    eora.stream_perplexity(src, toks, compressed=cs, factors=fe, batch_size=2, memory=m3)
    for m in (m1, m2, m3):
        assert set(m.per_block) >= set(range(cfg.num_layers))
        assert m.host_state_bytes == toks.size * cfg.dim * 4  # states live on the host between blocks
    assert 2 * block <= m1.peak <= 2 * block + margin
    assert 3 * block <= m2.peak <= 3 * block + factors + margin
    assert m3.peak <= block + factors + head + margin
    assert max(m.peak for m in (m1, m2, m3)) < 0.45 * model_bytes
    assert m1.summary()["peak_live_bytes"] == m1.peak
