"""Parity with the official NVlabs/EoRA code (fixtures from experiments/eora/make_parity_fixtures.py; no torch here)."""

import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit.methods import eora

FIX = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "eora"


def _load(name):
    path = FIX / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"{path} missing: run experiments/eora/make_parity_fixtures.py --official-src PATH")
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_fixture_provenance():
    f = _load("eigen")
    assert str(f["commit"]) == "11ff6c0e1c90862945c9fd524c07637be2fbbb12"


@pytest.mark.parametrize("cov_dtype", [jnp.float64, jnp.float32])  # paper preset / cpu preset (float64_eigh)
@pytest.mark.parametrize("name", ["up", "down"])
def test_eora_factors_match_official(name, cov_dtype):
    f = _load("eigen")
    n = int(f["num_samples"])
    x = f[f"x_{name}"]  # (n, 1, l, d_in) in the order the official hook saw them
    st = eora.covariance_init(x.shape[-1], jnp.float32)
    for j in range(n):
        st = eora.covariance_update(st, jnp.asarray(x[j]), weighting=eora.CovarianceWeighting.OFFICIAL_DECAY,
                                    num_samples=n)
    s = eora.covariance_finalize(st, weighting=eora.CovarianceWeighting.OFFICIAL_DECAY)
    delta = jnp.asarray(f[f"w_{name}"] - f[f"wc_{name}"])
    b_ref, a_ref = f[f"b_{name}"], f[f"a_{name}"]
    # the default path (what the experiment's driver runs) and the official computation (WHITENED, NVlabs clamp)
    bw, aw = eora.eora_factors(delta, s.astype(jnp.float64), int(f["rank"]), form=eora.EoraForm.WHITENED,
                               clamp=eora.EigenClamp.NVLABS_MINPOS)
    np.testing.assert_allclose(np.asarray(bw @ aw, np.float64), b_ref.astype(np.float64) @ a_ref.astype(np.float64),
                               rtol=0, atol=2e-5 * np.abs(b_ref @ a_ref).max())
    b, a = eora.eora_factors(delta, s.astype(cov_dtype), int(f["rank"]))
    ba, ba_ref = np.asarray(b @ a, np.float64), b_ref.astype(np.float64) @ a_ref.astype(np.float64)
    np.testing.assert_allclose(ba, ba_ref, rtol=0, atol=2e-5 * np.abs(ba_ref).max())
    # factors themselves agree up to the sign of each singular pair
    sign = np.sign(np.sum(np.asarray(b) * b_ref, axis=0))
    np.testing.assert_allclose(np.asarray(b) * sign, b_ref, atol=2e-4 * np.abs(b_ref).max())
    np.testing.assert_allclose(np.asarray(a) * sign[:, None], a_ref, atol=2e-4 * np.abs(a_ref).max())


@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_matches_official(act_order):
    f = _load("gptq")
    q = eora.gptq_quantize(jnp.asarray(f["w"]), jnp.asarray(f["hessian"]), 3, act_order=act_order)
    ref = f[f"q_actorder{int(act_order)}"]
    close = np.isclose(np.asarray(q), ref, atol=1e-5)
    assert close.mean() > 0.99, close.mean()  # float32 sweep: a handful of rounding-boundary flips at most


@pytest.mark.parametrize("bits", [None, 4])
def test_sparsegpt_matches_official(bits):
    f = _load("sparsegpt")
    w_c, keep = eora.sparsegpt_prune(jnp.asarray(f["w"]), jnp.asarray(f["hessian"]), bits=bits)
    ref = f[f"w_c_bits{bits or 16}"]
    assert np.all(ref[~np.asarray(keep)] == 0)  # every weight we prune is pruned (or quantised to 0) there
    if bits is None:
        np.testing.assert_array_equal(np.asarray(keep), ref != 0)
    close = np.isclose(np.asarray(w_c), ref, atol=1e-5)
    assert close.mean() > 0.99, close.mean()
