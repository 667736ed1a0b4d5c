"""Float64 NumPy references for the S4D tests (independent of eigenkit)."""

import numpy as np


def kernel_ref(A, B, C, dt, length, bilinear=False):
    """Naive float64 Vandermonde kernel 2·Re Σ_n W_n x_n^l; shapes as eigenkit.ssm.ssm_kernel."""
    A = np.asarray(A, np.complex128)
    C = np.asarray(C, np.complex128)
    dt = np.asarray(dt, np.float64)
    B = np.ones_like(A) if B is None else np.asarray(B, np.complex128)
    A = np.broadcast_to(A, (dt.shape[0], A.shape[-1]))
    z = dt[:, None] * A
    if bilinear:
        w, x = C * B * dt[:, None] / (1 - z / 2), np.log((1 + z / 2) / (1 - z / 2))
    else:
        w, x = C * B * np.expm1(z) / A, z
    return 2 * np.einsum("...hn,hnl->...hl", w, np.exp(x[..., None] * np.arange(length))).real


def kernel_power_sum(A, B, C, dt, length, bilinear=False):
    """K_l = 2·Re Σ_n C_n Ā_n^l B̄_n by repeated multiplication (no exp(l·x))."""
    A = np.asarray(A, np.complex128)
    B = np.ones_like(A) if B is None else np.asarray(B, np.complex128)
    C = np.asarray(C, np.complex128)
    dt = np.asarray(dt, np.float64)[:, None]
    if bilinear:
        ab, bb = (1 + dt * A / 2) / (1 - dt * A / 2), B * dt / (1 - dt * A / 2)
    else:
        ab, bb = np.exp(dt * A), B * (np.exp(dt * A) - 1) / A
    out, p = [], np.ones_like(ab * bb)
    for _ in range(length):
        out.append(2 * np.sum(C * p * bb, axis=-1).real)
        p = p * ab
    return np.stack(out, axis=-1)


def causal_conv_ref(u, k, d=None):
    """(L, H) causal convolution by np.convolve, plus D·u."""
    u = np.asarray(u, np.float64)
    k = np.asarray(k, np.float64)
    length = u.shape[0]
    y = np.stack([np.convolve(u[:, h], k[h])[:length] for h in range(u.shape[1])], axis=1)
    if d is not None:
        y = y + u * np.asarray(d, np.float64)
    return y


def recurrence_ref(ab, bb, C, D, u):
    ab, bb, C = (np.asarray(a, np.complex128) for a in (ab, bb, C))
    u = np.asarray(u, np.float64)
    x = np.zeros_like(ab)
    ys = []
    for k in range(u.shape[0]):
        x = ab * x + bb * u[k][:, None]
        ys.append(2 * np.sum(C * x, axis=-1).real + (0 if D is None else np.asarray(D, np.float64) * u[k]))
    return np.stack(ys)
