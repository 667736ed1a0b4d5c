"""eigenkit.ssm initialisations vs their closed forms (S4D paper Sec. 4)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from eigenkit import ssm


@pytest.mark.parametrize("n", [2, 8, 64])
def test_lin_inv_real_closed_form(n, dtype):
    k = np.arange(n // 2)
    cdt = np.complex64 if dtype == np.float32 else np.complex128
    for init, want in [
        (ssm.Init.LIN, -0.5 + 1j * math.pi * k),
        (ssm.Init.INV, -0.5 + 1j * (n / math.pi) * (n / (2 * k + 1) - 1)),
        (ssm.Init.REAL, -(k + 1.0) + 0j),
    ]:
        A, B = ssm.diag_init(init, n, dtype=dtype)
        assert A.dtype == cdt and B.dtype == cdt and A.shape == (n // 2,)
        np.testing.assert_allclose(np.asarray(A), want, rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(B), np.ones(n // 2))
        assert np.all(np.asarray(A).real < 0) and np.all(np.asarray(A).imag >= 0)


def test_hippo_legs_matrix():
    A, B = ssm.hippo_legs(4)
    r = np.sqrt(2 * np.arange(4) + 1)
    for i in range(4):
        for j in range(4):
            want = -r[i] * r[j] if i > j else (-(i + 1) if i == j else 0.0)
            assert A[i, j] == pytest.approx(want)
    np.testing.assert_allclose(B, r)


@pytest.mark.parametrize("n", [4, 16, 64])
def test_legs_eigenvalues_match_general_eig(n):
    """S4D-LegS eigenvalues == eig of the normal part, half of each conjugate pair; A = V diag V* reconstructs it."""
    Ah, Bh = ssm.hippo_legs(n)
    p = np.sqrt(np.arange(n) + 0.5)
    normal = Ah + np.outer(p, p)
    ev = scipy.linalg.eigvals(normal)
    lam, b = ssm.legs_normal_eig(n)
    assert lam.shape == (n // 2,)
    np.testing.assert_allclose(lam.real, -0.5, atol=1e-10)
    assert np.all(lam.imag > 0)
    full = np.concatenate([lam, lam.conj()])
    full, ev = full[np.argsort(full.imag)], ev[np.argsort(ev.imag)]
    np.testing.assert_allclose(full, ev, atol=1e-8 * n)
    # |V* B| is phase-invariant; clipping only touches the imaginary part (bounded by 2)
    assert np.all(np.abs(b.imag) <= 2.0 + 1e-12)
    A, B = ssm.diag_init(ssm.Init.LEGS, n, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(A), lam)
    np.testing.assert_allclose(np.asarray(B), b)


def test_legs_unclipped_b_norm():
    """Without clipping, V* B is unitary: Σ|B_n|² over the N/2 kept modes = |B|²/2 (conjugate-pair symmetry)."""
    n = 8
    _, bh = ssm.hippo_legs(n)
    lam, b = ssm.legs_normal_eig(n)
    if np.all(np.abs(b.imag) < 2.0):  # no clipping happened at this size
        assert np.sum(np.abs(b) ** 2) == pytest.approx(np.sum(bh**2) / 2, rel=1e-10)


def test_log_dt_and_C():
    key = jax.random.key(0)
    ldt = ssm.init_log_dt((4000,), key=key, dt_min=1e-3, dt_max=1e-1)
    assert ldt.dtype == jnp.float32
    assert float(ldt.min()) >= math.log(1e-3) and float(ldt.max()) <= math.log(1e-1)
    assert abs(float(ldt.mean()) - 0.5 * (math.log(1e-3) + math.log(1e-1))) < 0.1
    c = ssm.init_C((200, 50), key=key)
    assert c.dtype == jnp.complex64
    assert float(jnp.mean(jnp.abs(c) ** 2)) == pytest.approx(1.0, abs=0.05)
    assert not np.allclose(np.asarray(ssm.init_C((3,), key=jax.random.key(1))), np.asarray(ssm.init_C((3,), key=key)))


def test_init_bad_input():
    with pytest.raises(ValueError, match="even"):
        ssm.diag_init(ssm.Init.LIN, 7)
    with pytest.raises(TypeError, match="Init"):
        ssm.diag_init("lin", 8)
    with pytest.raises(TypeError, match="float32 or float64"):
        ssm.diag_init(ssm.Init.LIN, 8, dtype=jnp.float16)
    with pytest.raises(ValueError, match="dt_min"):
        ssm.init_log_dt((2,), key=jax.random.key(0), dt_min=0.1, dt_max=0.01)
