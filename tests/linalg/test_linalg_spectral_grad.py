"""Issue 11: exact gradients of ``V diag(φ(λ)) Vᵀ`` on degenerate spectra, the EighGrad contract, second order.

Every gradient is checked against float64 central differences of an independent NumPy implementation (``np.linalg.eigh``
of the symmetrised matrix), on matrices with exactly repeated eigenvalues: ``diag(1,2,2,2,4,5)`` and its random
rotation, Laplacians of cycles, complete graphs and hypercubes, and a batch mixing them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit import linalg as la
from eigenkit.linalg import EighGrad

N = 8
W_CH = np.array([0.7, -1.3, 0.4])  # φ_ℓ(λ) = tanh(w_ℓ λ + b_ℓ): a learned-looking 3-channel eigenvalue function
B_CH = np.array([0.2, 0.5, -0.1])


def _lap(edges, n):
    a = np.zeros((n, n))
    for i, j in edges:
        a[i, j] = a[j, i] = 1.0
    return np.diag(a.sum(1)) - a


def _cycle(n):
    return _lap([(i, (i + 1) % n) for i in range(n)], n)


def _complete(n):
    return n * np.eye(n) - np.ones((n, n))


def _hypercube(d):
    n = 2**d
    return _lap([(i, i ^ (1 << b)) for i in range(n) for b in range(d) if i < i ^ (1 << b)], n)


def _rotated(eigs, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    return (q * np.asarray(eigs, float)) @ q.T


CASES6 = {
    "diag122245": np.diag([1.0, 2, 2, 2, 4, 5]),
    "rotated122245": _rotated([1.0, 2, 2, 2, 4, 5]),
    "cycle6": _cycle(6),
    "complete6": _complete(6) / 3,
}
BATCH8 = np.stack([_cycle(8), _complete(8) / 4, _hypercube(3), np.diag([1.0, 2, 2, 2, 4, 5, 5, 6])])


def _np_phi(lam):
    return np.tanh(lam[..., None] * W_CH + B_CH)


def _phi(lam):
    return jnp.tanh(lam[..., None] * jnp.asarray(W_CH, lam.dtype) + jnp.asarray(B_CH, lam.dtype))


def _weights(shape, seed=1):
    c = np.random.default_rng(seed).standard_normal(shape + (3,))
    return c + np.swapaxes(c, -2, -3)


def _np_loss(a, c):
    a = (a + np.swapaxes(a, -1, -2)) / 2
    lam, v = np.linalg.eigh(a)
    w = np.einsum("...id,...jd,...dl->...ijl", v, v, _np_phi(lam))
    return np.sum(c * w)


def _fd_grad(a, c, h=1e-5):
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[idx] = h
        g[idx] = (_np_loss(a + e, c) - _np_loss(a - e, c)) / (2 * h)
    return g


def _rel(g, ref):
    return float(np.linalg.norm(np.asarray(g, np.float64) - ref) / np.linalg.norm(ref))


def _tol(dtype):
    return 2e-5 if dtype == np.float32 else 1e-8


@pytest.mark.parametrize("name", list(CASES6))
def test_spectral_tensor_gradient_equals_finite_differences(name, dtype):
    a = CASES6[name]
    c = _weights(a.shape)
    ref = _fd_grad(a, c)
    loss = jax.jit(lambda x: jnp.sum(jnp.asarray(c, x.dtype) * la.spectral_tensor(x, _phi)))
    g = jax.grad(loss)(jnp.asarray(a, dtype))
    assert g.dtype == dtype
    assert _rel(g, ref) < _tol(dtype), _rel(g, ref)


def test_spectral_tensor_gradient_batch_mixing_degenerate_graphs(dtype):
    """Cycle, complete graph, hypercube and diag(1,2,2,2,4,5,5,6) in one batched call (and under vmap)."""
    c = _weights(BATCH8.shape[1:])
    ref = _fd_grad(BATCH8, np.broadcast_to(c, BATCH8.shape + (3,)))
    cj = jnp.asarray(c, dtype)
    batched = jax.grad(lambda x: jnp.sum(cj * la.spectral_tensor(x, _phi)))(jnp.asarray(BATCH8, dtype))
    assert _rel(batched, ref) < _tol(dtype)
    vmapped = jax.jit(jax.vmap(jax.grad(lambda x: jnp.sum(cj * la.spectral_tensor(x, _phi)))))(
        jnp.asarray(BATCH8, dtype))
    assert _rel(vmapped, ref) < _tol(dtype)


@pytest.mark.parametrize("rule", [EighGrad.MASKED, EighGrad.BROADENED])
@pytest.mark.parametrize("name", ["diag122245", "rotated122245"])
def test_eigh_rules_are_wrong_for_v_phi_vt_as_documented(name, rule):
    """The contract: no eigenvector rule gives the within-eigenspace term φ'(λ)(VᵀdAV)_ij (20–50% off here)."""
    a = CASES6[name]
    c = _weights(a.shape)
    ref = _fd_grad(a, c)

    def loss(x):
        lam, v = la.eigh(x, grad_rule=rule)
        return jnp.sum(jnp.asarray(c) * jnp.einsum("id,jd,dl->ijl", v, v, _phi(lam)))

    g = jax.grad(loss)(jnp.asarray(a))
    assert np.all(np.isfinite(g)) and _rel(g, ref) > 0.2


@pytest.mark.parametrize("rule", [EighGrad.MASKED, EighGrad.BROADENED])
def test_eigh_rules_exact_on_their_contract_class(rule, dtype):
    """Symmetric functions of eigenvalues + functions of whole-eigenspace projectors: exact under degeneracy."""
    a = CASES6["rotated122245"]  # eigenvalues 1, (2 ×3), 4, 5
    t = _weights(a.shape)[..., 0]

    def np_loss(x):
        lam, v = np.linalg.eigh((x + x.T) / 2)
        p = v[:, 1:4] @ v[:, 1:4].T  # projector onto the whole triple eigenspace
        return np.sum(np.sin(lam)) + np.sum(t * p) + np.sum((v[:, 4:] @ v[:, 4:].T - t) ** 2)

    h = 1e-5
    ref = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[idx] = h
        ref[idx] = (np_loss(a + e) - np_loss(a - e)) / (2 * h)

    def loss(x):
        lam, v = la.eigh(x, grad_rule=rule)
        tt = jnp.asarray(t, x.dtype)
        return (jnp.sum(jnp.sin(lam)) + jnp.sum(tt * (v[:, 1:4] @ v[:, 1:4].T))
                + jnp.sum((v[:, 4:] @ v[:, 4:].T - tt) ** 2))

    g = jax.grad(loss)(jnp.asarray(a, dtype))
    assert _rel(g, ref) < (5e-4 if dtype == np.float32 else 1e-7)


def test_spectral_tensor_coupled_phi_batchnorm_like(dtype):
    """φ coupling eigenvalues across the batch (BatchNorm-style statistics) is still exact (one group-centred JVP)."""

    def phi_np(lam):
        x = (lam - lam.mean()) / lam.std()
        return np.tanh(x[..., None] * W_CH + B_CH)

    def phi(lam):
        x = (lam - jnp.mean(lam)) / jnp.std(lam)
        return jnp.tanh(x[..., None] * jnp.asarray(W_CH, lam.dtype) + jnp.asarray(B_CH, lam.dtype))

    a = BATCH8[[0, 2]]
    c = _weights(a.shape[1:])

    def np_loss(x):
        lam, v = np.linalg.eigh((x + np.swapaxes(x, -1, -2)) / 2)
        return np.sum(c * np.einsum("bid,bjd,bdl->bijl", v, v, phi_np(lam)))

    h = 1e-5
    ref = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[idx] = h
        ref[idx] = (np_loss(a + e) - np_loss(a - e)) / (2 * h)
    g = jax.grad(lambda x: jnp.sum(jnp.asarray(c, dtype) * la.spectral_tensor(x, phi)))(jnp.asarray(a, dtype))
    assert _rel(g, ref) < _tol(dtype)


def test_spectral_tensor_values_array_form_and_parameter_gradient(rng):
    a = jnp.asarray(CASES6["rotated122245"])
    lam_np, v_np = np.linalg.eigh(np.asarray(a))
    w = jnp.asarray(W_CH)
    out = la.spectral_tensor(a, _phi)
    np.testing.assert_allclose(out, np.einsum("id,jd,dl->ijl", v_np, v_np, _np_phi(lam_np)), atol=1e-12)
    assert la.spectral_tensor(a, jnp.tanh).shape == (6, 6)  # single channel

    # array form: values from eigh's eigenvalues + derivative callable == callable form, for A and for φ's params
    def loss_callable(x, w):
        return jnp.sum(la.spectral_tensor(x, lambda lam: jnp.tanh(lam[..., None] * w)) ** 2)

    def loss_array(x, w):
        lam = la.eigh(x)[0]
        return jnp.sum(la.spectral_tensor(x, jnp.tanh(lam[..., None] * w),
                                          derivative=lambda lam: jnp.tanh(lam[..., None] * w)) ** 2)

    def loss_array_alpha(x, w):
        lam = la.eigh(x)[0]
        alpha = w * (1 - jnp.tanh(lam[..., None] * w) ** 2)  # elementwise φ' = within-eigenspace derivative
        return jnp.sum(la.spectral_tensor(x, jnp.tanh(lam[..., None] * w), derivative=alpha) ** 2)

    ga = jax.grad(loss_callable, argnums=(0, 1))(a, w)
    for f in (loss_array, loss_array_alpha):
        gb = jax.grad(f, argnums=(0, 1))(a, w)
        np.testing.assert_allclose(gb[0], ga[0], atol=1e-10)
        np.testing.assert_allclose(gb[1], ga[1], atol=1e-10)
    # parameter gradient vs finite differences
    h = 1e-6
    fd = [(loss_callable(a, w.at[i].add(h)) - loss_callable(a, w.at[i].add(-h))) / (2 * h) for i in range(3)]
    np.testing.assert_allclose(ga[1], fd, rtol=1e-7)


def test_spectral_tensor_errors():
    with pytest.raises(TypeError, match="derivative="):
        la.spectral_tensor(jnp.eye(3), jnp.ones(3))
    with pytest.raises(ValueError, match=r"phi must give shape \(\.\.\., n\)"):
        la.spectral_tensor(jnp.eye(3), lambda lam: jnp.ones(4))
    with pytest.raises(ValueError, match="derivative must have phi's shape"):
        la.spectral_tensor(jnp.eye(3), jnp.ones(3), derivative=jnp.ones(4))
    with pytest.raises(TypeError, match="dtype"):
        la.spectral_tensor(jnp.eye(3), lambda lam: jnp.ones(3, jnp.float32))
    with pytest.raises(ValueError, match="square"):
        la.spectral_tensor(jnp.ones((3, 2)), jnp.tanh)


@pytest.mark.parametrize("fn", ["spectral_function", "spectral_tensor"])
def test_second_order_exact_on_simple_spectrum_nan_at_degeneracy(fn, rng):
    """Documented second-order behaviour: HVP = finite differences of the gradient where the spectrum is simple,
    NaN (not a finite wrong number) at a degenerate point — exact zeros or rotated (rounding-level gaps) alike."""
    c = jnp.asarray(rng.standard_normal((4, 4)))
    e = rng.standard_normal((4, 4))
    e = jnp.asarray(e + e.T)
    f = getattr(la, fn)
    grad = jax.grad(lambda x: jnp.sum(c * f(x, jnp.tanh)))
    simple = jnp.asarray(_rotated([0.3, 1.0, 1.7, 2.5], seed=3))
    hvp = jax.jvp(grad, (simple,), (e,))[1]
    h = 1e-5
    fd = (grad(simple + h * e) - grad(simple - h * e)) / (2 * h)
    np.testing.assert_allclose(hvp, fd, rtol=1e-6, atol=1e-8)
    for degenerate in (jnp.diag(jnp.array([0.3, 1.0, 1.0, 2.5])), jnp.asarray(_rotated([0.3, 1.0, 1.0, 2.5], 4))):
        assert np.all(np.isfinite(grad(degenerate)))
        assert np.all(np.isnan(jax.jvp(grad, (degenerate,), (e,))[1]))


def test_strict_rule_exact_or_nan_everywhere(rng):
    a = jnp.asarray(_rotated([-1.0, 0.5, 2.0, 3.0], seed=5))
    c = jnp.asarray(rng.standard_normal((4, 4)))
    loss = lambda x, r: jnp.sum(c * la.eigh(x, grad_rule=r)[1] ** 2)  # sign invariant, not basis invariant
    np.testing.assert_allclose(jax.grad(loss)(a, EighGrad.STRICT), jax.grad(loss)(a, EighGrad.EXACT), atol=1e-10)
    g = jax.grad(loss)(jnp.asarray(_rotated([-1.0, 0.5, 0.5, 3.0], seed=5)), EighGrad.STRICT)
    assert np.all(np.isnan(g))
    # eigenvalue-only losses never touch the rule
    gw = jax.grad(lambda x: jnp.sum(la.eigh(x, grad_rule=EighGrad.STRICT)[0] ** 2))(jnp.eye(4))
    np.testing.assert_allclose(gw, 2 * np.eye(4), atol=1e-12)
