"""Parity of eigenkit.methods.mlc with the CPP code (LeslieTrue/CPP @ cb39bdc: ``MLCLoss``, ``SinkhornDistance``,
``TotalCodingRate``, as ``main.py`` composes them), float64, on the fixtures of experiments/mlc/make_parity_fixtures.py.

Tolerance: CPP builds its Sinkhorn marginals in float32 even in float64 mode, which scales its ``Pi`` by
``exp(δ)``, ``|δ| ≈ 3e-8`` (measured by the fixture script), and adds 1e-8 to every cluster mass; so quantities
downstream of ``Pi`` agree to ``rtol 1e-6``, and exactly (1e-12) against the fixture's exact-marginal ``Pi``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit.linalg import SinkhornGrad
from eigenkit.methods import mlc

CASES = ("n48_d8", "n16_d32")


@pytest.mark.parametrize("case", CASES)
def test_loss_and_gradients_match_cpp(mlc_parity_fixture, case):
    f = {k[len(case) + 1:]: v for k, v in mlc_parity_fixture.items() if k.startswith(case + "_")}
    s = mlc_parity_fixture
    assert str(s["official_commit"]) == "cb39bdc65f346b4cb5950d14af2e393a5f6a3566"
    eps, eta, n_iter = math.sqrt(float(s["eps_sq"])), float(s["eta"]), int(s["n_iter"])
    kw = dict(eps=eps, eta=eta, n_iter=n_iter, gamma=float(s["gamma"]), pigam=float(s["pigam"]),
              abs_similarity=True, grad_mode=SinkhornGrad.STOP_V)

    def total(z0, c0):
        loss, aux = mlc.mlc_loss(mlc.sphere_normalize(z0), mlc.sphere_normalize(c0), **kw)
        return loss, aux

    (loss, aux), (gz, gc) = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))(
        jnp.asarray(f["z0"]), jnp.asarray(f["c0"]))
    np.testing.assert_allclose(np.asarray(aux["gamma_mat"]), f["pi_f64_marginals"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(aux["gamma_mat"]), f["pi"], rtol=1e-6)
    np.testing.assert_allclose(float(loss), f["loss"], rtol=1e-6)
    np.testing.assert_allclose(float(loss), f["loss_f64_marginals"], rtol=1e-7)  # CPP: t_j + 1e-8
    np.testing.assert_allclose([float(aux["rate"]), float(aux["compress"]), float(aux["reg"])],
                               [f["rate"], f["compress"], f["reg"]], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(gz), f["grad_loss_z0"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(gc), f["grad_loss_c0"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(gz), f["grad_loss_z0_f64_marginals"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(np.asarray(gc), f["grad_loss_c0_f64_marginals"], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_sinkhorn_objective_and_tcr_match_cpp(mlc_parity_fixture, case):
    f = {k[len(case) + 1:]: v for k, v in mlc_parity_fixture.items() if k.startswith(case + "_")}
    s = mlc_parity_fixture
    eps, eta, n_iter = math.sqrt(float(s["eps_sq"])), float(s["eta"]), int(s["n_iter"])
    # the Sinkhorn layer's VJP alone (CPP's detached column potential)
    w = jnp.asarray(f["sinkhorn_w"])
    g = jax.grad(lambda c0: jnp.sum(mlc.membership(mlc.sphere_normalize(c0), eta=eta, n_iter=n_iter) * w))(
        jnp.asarray(f["c0"]))
    np.testing.assert_allclose(np.asarray(g), f["grad_sinkhorn_c0"], rtol=1e-6, atol=1e-7)
    # MLCLoss with z and Pi as leaves (no regulariser)
    (obj, _), (gz, gp) = jax.value_and_grad(lambda z, p: mlc.mlc_objective(z, p, eps=eps, gamma=float(s["gamma"])),
                                            argnums=(0, 1), has_aux=True)(jnp.asarray(f["z"]), jnp.asarray(f["pi"]))
    np.testing.assert_allclose(float(obj), f["objective"], rtol=1e-7)
    np.testing.assert_allclose(np.asarray(gz), f["grad_objective_z"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(np.asarray(gp), f["grad_objective_pi"], rtol=1e-6, atol=5e-8)
    # TotalCodingRate
    t, gt = jax.value_and_grad(lambda z0: mlc.tcr_loss(mlc.sphere_normalize(z0), eps=eps))(jnp.asarray(f["z0"]))
    np.testing.assert_allclose(float(t), f["tcr"], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(gt), f["grad_tcr_z0"], rtol=1e-10, atol=1e-12)
