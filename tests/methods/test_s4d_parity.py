"""Numerical parity with the official state-spaces/s4 S4D code on identical parameters (fixtures made by
``experiments/s4d/make_parity_fixtures.py``; no torch needed here).

Conventions mapped here:
* minimal ``models/s4/s4d.py``: ``A = -exp(log_A_real) + i·A_imag`` — the same as eigenkit; B = 1 (folded into C).
* full ``SSMKernelDiag``: ``A = -exp(A_real) - i·A_imag`` (``Im A <= 0``), ``dt = exp(inv_dt)``; eigenkit uses
  ``Im A >= 0``, so (A, B, C) are conjugated — the kernel ``2·Re(...)`` is unchanged.
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit import ssm
from eigenkit.methods.s4d import S4D

FIX = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "s4d" / "official_s4d.npz"


@pytest.fixture(scope="module")
def fx():
    return dict(np.load(FIX))


def _c(p):
    return p[..., 0] + 1j * p[..., 1]


def test_fixture_provenance(fx):
    assert str(fx["commit"]).startswith("e757cef57d89")


@pytest.mark.parametrize("method", list(ssm.KernelMethod))
def test_minimal_kernel_parity(fx, method, dtype):
    L = int(fx["L"])
    cdt = jnp.complex64 if dtype == np.float32 else jnp.complex128
    A = jnp.asarray(-np.exp(fx["min/log_A_real"]) + 1j * fx["min/A_imag"], cdt)
    C = jnp.asarray(_c(fx["min/C"]), cdt)
    dt = jnp.asarray(np.exp(fx["min/log_dt"]), dtype)
    k = jax.jit(ssm.ssm_kernel, static_argnames=("length", "method"))(A, None, C, dt, length=L, method=method)
    want = fx["min/K"]
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(k, want, rtol=tol, atol=tol * np.abs(want).max())


def test_minimal_layer_parity(fx, dtype):
    """eigenkit S4D layer (B = 1, GLU output) == official S4D.forward on the same weights and inputs."""
    H, N = int(fx["H"]), int(fx["N"])
    layer = S4D(H, N, init=ssm.Init.LIN, glu=True, param_dtype=dtype, rngs=nnx.Rngs(0))
    layer.ssm.log_dt[...] = jnp.asarray(fx["min/log_dt"], dtype)
    layer.ssm.log_A_real[...] = jnp.asarray(fx["min/log_A_real"], dtype)
    layer.ssm.A_imag[...] = jnp.asarray(fx["min/A_imag"], dtype)
    layer.ssm.B[...] = jnp.stack([jnp.ones((H, N // 2), dtype), jnp.zeros((H, N // 2), dtype)], -1)
    layer.ssm.C[...] = jnp.asarray(fx["min/C"][None], dtype)
    layer.ssm.D[...] = jnp.asarray(fx["min/D"], dtype)
    layer.output_linear = nnx.Linear(H, 2 * H, param_dtype=dtype, rngs=nnx.Rngs(0))
    layer.output_linear.kernel[...] = jnp.asarray(fx["min/W"].T, dtype)
    layer.output_linear.bias[...] = jnp.asarray(fx["min/b"], dtype)
    u = jnp.asarray(np.swapaxes(fx["min/u"], 1, 2), dtype)  # official (B, H, L) -> ours (B, L, H)
    y = nnx.jit(lambda m, u: m(u))(layer, u)
    want = np.swapaxes(fx["min/y"], 1, 2)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("init", ["diag-lin", "diag-inv", "diag-legs", "diag-real"])
@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_full_diag_kernel_parity(fx, init, disc):
    tag = f"diag/{init}/{disc}"
    L = int(fx["L"])
    A = -np.exp(fx[f"{tag}/A_real"]) - 1j * fx[f"{tag}/A_imag"]  # official convention (Im A <= 0)
    B, C = _c(fx[f"{tag}/B"]), _c(fx[f"{tag}/C"])
    dt = np.exp(fx[f"{tag}/inv_dt"])
    d = ssm.Discretization.ZOH if disc == "zoh" else ssm.Discretization.BILINEAR
    k = ssm.ssm_kernel(jnp.asarray(A.conj()), jnp.asarray(B.conj()), jnp.asarray(C.conj()), jnp.asarray(dt), L,
                       discretization=d)
    want = fx[f"{tag}/K"]
    np.testing.assert_allclose(k, want, rtol=1e-9, atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize("init,ours", [("diag-lin", ssm.Init.LIN), ("diag-inv", ssm.Init.INV),
                                       ("diag-legs", ssm.Init.LEGS), ("diag-real", ssm.Init.REAL)])
def test_init_parity(fx, init, ours):
    """Our A equals the conjugate of the official init; B equals it too (LegS: float64 eigh, same eigenvectors)."""
    tag = f"diag/{init}/zoh"
    A_off = -np.exp(fx[f"{tag}/A_real"][0]) - 1j * fx[f"{tag}/A_imag"][0]
    A, B = ssm.diag_init(ours, int(fx["N"]), dtype=np.float64)
    # official clamps A_imag to >= 1e-4 (inv_transform) and computes in float32: compare at float32 precision
    np.testing.assert_allclose(np.asarray(A), A_off.conj(), rtol=1e-6, atol=2e-4)
    B_off = _c(fx[f"{tag}/B"][0])
    if ours is ssm.Init.LEGS:  # eigenvectors are defined up to a phase per mode: compare phase-free quantities
        np.testing.assert_allclose(np.abs(np.asarray(B)), np.abs(B_off), rtol=1e-5)
    else:
        np.testing.assert_allclose(np.asarray(B), B_off.conj(), rtol=1e-6)


def test_bidirectional_fftconv_parity(fx):
    """Official FFTConv(bidirectional=True) == S4DConv(bidirectional=True): two-sided kernel and its off-by-one."""
    from eigenkit.methods.s4d import S4DConv

    H, L = int(fx["H"]), int(fx["L"])
    n2 = fx["bidir/A_real"].shape[-1]
    conv = S4DConv(H, 2 * n2, bidirectional=True, init=ssm.Init.LIN, param_dtype=np.float64, rngs=nnx.Rngs(0))
    conv.log_dt[...] = jnp.asarray(fx["bidir/inv_dt"])
    conv.log_A_real[...] = jnp.asarray(fx["bidir/A_real"])
    conv.A_imag[...] = jnp.asarray(fx["bidir/A_imag"])  # official stores -Im A; ours is +Im A: conjugate (A, B, C)
    b, c = fx["bidir/B"].copy(), fx["bidir/C"].copy()
    b[..., 1] *= -1
    c[..., 1] *= -1
    conv.B[...] = jnp.asarray(b)
    conv.C[...] = jnp.asarray(c)
    conv.D[...] = jnp.asarray(fx["bidir/D"])
    k = nnx.jit(lambda m: m.kernel(L))(conv)
    np.testing.assert_allclose(k, fx["bidir/K"], rtol=1e-9, atol=1e-10 * np.abs(fx["bidir/K"]).max())
    y = nnx.jit(lambda m, u: m(u))(conv, jnp.asarray(np.swapaxes(fx["bidir/u"], 1, 2)))
    want = np.swapaxes(fx["bidir/y"], 1, 2)
    np.testing.assert_allclose(y, want, rtol=1e-9, atol=1e-10 * np.abs(want).max())
