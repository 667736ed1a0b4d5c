"""Parity with the official innerlee/GCR RSGD step and head (fixtures by experiments/gcr/make_parity_fixtures.py).

Compared on P Pᵀ (per class) and logits — never raw weights, whose columns QR may sign-flip.
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from eigenkit import manifolds as mf
from eigenkit.methods import gcr

FIXTURES = sorted((pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "gcr").glob("rsgd_*.npz"))


def _projectors(p):
    p = np.asarray(p)
    return p @ np.swapaxes(p, -1, -2)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_rsgd_matches_official(path):
    fx = np.load(path)
    assert str(fx["official_commit"]).startswith("6e614850")
    k = int(fx["subspace_dim"])
    x = jnp.asarray(fx["features"])
    y = jnp.asarray(fx["labels"])
    gamma = float(fx["gamma"])
    p = gcr.from_official_weight(jnp.asarray(fx["w0"]), k)
    mf.check_orthonormal(p)

    def loss(bases):
        logits = gcr.grassmann_logits(x, bases, gamma)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

    tx = mf.riemannian_sgd(
        float(fx["lr"]), float(fx["momentum"]), reorth_every=int(fx["reorth_step"]),
        reorth_method=mf.Retraction.QR, lr_factor=float(fx["lr_factor"]),
        momentum_rule=mf.MomentumRule.EUCLIDEAN_BUFFER,
    )
    state = tx.init(p)

    @jax.jit
    def step(p, state):
        (l, logits), g = jax.value_and_grad(loss, has_aux=True)(p)
        u, state = tx.update(g, state, p)
        return optax.apply_updates(p, u), state, l, logits

    for s in range(int(fx["steps"])):
        p, state, l, logits = step(p, state)
        np.testing.assert_allclose(logits, fx["logits"][s], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(l, fx["losses"][s], rtol=1e-10)
        ref = gcr.from_official_weight(jnp.asarray(fx["weights"][s]), k)
        np.testing.assert_allclose(_projectors(p), _projectors(ref), atol=1e-10)
    np.testing.assert_allclose(gcr.grassmann_logits(x, p, gamma), fx["logits"][-1], rtol=1e-10, atol=1e-10)


def test_fixtures_present():
    assert len(FIXTURES) >= 3, "run experiments/gcr/make_parity_fixtures.py --official-src PATH"
