"""EoRA hot paths on one layer, eigenkit (JAX) vs the official NVlabs/EoRA PyTorch code in the same run.

    python -m experiments.benchmarks.eora --official-src PATH_TO_NVlabs_EoRA \
        [--out experiments/benchmarks/results/eora.json] [--threads N] [--ab-rounds R] \
        [--d-out 1536 --d-in 576 --rank 64]
    python -m experiments.benchmarks.eora --official-src PATH --threads 1 --ab-rounds 10 \
        --out /tmp/eora_1thread.json   # the single-thread control, with the interleaved A/B
    python -m experiments.benchmarks.eora --d-out 64 --d-in 32 --sequences 4 --seq-len 16 --rank 4 --repeats 2 \
        --out /tmp/eora_small.json   # checks it runs (no --official-src: eigenkit only; timings meaningless)

One SmolLM2-sized linear (``W``: ``d_out x d_in`` = 1536 x 576, the shape of ``gate_proj`` / ``up_proj``), 64
calibration sequences of 512 tokens (32,768 tokens, float32), rank 64. Three hot paths:

* **covariance** — accumulating ``S`` from the 64 sequences with the official running rule (``OFFICIAL_DECAY``).
  Official: round 1 of ``eora.llama_sequential_eigen`` (its forward hook on the linear, called for each sequence) on a
  one-block "model" whose linear's own matmul is replaced by a no-op (so only the hook's work is timed; the block
  records a timestamp at each call). Ours: ``covariance_update`` over the 64 chunks in one jitted ``lax.scan``.
* **factors** — EoRA ``(B, A)`` from ``ΔW = W − W_c`` and ``S``. Official: the stretch of the same
  ``llama_sequential_eigen`` call between its two forward rounds (float64 ``eigh``, clamp, float32 SVD, ``B``, ``A``).
  Ours: :func:`eigenkit.methods.eora.eora_factors` (default ``PROJECTION`` form) with the eigendecomposition in
  float64 (as the experiment runs it, and as the official) and in float32.
* **gptq** — GPTQ 3-bit of ``W`` (per-row asymmetric, act-order, block 128, percdamp 0.01) from the Hessian.
  Official: ``gptq.GPTQ.fasterquant`` (weights restored between calls, outside the timing). Ours: ``gptq_quantize``
  jitted.

Correctness first: the same ``W``, ``W_c`` (the official GPTQ output), inputs and rank on both sides; the script stops
if the covariances differ by more than 1e-5 relative, ``B A`` by more than 1e-3 relative, or fewer than 99% of the
quantised weights agree. Compile and steady state are reported apart (median of ``--repeats``). Threads: both sides
are pinned to ``--threads`` cores (default all available; ``_common.pin_threads``: the CPU affinity for XLA,
``set_num_threads`` for torch), recorded under ``threads`` with the measured CPU/wall ratio of each side's
GPTQ step. float32 on both sides except the float64 eigendecompositions both codes use. The load average
before and after the run is recorded: time only on an idle machine.

``--ab-rounds R`` (> 0, with ``--official-src``) also times, interleaved round by round in this process, the official
and our ``gptq3`` and ``covariance + factors`` (ours: the jitted covariance scan then ``eora_factors`` float64;
official: one ``llama_sequential_eigen`` call); the official calls time themselves (the same stretches as above:
without the weight restore, the model setup and the second forward round), so the ratios
``ab_ratio_official_over_eigenkit_*`` use those self-timed seconds (``interleaved_ab``).

Without ``--official-src`` only our side runs: the Hessian is ``2/n Σ xᵀx`` (the official ``add_batch`` rule), ``W_c``
our own GPTQ output; the covariance is checked against the float64 NumPy recurrence and ``B A`` against the float64
reference as above (the GPTQ agreement needs the official code and is not checked); no A/B.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import sys
import time
import types

import numpy as np

from experiments.benchmarks._common import (
    check_load,
    first_and_median,
    interleaved_ab,
    measured_parallelism,
    parser,
    pin_threads,
    write_result,
)


def _official(src: pathlib.Path):
    from experiments.eora.make_parity_fixtures import import_official

    official, og, oq, _ = import_official(src)
    return official, og, oq


def _data(d_out, d_in, n_seq, seq_len, seed=0):
    rng = np.random.default_rng(seed)
    # heavy-tailed per-channel scales and one massive channel, like SmolLM2's inputs
    scale = np.exp(rng.uniform(-2.0, 1.0, d_in)).astype(np.float32)
    scale[0] = 300.0
    x = (rng.standard_normal((n_seq, seq_len, d_in)) * scale).astype(np.float32)
    w = (0.05 * rng.standard_normal((d_out, d_in))).astype(np.float32)
    return x, w


def bench_official(src, x, w, rank, repeats, threads):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    from experiments.eora.make_parity_fixtures import official_gptq_layer, one_block_model

    official, og, oq = _official(src)
    n, seq_len, d_in = x.shape
    d_out = w.shape[0]
    xt = torch.from_numpy(x)

    # --- GPTQ 3-bit (Hessian from the official add_batch over the same 64 sequences)
    lin, g = official_gptq_layer(og, oq, w, 3)
    for j in range(n):
        g.add_batch(xt[j:j + 1], None)
    hessian = g.H.numpy().copy()
    w0 = lin.weight.detach().clone()

    def gptq():
        with torch.no_grad():
            lin.weight.copy_(w0)
        g.H = torch.from_numpy(hessian.copy())
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            g.fasterquant(blocksize=128, percdamp=0.01, groupsize=-1, actorder=True)
        return time.perf_counter() - t

    gptq_first = gptq()
    w_c = lin.weight.detach().numpy().copy()
    gptq_s = float(np.median([gptq() for _ in range(repeats)]))

    # --- covariance + factors: one llama_sequential_eigen call on a one-block model
    stamps = []

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(d_in, d_out, bias=False)
            self.lin.forward = lambda inp: inp[..., :0]  # hook-only: find_layers needs type nn.Linear

        def forward(self, h, attention_mask=None):
            t0 = time.perf_counter()
            self.lin(h)
            stamps.append((t0, time.perf_counter()))
            return (h,)

    captured = {}
    eigh = torch.linalg.eigh

    def eigh_spy(a, *args, **kw):
        captured["cov"] = a.detach().clone()
        return eigh(a, *args, **kw)

    def eigen_pass():
        model = one_block_model(Block(), nn.Identity(), d_in, seq_len)
        with torch.no_grad():
            model.model.layers[0].lin.weight.copy_(torch.from_numpy(w))
        stamps.clear()
        official.args = types.SimpleNamespace(eigen_nsamples=n, eigen_r=rank)
        torch.linalg.eigh = eigh_spy
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                low = official.llama_sequential_eigen(model, [(xt[j:j + 1],) for j in range(n)],
                                                      {"model.layers.0.lin": torch.from_numpy(w_c)}, "cpu")
        finally:
            torch.linalg.eigh = eigh
        cov_s = stamps[n - 1][1] - stamps[0][0]
        fac_s = stamps[n][0] - stamps[n - 1][1]
        return cov_s, fac_s, low

    first = eigen_pass()
    runs = [eigen_pass() for _ in range(repeats)]
    low = first[2]
    b = low["base_model.model.model.layers.0.lin.lora_B.weight"].numpy()
    a = low["base_model.model.model.layers.0.lin.lora_A.weight"].numpy()
    calls = {"gptq3": gptq, "cov_factors": lambda: sum(eigen_pass()[:2])}  # each returns its own timed seconds
    return calls, {
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "covariance_s": float(np.median([r[0] for r in runs])), "covariance_first_s": first[0],
        "factors_s": float(np.median([r[1] for r in runs])), "factors_first_s": first[1],
        "gptq3_s": gptq_s, "gptq3_first_s": gptq_first,
    }, {"hessian": hessian, "w_c": w_c, "cov": captured["cov"].numpy(), "ba": b.astype(np.float64) @ a}


def bench_ours(x, w, w_c, hessian, rank, repeats):
    """Our three hot paths; ``w_c`` / ``hessian`` None (no official run): our GPTQ output / ``2/n Σ xᵀx``. Returns
    ``(rows, outputs, runs)``, ``runs`` the steady-state calls (block until ready) for the A/B."""
    import jax
    import jax.numpy as jnp

    from eigenkit.methods import eora

    n, _, d_in = x.shape
    xj = jnp.asarray(x)
    decay = eora.CovarianceWeighting.OFFICIAL_DECAY
    if hessian is None:  # official GPTQ.add_batch with one sequence per call: H = 2/n Σ_j x_jᵀ x_j
        flat = x.astype(np.float64)
        hessian = (2.0 / n * np.einsum("jtd,jte->de", flat, flat)).astype(np.float32)
    wj, hj = jnp.asarray(w), jnp.asarray(hessian)
    gq = jax.jit(lambda w_, h_: eora.gptq_quantize(w_, h_, 3, act_order=True, block_size=128, percdamp=0.01))
    out = {"w_c": np.asarray(gq(wj, hj))}
    w_c = out["w_c"] if w_c is None else w_c

    @jax.jit
    def cov_fn(xs):
        def body(st, xc):
            return eora.covariance_update(st, xc[None], weighting=decay, num_samples=n), None

        st, _ = jax.lax.scan(body, eora.covariance_init(d_in, jnp.float32), xs)
        return eora.covariance_finalize(st, weighting=decay)

    rows = {}
    c_first, c_med = first_and_median(lambda: jax.block_until_ready(cov_fn(xj)), repeats)
    rows.update(covariance_s=c_med, covariance_first_s=c_first)
    cov = cov_fn(xj)
    delta = jnp.asarray(w) - jnp.asarray(w_c)
    fac = jax.jit(eora.eora_factors, static_argnums=2)
    for label, cdt in (("f64", jnp.float64), ("f32", jnp.float32)):
        c = cov.astype(cdt)
        f_first, f_med = first_and_median(lambda c=c: jax.block_until_ready(fac(delta, c, rank)), repeats)
        rows.update({f"factors_{label}_s": f_med, f"factors_{label}_first_s": f_first})
        b, a = fac(delta, c, rank)
        out[f"ba_{label}"] = np.asarray(b, np.float64) @ np.asarray(a, np.float64)
    g_first, g_med = first_and_median(lambda: jax.block_until_ready(gq(wj, hj)), repeats)
    rows.update(gptq3_s=g_med, gptq3_first_s=g_first)
    out["cov"] = np.asarray(cov)
    runs = {"gptq3": lambda: jax.block_until_ready(gq(wj, hj)),
            "covariance": lambda: jax.block_until_ready(cov_fn(xj)),
            "cov_factors": lambda: jax.block_until_ready(fac(delta, cov_fn(xj).astype(jnp.float64), rank))}
    return rows, out, runs


def _reference_cov(x):
    """Float64 NumPy ``OFFICIAL_DECAY`` recurrence over the sequences (``S ← S·N/(N+1) + xᵀx/N``, ``N`` = count)."""
    n = x.shape[0]
    s = np.zeros((x.shape[2], x.shape[2]))
    for xs in x.astype(np.float64):
        s = s * (n / (n + 1)) + xs.T @ xs / n
    return s


def _ab(official_call, ours_run, rounds):
    """``interleaved_ab`` of the official call and ours; the official call returns its own timed seconds (the stretch
    the rows report), whose median gives ``ab_ratio_official_over_eigenkit_median`` / ``_min``."""
    own = []
    res = interleaved_ab({"official": lambda: own.append(official_call()), "eigenkit": ours_run}, rounds, [])
    res["official_self_timed"] = {"median_s": float(np.median(own)), "min_s": float(np.min(own))}
    for stat in ("median", "min"):
        res[f"ab_ratio_official_over_eigenkit_{stat}"] = (res["official_self_timed"][f"{stat}_s"]
                                                          / res["times"]["eigenkit"][f"{stat}_s"])
        res[f"ab_ratio_official_wall_over_eigenkit_{stat}"] = (res["times"]["official"][f"{stat}_s"]
                                                               / res["times"]["eigenkit"][f"{stat}_s"])
    return res


def _reference_ba(delta, cov, rank):
    """Float64 NumPy ``[ΔW L]_r L⁻¹`` (paper Eq. 3-6, official clamp): the ground truth both sides are checked on."""
    lam, q = np.linalg.eigh(cov)
    lam = np.where(lam < 0, lam[lam > 0].min(), lam)
    u, s, vt = np.linalg.svd(delta @ (q * np.sqrt(lam)), full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank] @ (q / np.sqrt(lam)).T


def build_parser():
    """The command line (``_common.parser``, ``--threads`` defaulting to all available cores, plus the sizes)."""
    ap = parser(__doc__, out="experiments/benchmarks/results/eora.json", threads=len(os.sched_getaffinity(0)))
    ap.add_argument("--official-src", type=pathlib.Path, default=None,
                    help="NVlabs/EoRA checkout; without it only our side runs (see the docstring)")
    ap.add_argument("--d-out", type=int, default=1536)
    ap.add_argument("--d-in", type=int, default=576)
    ap.add_argument("--sequences", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--rank", type=int, default=64)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    threads = pin_threads(args.threads)  # before JAX's backend starts: both sides get the same cores
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 eigendecomposition available, as in the experiment
    load_before = check_load("before")
    x, w = _data(args.d_out, args.d_in, args.sequences, args.seq_len)
    if args.official_src is not None:
        off_calls, off, ref = bench_official(args.official_src.resolve(), x, w, args.rank, args.repeats,
                                             args.threads)
        ours, got, runs = bench_ours(x, w, ref["w_c"], ref["hessian"], args.rank, args.repeats)
        threads["torch"] = off["threads"]
        own = []
        threads["torch_measured_parallelism"] = measured_parallelism(lambda: own.append(off_calls["gptq3"]()), 2)
    else:
        off = off_calls = None
        ours, got, runs = bench_ours(x, w, None, None, args.rank, args.repeats)
        ref = {"w_c": got["w_c"], "cov": _reference_cov(x)}
    threads["jax_measured_parallelism"] = measured_parallelism(runs["gptq3"], 2)

    cov_rel = float(np.abs(got["cov"] - ref["cov"]).max() / np.abs(ref["cov"]).max())
    exact = _reference_ba(w.astype(np.float64) - ref["w_c"], ref["cov"].astype(np.float64), args.rank)
    rel = lambda m: float(np.linalg.norm(m - exact) / np.linalg.norm(exact))  # noqa: E731
    ba_rel = {"ours_f64": rel(got["ba_f64"]), "ours_f32": rel(got["ba_f32"])}
    checks = {"reference": "official" if off else "float64 NumPy (no --official-src; GPTQ agreement not checked)",
              "covariance_max_rel_diff": cov_rel, "ba_rel_diff_vs_float64_reference": ba_rel}
    if off is not None:
        ba_rel.update(official=rel(ref["ba"]), ours_f64_vs_official=float(np.linalg.norm(got["ba_f64"] - ref["ba"])
                                                                          / np.linalg.norm(ref["ba"])))
        checks["gptq_fraction_equal"] = float(np.isclose(got["w_c"], ref["w_c"], atol=1e-5).mean())
    if cov_rel > 1e-5 or ba_rel["ours_f64"] > 1e-4 or ba_rel["ours_f32"] > max(1e-3, 2 * ba_rel.get("official", 0)) \
            or checks.get("gptq_fraction_equal", 1.0) < 0.99:
        raise SystemExit(f"correctness check failed: {checks}")
    ab = None
    if args.ab_rounds > 0 and off_calls is not None:
        ab = {name: _ab(off_calls[name], runs[name], args.ab_rounds) for name in ("gptq3", "cov_factors")}
    result = {
        "benchmark": "eora_layer", "shape": {"d_out": args.d_out, "d_in": args.d_in, "sequences": args.sequences,
                                             "seq_len": args.seq_len, "rank": args.rank},
        "dtype": "float32 (eigendecompositions float64 on both sides; ours also float32)",
        "threads": threads, "official": off, "ours": ours, "checks": checks,
        "ratios_official_over_ours": None if off is None else {
            "covariance": off["covariance_s"] / ours["covariance_s"],
            "factors_f64": off["factors_s"] / ours["factors_f64_s"],
            "factors_f32": off["factors_s"] / ours["factors_f32_s"],
            "gptq3": off["gptq3_s"] / ours["gptq3_s"],
        },
        "interleaved_ab": ab,
        "loadavg_before": load_before, "loadavg_after": check_load("after"),
        "command": "python -m experiments.benchmarks.eora " + " ".join(argv if argv is not None else sys.argv[1:]),
        "repeats": args.repeats, "python": sys.version.split()[0],
    }
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
