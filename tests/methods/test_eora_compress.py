"""Compressors: RTN grid, GPTQ vs RTN and vs a NumPy reference sweep, n:m masks, combinations, jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit.methods import eora


def _layer(rng, d_out=16, d_in=32, n=256):
    w = rng.standard_normal((d_out, d_in))
    x = rng.standard_normal((n, d_in)) @ (np.eye(d_in) + 0.5 * rng.standard_normal((d_in, d_in)))
    return w, x


def _np_gptq(w, h, bits, percdamp=0.01, blocksize=8, prune=None):
    """Straightforward float64 NumPy transcription of GPTQ/SparseGPT Alg. 1 (no act-order), as a reference."""
    w = w.copy()
    d = w.shape[1]
    maxq = 2**bits - 1 if bits else None
    if bits:
        xmin = np.minimum(w.min(1), 0)
        xmax = np.maximum(w.max(1), 0)
        scale = (xmax - xmin) / maxq
        zero = np.round(-xmin / scale)
    h = h + percdamp * np.mean(np.diag(h)) * np.eye(d)
    u = np.linalg.cholesky(np.linalg.inv(h)).T
    q = np.zeros_like(w)
    keep = np.ones_like(w, bool)
    for i in range(d):
        if prune and i % prune[1] == 0:
            n, m = prune
            sc = w[:, i:i + m] ** 2 / np.diag(u)[i:i + m] ** 2
            idx = np.argsort(sc, axis=1)[:, :n]
            np.put_along_axis(keep[:, i:i + m], idx, False, axis=1)
        col = np.where(keep[:, i], w[:, i], 0.0)
        if bits:
            col = scale * (np.clip(np.round(col / scale) + zero, 0, maxq) - zero)
        err = (w[:, i] - col) / u[i, i]
        w[:, i:] -= np.outer(err, u[i, i:])
        q[:, i] = col
    return q, keep


def test_rtn_grid_and_idempotent(rng, dtype):
    w = jnp.asarray(rng.standard_normal((4, 16)), dtype)
    q = jax.jit(eora.rtn_quantize, static_argnums=1)(w, 3)
    assert q.dtype == dtype
    for row in np.asarray(q):  # at most 8 distinct levels per row, zero representable
        assert len(np.unique(row)) <= 8
    np.testing.assert_allclose(np.asarray(eora.rtn_quantize(q, 3)), np.asarray(q), atol=1e-5)
    qg = eora.rtn_quantize(w, 2, group_size=4)
    for g in np.asarray(qg).reshape(4, 4, 4):
        for row in g:
            assert len(np.unique(row)) <= 4
    assert np.abs(np.asarray(qg - w)).mean() < np.abs(np.asarray(eora.rtn_quantize(w, 2) - w)).mean()


@pytest.mark.parametrize("bits", [3, 4])
def test_gptq_beats_rtn_and_matches_numpy(rng, bits):
    w, x = _layer(rng)
    h = x.T @ x
    q = eora.gptq_quantize(jnp.asarray(w), jnp.asarray(h), bits, act_order=False, block_size=8)
    ref, _ = _np_gptq(w, h, bits)
    np.testing.assert_allclose(np.asarray(q), ref, atol=1e-8)
    qa = jax.jit(lambda w, h: eora.gptq_quantize(w, h, bits, block_size=8))(jnp.asarray(w), jnp.asarray(h))
    r = eora.rtn_quantize(jnp.asarray(w), bits)
    for cand in (q, qa):
        assert np.linalg.norm((w - np.asarray(cand)) @ x.T) < np.linalg.norm((w - np.asarray(r)) @ x.T)


def test_gptq_float32_and_blocks_agree(rng):
    w, x = _layer(rng)
    h = x.T @ x
    q8 = eora.gptq_quantize(jnp.asarray(w), jnp.asarray(h), 4, block_size=8)
    q32 = eora.gptq_quantize(jnp.asarray(w), jnp.asarray(h), 4, block_size=32)
    np.testing.assert_allclose(np.asarray(q8), np.asarray(q32), atol=1e-8)  # blocking is exact (lazy updates)
    qf = eora.gptq_quantize(jnp.asarray(w, jnp.float32), jnp.asarray(h, jnp.float32), 4, block_size=8)
    assert qf.dtype == jnp.float32
    assert np.mean(np.isclose(np.asarray(qf), np.asarray(q8), atol=1e-4)) > 0.97  # rare rounding flips only


def test_gptq_dead_inputs_and_groups(rng):
    w, x = _layer(rng)
    x[:, 3] = 0.0
    q = eora.gptq_quantize(jnp.asarray(w), jnp.asarray(x.T @ x), 4, group_size=8, block_size=16)
    assert np.all(np.asarray(q)[:, 3] == 0) and np.all(np.isfinite(np.asarray(q)))
    with pytest.raises(ValueError, match="group_size"):
        eora.gptq_quantize(jnp.asarray(w), jnp.asarray(x.T @ x), 4, group_size=5)
    with pytest.raises(ValueError, match="bits"):
        eora.gptq_quantize(jnp.asarray(w), jnp.asarray(x.T @ x), 0)
    with pytest.raises(ValueError, match="hessian must have shape"):
        eora.gptq_quantize(jnp.asarray(w), jnp.eye(5), 4)


def _assert_24(w_c, keep):
    k = np.asarray(keep).reshape(keep.shape[0], -1, 4)
    assert np.all(k.sum(-1) == 2)  # exactly 2 of every 4 kept
    assert np.all(np.asarray(w_c)[~np.asarray(keep)] == 0)


def test_nm_masks_valid_and_sparsegpt_matches_numpy(rng):
    w, x = _layer(rng)
    h = x.T @ x
    for w_c, keep in (eora.magnitude_prune_nm(jnp.asarray(w)),
                      eora.wanda_prune_nm(jnp.asarray(w), jnp.asarray(np.diag(h))),
                      jax.jit(lambda w, h: eora.sparsegpt_prune(w, h, block_size=8))(jnp.asarray(w), jnp.asarray(h)),
                      eora.sparsegpt_prune(jnp.asarray(w), jnp.asarray(h), bits=4, block_size=8)):
        _assert_24(w_c, keep)
    w_c, keep = eora.sparsegpt_prune(jnp.asarray(w), jnp.asarray(h), block_size=8)
    ref_w, ref_keep = _np_gptq(w, h, None, prune=(2, 4))
    np.testing.assert_array_equal(np.asarray(keep), ref_keep)
    np.testing.assert_allclose(np.asarray(w_c), ref_w, atol=1e-8)
    wq, kq = eora.sparsegpt_prune(jnp.asarray(w), jnp.asarray(h), bits=4, block_size=8)
    ref_wq, _ = _np_gptq(w, h, 4, prune=(2, 4))
    np.testing.assert_allclose(np.asarray(wq), ref_wq, atol=1e-8)
    # SparseGPT's update beats magnitude and Wanda masks on the layer output
    errs = {k: np.linalg.norm((w - np.asarray(v)) @ x.T) for k, v in (
        ("sgpt", w_c), ("mag", eora.magnitude_prune_nm(jnp.asarray(w))[0]),
        ("wanda", eora.wanda_prune_nm(jnp.asarray(w), jnp.asarray(np.diag(h)))[0]))}
    assert errs["sgpt"] < errs["wanda"] and errs["sgpt"] < errs["mag"]
    np.testing.assert_array_equal(np.asarray(eora.magnitude_prune_nm(jnp.array([[1.0, -4.0, 2.0, 3.0]]))[0]),
                                  [[0.0, -4.0, 0.0, 3.0]])
    with pytest.raises(ValueError, match="n < m"):
        eora.magnitude_prune_nm(jnp.asarray(w), n=4, m=4)


@pytest.mark.parametrize("spec", [
    eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=4, pruner=eora.Pruner.SPARSEGPT, block_size=8),
    eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=4, pruner=eora.Pruner.WANDA, block_size=8),
    eora.CompressionSpec(quantizer=eora.Quantizer.RTN, bits=4, pruner=eora.Pruner.MAGNITUDE),
], ids=lambda s: s.label)
def test_combinations_quantise_and_prune(rng, spec):
    w, x = _layer(rng)
    w_c = jax.jit(eora.compress_weight, static_argnums=2)(jnp.asarray(w), jnp.asarray(x.T @ x), spec)
    k = np.asarray(w_c != 0).reshape(w.shape[0], -1, 4).sum(-1)
    assert np.all(k <= 2)
    for row in np.asarray(w_c):
        assert len(np.unique(row)) <= 16 + 1
