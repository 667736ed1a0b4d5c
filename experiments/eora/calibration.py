"""EoRA calibration-size study: how many calibration tokens the compressor and EoRA need on SmolLM2-135M.

    python -m experiments run eora.calibration --preset cpu      (a registered study; presets smoke, cpu)

One compression (GPTQ 3-bit) and one rank (r = 64). For each calibration size ``n`` (tokens per set; the compressor
and EoRA each get their own disjoint set of ``n`` tokens, drawn with ``(seed, draw)`` by
:func:`eigenkit.data.text_passage_sets`; the held-out set is the same for every size and draw) and each draw:
held-out perplexity of the compressed model and of its SVD and EoRA compensations, the mean per-layer relative output
error on the held-out tokens (uncompressed-model inputs, :func:`eigenkit.methods.eora.layer_errors`), and the driver's
own calibration errors (the compressor's on its set, EoRA's on its set, each on the sequential pass's inputs). The
gap between the calibration and held-out errors is the over-fitting the main table's protocol avoids; sizes below the
widest linear input (1,536 for ``down_proj``) leave the covariance singular. With the cpu presets' seed, text, passage
length and held-out size, the 8k-token draw 0 is exactly the main table's calibration (``eora`` cpu preset), so its
r = 64 cell completes that table.

Metrics: ``ppl_{n}_{none, svd64, eora64}`` as mean ± std (ddof 0) over draws. Outputs in the workdir:
``calibration.png`` (perplexity and errors vs tokens), ``calibration.md``, ``calibration.json``, ``cells.json``.
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import ml_collections
import numpy as np

from eigenkit.methods import eora
from experiments._contract import Metric, Result, markdown_table
from experiments.eora import train as main

PRESETS = ("smoke", "cpu")


def get_config(preset: str) -> ml_collections.ConfigDict:
    """cpu: tokens per set {2k, 8k, 32k} with {2, 2, 1} draws; smoke: the tiny random LLaMA."""
    c = ml_collections.ConfigDict(dict(
        description="EoRA calibration size: GPTQ 3-bit, r=64, {2k, 8k, 32k} tokens per calibration set, 2/2/1 draws",
        expected_runtime="~7 min on 2 CPU cores", model="smollm2", seed=0, seq_len=128,
        passages=(16, 64, 256), draws=(2, 2, 1), eval_passages=16, chars_per_book=120_000,
        batch_size=8, compression="gptq3", rank=64, float64_eigh=False,
    ))
    if preset == "smoke":
        c.update(dict(description="EoRA calibration smoke: tiny random LLaMA", expected_runtime="~20 s",
                      model="tiny", seq_len=16, passages=(4, 8), draws=(2, 1), eval_passages=4, rank=4))
        c.tiny = ml_collections.ConfigDict(dict(vocab_size=64, dim=32, num_layers=2, num_heads=4, num_kv_heads=2,
                                                hidden_dim=64))
    elif preset != "cpu":
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    return c


def _run(config, wd: pathlib.Path) -> Result:
    t0 = time.perf_counter()
    if len(config.passages) != len(config.draws):
        raise ValueError(f"config.passages {config.passages} and config.draws {config.draws} must have one entry "
                         "per calibration size")
    cells = main.Cells(wd, config)
    n_max = max(config.passages)
    sizing = ml_collections.ConfigDict(dict(model=config.model, seed=config.seed, seq_len=config.seq_len,
                                            compress_passages=n_max, eora_passages=n_max,
                                            eval_passages=config.eval_passages,
                                            chars_per_book=config.chars_per_book))
    if config.model == "tiny":
        sizing.tiny = config.tiny
    model, streams = main.load_model(sizing)
    ev = main.token_sets(sizing, streams)["heldout"]
    errors = main.Errors(model, {"heldout": ev}, config.batch_size)
    bs, r, cname = config.batch_size, int(config.rank), config.compression
    spec = main.COMPRESSIONS[cname]
    labels = ("none", f"svd{r}", f"eora{r}")
    rows, metrics = [], []
    for n, n_draws in zip(config.passages, config.draws, strict=True):
        tokens = n * config.seq_len
        per = {lab: [] for lab in labels}
        for draw in range(n_draws):
            key = f"n{tokens}_d{draw}"
            if not cells.has(*(f"{k}_{key}_{lab}" for k in ("ppl", "err") for lab in labels), f"calib_{key}"):
                sets = main.token_sets(sizing, streams, draw=draw, compress_passages=n, eora_passages=n)
                t = time.perf_counter()
                compressed, crep = eora.compress_model(model, sets["compress"], spec, batch_size=bs)
                _, svd_f, _ = eora.compensate_model(model, compressed, None,
                                                    eora.CompensationSpec(eora.Compensation.SVD, r))
                new_model, eora_f, erep = eora.compensate_model(
                    model, compressed, sets["eora"], main.eora_spec(config, r), batch_size=bs)
                cells.put(f"time_{key}_s", time.perf_counter() - t)
                for lab, f in zip(labels, (None, svd_f, eora_f), strict=True):
                    w = eora.compensated_weights(compressed, f)
                    m = new_model if f is eora_f else eora.apply_factors(model, w)
                    cells.put(f"ppl_{key}_{lab}", eora.perplexity(m, sets["heldout"], batch_size=bs))
                    cells.put(f"err_{key}_{lab}", errors.summary(w)["heldout"]["mean"])
                cells.put(f"calib_{key}", {"compress": float(np.mean([x["rel_err"] for x in crep])),
                                           "eora": float(np.mean([x["rel_err_compensated"] for x in erep]))})
            for lab in labels:
                per[lab].append(cells.values[f"ppl_{key}_{lab}"])
            print(f"[eora.calibration] {tokens} tokens, draw {draw}: " + ", ".join(
                f"{lab} {cells.values[f'ppl_{key}_{lab}']:.3f}" for lab in labels), flush=True)
        keys = [f"n{tokens}_d{d}" for d in range(n_draws)]
        row = {"tokens": tokens, "draws": n_draws}
        for lab in labels:
            metrics.append(Metric(f"ppl_{tokens}_{lab}", tuple(per[lab]), tuple(range(n_draws)),
                                  baseline=lab != f"eora{r}", higher_is_better=False, unit="ppl"))
            row[f"ppl_{lab}"] = float(np.mean(per[lab]))
            row[f"ppl_{lab}_std"] = float(np.std(per[lab]))
            row[f"heldout_err_{lab}"] = float(np.mean([cells.values[f"err_{k}_{lab}"] for k in keys]))
        row["calib_err_compress"] = float(np.mean([cells.values[f"calib_{k}"]["compress"] for k in keys]))
        row["calib_err_eora"] = float(np.mean([cells.values[f"calib_{k}"]["eora"] for k in keys]))
        rows.append(row)
    table = markdown_table(
        ["tokens per set", "draws", *(f"ppl {lab}" for lab in labels), "GPTQ err calib", "GPTQ err held-out",
         f"EoRA{r} err calib", f"EoRA{r} err held-out", f"SVD{r} err held-out"],
        [[row["tokens"], row["draws"], *(f"{row[f'ppl_{lab}']:.3f} ± {row[f'ppl_{lab}_std']:.3f}" for lab in labels),
          row["calib_err_compress"], row["heldout_err_none"], row["calib_err_eora"], row[f"heldout_err_eora{r}"],
          row[f"heldout_err_svd{r}"]] for row in rows])
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "calibration.json").write_text(json.dumps({"config": config.to_dict(), "rows": rows}, indent=2))
    (wd / "calibration.md").write_text(f"# {config.description}\n\n{table}\n\nErrors: mean over linears of "
                                       "‖(W − Ŵ)Xᵀ‖/‖WXᵀ‖; calibration errors on the driver's sequential inputs, "
                                       "held-out errors on the uncompressed model's inputs.\n")
    _plot(wd, rows, labels, r)
    extras = {"rows": rows, "wall_time_s": time.perf_counter() - t0}
    return Result(metrics, extras=extras, tables={"calibration size": table},
                  artifacts={"plot": str(wd / "calibration.png"), "table": str(wd / "calibration.md")})


def _plot(wd, rows, labels, r):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [row["tokens"] for row in rows]
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 4))
    for lab in labels:
        a0.errorbar(x, [row[f"ppl_{lab}"] for row in rows], yerr=[row[f"ppl_{lab}_std"] for row in rows],
                    marker="o", capsize=3, label=lab)
    a0.set(xscale="log", xlabel="calibration tokens per set", ylabel="held-out perplexity",
           title="GPTQ 3-bit, held-out perplexity")
    a0.legend()
    a1.plot(x, [row["calib_err_compress"] for row in rows], "o--", color="C0", label="GPTQ, calibration")
    a1.plot(x, [row["heldout_err_none"] for row in rows], "o-", color="C0", label="GPTQ, held-out")
    a1.plot(x, [row["calib_err_eora"] for row in rows], "s--", color="C2", label=f"+EoRA{r}, calibration")
    a1.plot(x, [row[f"heldout_err_eora{r}"] for row in rows], "s-", color="C2", label=f"+EoRA{r}, held-out")
    a1.plot(x, [row[f"heldout_err_svd{r}"] for row in rows], "^-", color="C1", label=f"+SVD{r}, held-out")
    a1.set(xscale="log", xlabel="calibration tokens per set", ylabel="mean per-layer relative output error",
           title="calibration vs held-out error")
    a1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(wd / "calibration.png", dpi=120)
    plt.close(fig)


def train_and_evaluate(config, workdir: str) -> Result:
    """Run the study (see module docstring)."""
    with jax.enable_x64(bool(config.float64_eigh)):
        return _run(config, pathlib.Path(workdir))
