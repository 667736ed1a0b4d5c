"""Golden float64 outputs of the CPP/MLC code (``LeslieTrue/CPP``) for eigenkit's MLC parity tests.

    python -m experiments.mlc.make_parity_fixtures --official-src PATH [--out tests/fixtures/mlc/cpp_mlc.npz]
    python experiments/mlc/make_parity_fixtures.py --official-src PATH          # the same, run by path

The official MLC repository (Ding et al., ICCV 2023) is not available; its authors' follow-up ``LeslieTrue/CPP``
(pinned commit ``cb39bdc65f346b4cb5950d14af2e393a5f6a3566``) holds the same loss and membership layer.  ``PATH`` is the
root of that repository (the folder holding ``loss/`` and ``model/``). Two of its files are imported **unmodified**
by file path (``importlib``; both import only torch): ``loss/loss_fn.py`` (``MLCLoss``, ``TotalCodingRate``) and
``model/sink_distance.py`` (``SinkhornDistance``). The commit is read with ``git rev-parse`` when ``PATH`` is a git
checkout (a warning is printed if it is not the pinned one), else recorded as ``"unknown"``. Needs torch (CPU).

The graph is ``main.py``'s (training step after the warm-up), in float64 (``torch.set_default_dtype``)::

    z = F.normalize(z0); c = F.normalize(c0)                   # the heads' outputs (CPPNet.forward)
    Pi = SinkhornDistance(eta, n_iter)(|c cᵀ|[None])[0] * n; Pi = Pi[0]
    loss = MLCLoss(eps=EPS_SQ, gamma)(z, Pi)[0] + pigam * 0.5 * ||Pi||_F²

with CPP's ``--pieta 0.175``, ``--piiter 5``, ``--pigam 0.05``, ``MLCLoss(eps=0.1, gamma=1.0)``,
``TotalCodingRate(eps=0.1)``. CPP's ``eps`` is **ε²** (eigenkit's ``eps`` is ε = sqrt(0.1)).

Keys (``{case}`` is ``n48_d8`` and ``n16_d32``, the second with ``d > n`` for the Gram side; ``cases`` lists them):

* settings: ``eps_sq`` (CPP eps, = ε²), ``eta``, ``n_iter``, ``pigam``, ``gamma`` (0-d float64 / int64),
  ``official_commit``, ``torch_version``, ``loader`` (strings), ``cases``;
* ``{case}_z0``, ``{case}_c0``: ``(n, d)`` raw inputs (seeded NumPy normals); ``{case}_z``, ``{case}_c``: their
  row-normalised versions (``F.normalize``); ``{case}_similarity``: ``|c cᵀ|``;
* ``{case}_pi``: ``(n, n)`` membership ``Γ`` (CPP Sinkhorn × n) — what ``eigenkit.methods.mlc.membership`` returns;
* ``{case}_loss``, ``{case}_rate``, ``{case}_compress``, ``{case}_reg``: the total loss, MLCLoss's returned list
  (discriminative rate ``R``, compressed rate ``R_c``; ``MLCLoss = −R + gamma R_c``) and ``reg = ½‖Pi‖²_F``
  (without ``pigam``, as eigenkit's ``aux["reg"]``: ``loss = −R + gamma R_c + pigam · reg``);
* ``{case}_grad_loss_z0``, ``{case}_grad_loss_c0``: ``∂ loss / ∂ (z0, c0)`` through normalisation and Sinkhorn;
* ``{case}_sinkhorn_w``: a fixed random ``(n, n)`` weight ``W``; ``{case}_grad_sinkhorn_c0``:
  ``∂ Σ(Pi ⊙ W) / ∂ c0`` (the Sinkhorn VJP alone, CPP's detached-``v`` semantics = ``SinkhornGrad.STOP_V``);
* ``{case}_objective``: ``MLCLoss(z, Pi)[0]`` alone with ``z`` and ``Pi`` as leaves; ``{case}_grad_objective_pi``,
  ``{case}_grad_objective_z``: its gradients w.r.t. those leaves (no regulariser);
* ``{case}_tcr``: ``TotalCodingRate(eps=0.1)(z)`` (= ``−rate``), ``{case}_grad_tcr_z0``: its gradient w.r.t. ``z0``;
* float32-marginal measurement (see below): ``{case}_log_marginal_f32_error`` (δ), ``{case}_pi_f64_marginals``,
  ``{case}_loss_f64_marginals``, ``{case}_grad_loss_z0_f64_marginals``, ``{case}_grad_loss_c0_f64_marginals``, and
  the max abs differences CPP − float64-marginal run: ``{case}_marginal_effect_pi``, ``..._loss``,
  ``..._grad_z0``, ``..._grad_c0``, ``..._grad_sinkhorn_c0``; ``{case}_reference_check_pi`` is the max abs difference
  between CPP and the independent Sinkhorn below fed CPP's float32-rounded marginals (0 measured: the check that the
  reference reproduces CPP, so the differences above are the marginals alone).

**CPP's float32 marginals.** ``SinkhornDistance.forward`` creates ``mu``/``nu`` with ``dtype=torch.float`` whatever
the default dtype, so ``log(mu) = log(1/n)`` is rounded to float32 and then promoted to float64: an error
``δ = log_f32(1/n) − log(1/n)``, ``|δ| ≲ 2^-24 (1 + log n)`` (the rounding of ``1/n`` and of its log). Their code is not
patched. δ enters every ``u``-update as the same additive constant and cancels in every ``v``-update, so CPP's ``Pi``
is exactly ``exp(δ)`` times the float64-marginal one: a uniform relative error ``|δ|`` on ``Pi``, passed on to
``compress`` (×exp(δ): ``Σ_j t_j`` scales, the logdets are scale invariant), ``reg`` (×exp(2δ)) and every gradient
through ``Pi``. Measured here: δ = −2.7e-8 (n = 48), −7.6e-9 (n = 16); max abs CPP − float64 marginals: ``Pi``
1.6e-8 / 6.9e-9, ``loss`` 2.4e-7 / 8.5e-8 (= (e^δ − 1)·compress + (e^{2δ} − 1)·pigam·reg to 1e-14), ``grad_loss_z0``
1.1e-9 / 3.1e-10, ``grad_loss_c0`` 9.2e-10 / 4.3e-10, ``grad_sinkhorn_c0`` 2.6e-8 / 4.5e-10 (the ratio
``Pi / pi_f64_marginals`` is constant to 4e-15). Float64 parity against CPP's keys therefore needs ``rtol ≈ 1e-6``
on anything downstream of ``Pi`` (a float64 ``atol`` of 1e-11 is not reachable), or compares against the
``*_f64_marginals`` keys (eigenkit's marginals are exact); quantities with ``Pi`` as a leaf (``objective``,
``grad_objective_*``, ``tcr``, ``grad_tcr_z0``) are unaffected by δ. Separately, CPP adds ``1e-8`` to every column
mass ``t_j`` and eigenkit does not: ~6e-9 relative (5e-8 abs) in ``compress``, up to 2e-8 abs in
``grad_objective_pi``, in every key with a ``compress`` term (``tcr`` has none) — so ``rtol = 1e-6`` (``atol`` ~1e-9)
is the float64 tolerance either way. The float64-marginal run uses an independent log-domain Sinkhorn written here
(``_sinkhorn_reference``: same update order, detached ``v``); fed CPP's rounded log-marginals it reproduces CPP's
``Pi`` exactly (``reference_check_pi`` = 0), so the differences above are the marginals alone.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys

import numpy as np

if __package__ in (None, ""):  # run by path: make the repository root importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from experiments._official import git_commit, load_module_from_file  # noqa: E402

PINNED_COMMIT = "cb39bdc65f346b4cb5950d14af2e393a5f6a3566"
EPS_SQ, ETA, N_ITER, PIGAM, GAMMA = 0.1, 0.175, 5, 0.05, 1.0  # CPP main.py defaults (eps is ε²)
CASES = (("n48_d8", 48, 8, 0), ("n16_d32", 16, 32, 1))  # name, n, d, seed
DEFAULT_OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mlc" / "cpp_mlc.npz"


def import_official(src: pathlib.Path):
    """``(loss_fn, sink_distance)``: CPP's ``loss/loss_fn.py`` and ``model/sink_distance.py``, imported unmodified."""
    loss_fn = load_module_from_file(src / "loss" / "loss_fn.py", "cpp_official_loss_fn")
    sink = load_module_from_file(src / "model" / "sink_distance.py", "cpp_official_sink_distance")
    return loss_fn, sink


def official_commit(src: pathlib.Path, given: str | None = None) -> str:
    commit = git_commit(src, given)
    if commit != PINNED_COMMIT:
        print(f"warning: official commit is {commit!r}, the fixtures are defined for {PINNED_COMMIT}", file=sys.stderr)
    return commit


def _sinkhorn_reference(sim, eta: float, n_iter: int, log_mu, log_nu):
    """Independent log-domain Sinkhorn on an ``(n, m)`` similarity (measurement only): ``u`` on even steps, ``v`` on
    odd ones, ``v`` detached (entries > 9e8 zeroed) after each update; returns ``n·π``."""
    import torch

    n, m = sim.shape
    u = torch.zeros(n, dtype=sim.dtype)
    v = torch.zeros(m, dtype=sim.dtype)
    for t in range(n_iter):
        logk = (sim + u[:, None] + v[None, :]) / eta
        if t % 2 == 0:
            u = u + eta * (log_mu - torch.logsumexp(logk, dim=1))
        else:
            v = (v + eta * (log_nu - torch.logsumexp(logk, dim=0))).detach()
            v = torch.where(v > 9e8, torch.zeros_like(v), v)
    return n * torch.exp((sim + u[:, None] + v[None, :]) / eta)


def _case(loss_fn, sink, n: int, d: int, seed: int) -> dict:
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    z0_np, c0_np = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    w_np = rng.standard_normal((n, n))
    crit = loss_fn.MLCLoss(eps=EPS_SQ, gamma=GAMMA)
    sink_layer = sink.SinkhornDistance(ETA, max_iter=N_ITER)
    np_ = lambda t: t.detach().numpy().copy()  # noqa: E731

    def leaves():
        return (torch.tensor(z0_np, requires_grad=True), torch.tensor(c0_np, requires_grad=True))

    def membership(c, ref_log_marginals=None):
        sim = (c @ c.T).abs()
        if ref_log_marginals is None:  # CPP, exactly as main.py
            pi = sink_layer(sim.unsqueeze(0))[0]
            return (pi * pi.shape[-1])[0]
        return _sinkhorn_reference(sim, ETA, N_ITER, *ref_log_marginals)

    def full_loss(ref_log_marginals=None):
        z0, c0 = leaves()
        z, c = F.normalize(z0, 2), F.normalize(c0, 2)
        pi = membership(c, ref_log_marginals)
        obj, parts = crit(z, pi)
        reg = 0.5 * pi.norm() ** 2
        loss = obj + PIGAM * reg  # main.py: loss + pigam * 0.5 * Pi.norm()**2
        gz, gc = torch.autograd.grad(loss, (z0, c0))
        return {"z": z, "c": c, "pi": pi, "loss": loss, "rate": parts[0], "compress": parts[1], "reg": reg,
                "gz": gz, "gc": gc}

    def sinkhorn_vjp(ref_log_marginals=None):
        _, c0 = leaves()
        pi = membership(F.normalize(c0, 2), ref_log_marginals)
        return torch.autograd.grad((pi * torch.tensor(w_np)).sum(), c0)[0]

    cpp = full_loss()
    g_sink = sinkhorn_vjp()

    z_leaf = cpp["z"].detach().clone().requires_grad_(True)
    pi_leaf = cpp["pi"].detach().clone().requires_grad_(True)
    obj, _ = crit(z_leaf, pi_leaf)
    g_obj_z, g_obj_pi = torch.autograd.grad(obj, (z_leaf, pi_leaf))

    z0, _ = leaves()
    tcr = loss_fn.TotalCodingRate(eps=EPS_SQ)(F.normalize(z0, 2))
    g_tcr = torch.autograd.grad(tcr, z0)[0]

    # float32 marginals: CPP's rounded log(1/n) vs exact float64, through the independent reference Sinkhorn
    log_f32 = torch.log(torch.full((), 1.0 / n, dtype=torch.float)).to(torch.float64)  # as CPP computes it
    log_f64 = torch.tensor(-math.log(n), dtype=torch.float64)
    maxabs = lambda a, b: float((a - b).detach().abs().max())  # noqa: E731
    ref_check = maxabs(membership(cpp["c"].detach(), (log_f32, log_f32)), cpp["pi"])
    exact = full_loss((log_f64, log_f64))
    g_sink_exact = sinkhorn_vjp((log_f64, log_f64))

    return {
        "z0": z0_np, "c0": c0_np, "z": np_(cpp["z"]), "c": np_(cpp["c"]), "similarity": np_((cpp["c"] @ cpp["c"].T)
                                                                                          .abs()),
        "pi": np_(cpp["pi"]), "loss": np_(cpp["loss"]), "rate": np.float64(cpp["rate"]),
        "compress": np.float64(cpp["compress"]), "reg": np_(cpp["reg"]),
        "grad_loss_z0": np_(cpp["gz"]), "grad_loss_c0": np_(cpp["gc"]),
        "sinkhorn_w": w_np, "grad_sinkhorn_c0": np_(g_sink),
        "objective": np_(obj), "grad_objective_z": np_(g_obj_z), "grad_objective_pi": np_(g_obj_pi),
        "tcr": np_(tcr), "grad_tcr_z0": np_(g_tcr),
        "log_marginal_f32_error": np.float64(float(log_f32 - log_f64)),
        "pi_f64_marginals": np_(exact["pi"]), "loss_f64_marginals": np_(exact["loss"]),
        "grad_loss_z0_f64_marginals": np_(exact["gz"]), "grad_loss_c0_f64_marginals": np_(exact["gc"]),
        "marginal_effect_pi": np.float64(maxabs(cpp["pi"], exact["pi"])),
        "marginal_effect_loss": np.float64(maxabs(cpp["loss"], exact["loss"])),
        "marginal_effect_grad_z0": np.float64(maxabs(cpp["gz"], exact["gz"])),
        "marginal_effect_grad_c0": np.float64(maxabs(cpp["gc"], exact["gc"])),
        "marginal_effect_grad_sinkhorn_c0": np.float64(maxabs(g_sink, g_sink_exact)),
        "reference_check_pi": np.float64(ref_check),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-src", required=True, type=pathlib.Path,
                    help="root of LeslieTrue/CPP (holds loss/loss_fn.py and model/sink_distance.py)")
    ap.add_argument("--official-commit", default=None, help="commit of that checkout (default: git rev-parse)")
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    src = args.official_src.resolve()
    loss_fn, sink = import_official(src)
    commit = official_commit(src, args.official_commit)
    print(f"official LeslieTrue/CPP commit: {commit}")

    arrays = {"eps_sq": np.float64(EPS_SQ), "eta": np.float64(ETA), "n_iter": np.int64(N_ITER),
              "pigam": np.float64(PIGAM), "gamma": np.float64(GAMMA), "official_commit": np.str_(commit),
              "torch_version": np.str_(torch.__version__), "cases": np.array([c[0] for c in CASES]),
              "loader": np.str_("LeslieTrue/CPP loss/loss_fn.py + model/sink_distance.py imported unmodified "
                                "(importlib by file path), torch float64 default dtype")}
    for name, n, d, seed in CASES:
        out = _case(loss_fn, sink, n, d, seed)
        arrays.update({f"{name}_{k}": v for k, v in out.items()})
        eff = {k: f"{float(out[k]):.2e}" for k in out if k.startswith("marginal_effect") or k == "reference_check_pi"}
        print(f"{name}: loss {float(out['loss']):.12f}, float32-marginal delta {float(out['log_marginal_f32_error']):.3e},"
              f" max abs CPP - float64 marginals {eff}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays)
    print(f"wrote {args.out} ({len(arrays)} arrays, torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
