"""Issue 11: ssm input checks name the argument (wrong-shaped step input, dt length blamed on dt, negative dt)."""

import jax.numpy as jnp
import pytest

from eigenkit import ssm


def _params(h=2, n2=4):
    a = jnp.full((h, n2), 0.5 + 0.1j, jnp.complex64)
    return a, a, jnp.ones((h, n2), jnp.complex64), jnp.ones((h,), jnp.float32)


def test_step_wrong_shaped_input():
    a, b, c, d = _params()
    state = jnp.zeros((2, 4), jnp.complex64)
    with pytest.raises(ValueError, match=r"u_k must have shape \(2,\)"):
        ssm.step(a, b, c, d, state, jnp.ones((3,), jnp.float32))
    with pytest.raises(ValueError, match=r"u_k must have rank 1"):
        ssm.step(a, b, c, d, state, jnp.ones((2, 1), jnp.float32))
    with pytest.raises(ValueError, match=r"state must have shape \(2, 4\)"):
        ssm.step(a, b, c, d, jnp.zeros((2, 3), jnp.complex64), jnp.ones((2,), jnp.float32))
    with pytest.raises(TypeError, match="precision"):
        ssm.step(a, b, c, d, state, jnp.ones((2,), jnp.float64))
    y, nxt = ssm.step(a, b, c, d, state, jnp.ones((2,), jnp.float32))
    assert y.shape == (2,) and nxt.shape == (2, 4)


def test_kernel_wrong_length_dt_blames_dt():
    A, B = ssm.diag_init(ssm.Init.LIN, 8)  # shared (N/2,) A: dt's length sets H
    C = jnp.ones((2, 4), jnp.complex64)
    with pytest.raises(ValueError, match=r"dt must have shape \(H,\) = \(2,\) with H = C.shape\[-2\], got \(3,\)"):
        ssm.ssm_kernel(A, B, C, jnp.full((3,), 0.1, jnp.float32), 8)


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_negative_dt(bad):
    A, B = ssm.diag_init(ssm.Init.LIN, 8)
    with pytest.raises(ValueError, match="dt must be > 0"):
        ssm.ssm_kernel(A, B, jnp.ones((2, 4), jnp.complex64), jnp.array([0.1, bad], jnp.float32), 8)
    with pytest.raises(ValueError, match="dt must be > 0"):
        ssm.discretize(A, B, jnp.array([0.1, bad], jnp.float32))
