"""Numerical parity with the official state-spaces/s4 S4D code on identical parameters (fixtures made by
``experiments/s4d/make_parity_fixtures.py``; no torch needed here).

The official weights enter the eigenkit modules through the public loader
:func:`eigenkit.methods.s4d.from_official_state_dict`, which maps the conventions:

* minimal ``models/s4/s4d.py``: ``A = -exp(log_A_real) + i·A_imag`` — the same as eigenkit; B = 1 (folded into C).
* full ``SSMKernelDiag``: ``A = -exp(A_real) - i·A_imag`` (``Im A <= 0``), ``dt = exp(inv_dt)``; eigenkit uses
  ``Im A >= 0``, so (A, B, C) are conjugated — the kernel ``2·Re(...)`` is unchanged.

The fixture stores the official tensors under its own names, some squeezed (``output_linear[0].weight[:, :, 0]``,
``inv_dt[:, 0]``, ``B[0]``, ``D[0]``); ``official_*_state_dict`` below rebuild the exact official ``state_dict``
layout from them (keys and shapes of ``module.state_dict()``), which is what a user passes to the loader.
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit import ssm
from eigenkit.methods.s4d import S4D, S4DConv, from_official_state_dict

FIX = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "s4d" / "official_s4d.npz"


@pytest.fixture(scope="module")
def fx():
    return dict(np.load(FIX))


def _c(p):
    return p[..., 0] + 1j * p[..., 1]


def official_s4d_state_dict(fx):
    """``models/s4/s4d.py`` ``S4D(H, d_state=N).state_dict()`` of the fixture layer (float64 NumPy)."""
    return {
        "D": fx["min/D"], "kernel.log_dt": fx["min/log_dt"], "kernel.C": fx["min/C"],
        "kernel.log_A_real": fx["min/log_A_real"], "kernel.A_imag": fx["min/A_imag"],
        "output_linear.0.weight": fx["min/W"][:, :, None], "output_linear.0.bias": fx["min/b"],
    }


def official_fftconv_state_dict(fx):
    """``FFTConv(H, bidirectional=True, mode='diag').state_dict()`` of the fixture layer."""
    return {
        "D": fx["bidir/D"][None], "kernel.inv_dt": fx["bidir/inv_dt"][:, None], "kernel.A_real": fx["bidir/A_real"],
        "kernel.A_imag": fx["bidir/A_imag"], "kernel.B": fx["bidir/B"][None], "kernel.C": fx["bidir/C"],
    }


def official_ssm_kernel_diag_state_dict(fx, tag):
    """``SSMKernelDiag(d_model=H, d_state=N, channels=1).state_dict()`` of the fixture kernel ``tag``."""
    return {
        "inv_dt": fx[f"{tag}/inv_dt"][:, None], "A_real": fx[f"{tag}/A_real"], "A_imag": fx[f"{tag}/A_imag"],
        "B": fx[f"{tag}/B"][None], "C": fx[f"{tag}/C"][None],
    }


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
    """eigenkit S4D layer loaded from the official S4D state_dict == official S4D.forward on the same inputs."""
    H, N = int(fx["H"]), int(fx["N"])
    layer = from_official_state_dict(S4D(H, N, init=ssm.Init.LIN, param_dtype=dtype, rngs=nnx.Rngs(0)),
                                     official_s4d_state_dict(fx))
    u = jnp.asarray(np.swapaxes(fx["min/u"], 1, 2), dtype)  # official (B, H, L) -> ours (B, L, H)
    y = nnx.jit(lambda m, u: m(u))(layer, u)
    want = np.swapaxes(fx["min/y"], 1, 2)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert y.dtype == dtype
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol * np.abs(want).max())


def test_minimal_kernel_loaded_parity(fx, dtype):
    """S4DConv loaded from the official S4DKernel state_dict (plus the layer's D): kernel == S4DKernel.forward(L)."""
    H, N, L = int(fx["H"]), int(fx["N"]), int(fx["L"])
    sd = {k.removeprefix("kernel."): v for k, v in official_s4d_state_dict(fx).items() if k.startswith("kernel.")}
    conv = from_official_state_dict(S4DConv(H, N, init=ssm.Init.LEGS, param_dtype=dtype, rngs=nnx.Rngs(0)),
                                    {**sd, "D": fx["min/D"]})
    np.testing.assert_array_equal(conv.B[...][..., 0], 1.0)  # B = 1 whatever the init (folded into C)
    k = nnx.jit(lambda m: m.kernel(L))(conv)
    want = fx["min/K"][None]
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(k, want, rtol=tol, atol=tol * np.abs(want).max())


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
    # the same kernel from an S4DConv loaded with the official SSMKernelDiag state_dict
    H, N = int(fx["H"]), int(fx["N"])
    conv = from_official_state_dict(
        S4DConv(H, N, init=ssm.Init.LIN, discretization=d, param_dtype=np.float64, rngs=nnx.Rngs(0)),
        official_ssm_kernel_diag_state_dict(fx, tag))
    k2 = nnx.jit(lambda m: m.kernel(L))(conv)
    np.testing.assert_allclose(k2[0], want, rtol=1e-9, atol=1e-10 * np.abs(want).max())


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
    """Official FFTConv(bidirectional=True) == S4DConv(bidirectional=True) loaded from its state_dict: two-sided
    kernel and its off-by-one."""
    H, L = int(fx["H"]), int(fx["L"])
    n2 = fx["bidir/A_real"].shape[-1]
    conv = from_official_state_dict(
        S4DConv(H, 2 * n2, bidirectional=True, init=ssm.Init.LIN, param_dtype=np.float64, rngs=nnx.Rngs(0)),
        official_fftconv_state_dict(fx))
    k = nnx.jit(lambda m: m.kernel(L))(conv)
    np.testing.assert_allclose(k, fx["bidir/K"], rtol=1e-9, atol=1e-10 * np.abs(fx["bidir/K"]).max())
    y = nnx.jit(lambda m, u: m(u))(conv, jnp.asarray(np.swapaxes(fx["bidir/u"], 1, 2)))
    want = np.swapaxes(fx["bidir/y"], 1, 2)
    np.testing.assert_allclose(y, want, rtol=1e-9, atol=1e-10 * np.abs(want).max())
