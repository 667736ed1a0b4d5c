"""neighbour_sum / neighbour_tables: forward = dense A x, VJP = Aᵀ g (multi-edges, self-loops, directed, empty),
jit / vmap / grad / second order, table budgets and bad inputs."""

import jax
import jax.numpy as jnp
import jax.test_util  # noqa: F401  (check_grads)
import numpy as np
import pytest

from eigenkit import graph as eg


def _messages(rng, r, m):
    dst = rng.integers(0, r, m)
    src = rng.integers(0, r, m)
    dst = np.concatenate([dst, dst[:3], [0]])  # repeated pairs (multi-edges) and a self-loop
    src = np.concatenate([src, src[:3], [0]])
    return dst, src


def _dense(dst, src, r):
    a = np.zeros((r, r))
    np.add.at(a, (dst, src), 1.0)
    return a


def test_forward_and_vjp_match_dense_matrix(dtype, tol):
    rng = np.random.default_rng(0)
    r = 11
    dst, src = _messages(rng, r, 25)  # directed: A is not symmetric
    a = _dense(dst, src, r)
    assert not np.allclose(a, a.T)
    nbr, rev = eg.neighbour_tables(dst, src, r)
    x = rng.normal(size=(r, 3, 2))
    y = jax.jit(eg.neighbour_sum)(jnp.asarray(x, dtype), nbr, rev)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, np.einsum("rs,s...->r...", a, x), rtol=tol[0], atol=tol[1] * 10)
    g = rng.normal(size=x.shape)
    _, vjp = jax.vjp(lambda x: eg.neighbour_sum(x, nbr, rev), jnp.asarray(x, dtype))
    np.testing.assert_allclose(vjp(jnp.asarray(g, dtype))[0], np.einsum("rs,r...->s...", a, g), rtol=tol[0],
                               atol=tol[1] * 10)


def test_grad_checks_and_vmap():
    rng = np.random.default_rng(1)
    r = 7
    dst, src = _messages(rng, r, 12)
    nbr, rev = eg.neighbour_tables(dst, src, r)
    x = jnp.asarray(rng.normal(size=(r, 2)))
    f = lambda x: jnp.sin(eg.neighbour_sum(x, nbr, rev))  # noqa: E731
    jax.test_util.check_grads(f, (x,), order=2, modes=("rev",))
    xs = jnp.asarray(rng.normal(size=(4, r, 2)))
    batched = jax.vmap(lambda x: eg.neighbour_sum(x, nbr, rev))(xs)
    np.testing.assert_allclose(batched, np.stack([eg.neighbour_sum(x, nbr, rev) for x in xs]), atol=1e-12)


def test_empty_tables_and_budgets():
    nbr, rev = eg.neighbour_tables(np.zeros(0, int), np.zeros(0, int), 3)
    assert nbr.shape == (3, 0) and rev.shape == (3, 0)
    x = jnp.ones((3, 2))
    np.testing.assert_array_equal(eg.neighbour_sum(x, nbr, rev), 0.0)
    np.testing.assert_array_equal(jax.grad(lambda x: eg.neighbour_sum(x, nbr, rev).sum())(x), 0.0)
    nbr, rev = eg.neighbour_tables(np.array([0, 0]), np.array([1, 2]), 3, width=4, reverse_width=4)
    assert nbr.shape == (3, 4) and nbr[0].tolist() == [1, 2, 3, 3] and rev[1].tolist() == [0, 3, 3, 3]


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match=r"width=1 is below the largest count 2"):
        eg.neighbour_tables(np.array([0, 0]), np.array([1, 2]), 3, width=1)
    with pytest.raises(ValueError, match=r"\[0, num_rows\) = \[0, 3\)"):
        eg.neighbour_tables(np.array([0]), np.array([3]), 3)
    with pytest.raises(ValueError, match="equal length"):
        eg.neighbour_tables(np.array([0, 1]), np.array([1]), 3)
    nbr, rev = eg.neighbour_tables(np.array([0]), np.array([1]), 3)
    with pytest.raises(ValueError, match=r"neighbours must have shape \(R, D\) with R = x.shape\[0\] = 4"):
        eg.neighbour_sum(jnp.ones((4, 2)), nbr, rev)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        eg.neighbour_sum(jnp.ones((3, 2), jnp.int32), nbr, rev)
