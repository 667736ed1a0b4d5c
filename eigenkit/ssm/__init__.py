"""Diagonal state-space models as pure functions (S4D: Gu, Gupta, Goel, Ré, NeurIPS 2022, arXiv 2206.11893).

Conventions: a real state of size ``N`` is stored as ``N/2`` complex modes with ``2·Re`` readout;
``A = -exp(log_A_real) + i·A_imag`` with ``Im A >= 0`` (as the official minimal ``models/s4/s4d.py``; the full
official ``SSMKernelDiag`` uses ``Im A <= 0`` — conjugate ``(A, B, C)`` to convert). Sequences are ``(L, H)``;
kernels ``(H, L)``. Float32 kernels are accurate at long ``L`` (exact phase reduction, see ``_phase.py``).

``step`` (one recurrent step) is public for autoregressive decoding (``eigenkit.methods.s4d`` uses it); the exact
phase reduction behind the float32 kernels is private (``eigenkit.ssm._phase``).

Example::

    A, B = ssm.diag_init(ssm.Init.LIN, 64)                       # (32,) complex64
    C = ssm.init_C((H, 32), key=k1); dt = jnp.exp(ssm.init_log_dt((H,), key=k2))
    K = ssm.ssm_kernel(A, B, C, dt, L)                           # (H, L)
    y = ssm.fft_conv(u, K, D)                                    # (L, H)
    Ab, Bb = ssm.discretize(A, B, dt)                            # recurrent mode gives the same y:
    y2, state = ssm.recurrence(Ab, Bb, C, D, u)
"""

from eigenkit.ssm._conv import bidirectional_kernel, conv_dtype, fft_conv, recurrence, step
from eigenkit.ssm._init import Init, diag_init, hippo_legs, init_C, init_log_dt, legs_normal_eig
from eigenkit.ssm._kernel import (
    Discretization,
    KernelMethod,
    default_chunk,
    discretize,
    ssm_kernel,
    vandermonde,
)

__all__ = [
    "Discretization",
    "Init",
    "KernelMethod",
    "bidirectional_kernel",
    "default_chunk",
    "diag_init",
    "discretize",
    "conv_dtype",
    "fft_conv",
    "hippo_legs",
    "init_C",
    "init_log_dt",
    "legs_normal_eig",
    "recurrence",
    "ssm_kernel",
    "step",
    "vandermonde",
]
