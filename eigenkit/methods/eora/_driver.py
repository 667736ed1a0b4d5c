"""Layer-sequential compression and compensation of a LLaMA-style model (NVlabs ``eora.py``).

Two passes, as the official code:

1. :func:`compress_model` (``llama_sequential_gptq`` / ``_sparsegpt`` / ``_wanda``): block ``i`` sees calibration
   hidden states from blocks ``0..i−1`` already *compressed*; every linear gets its input covariance from one
   block-parallel forward (the official code with ``--true-sequential`` re-hooks after q/k/v, o and gate/up; not done
   here) and is compressed with :func:`compress_weight` (the covariance is the GPTQ/SparseGPT Hessian).
2. :func:`compensate_model` (``llama_sequential_eigen``): block ``i`` sees hidden states from blocks ``0..i−1``
   already *compensated*; all linears of the block are hooked at once with the block's original weights (q/k/v share
   ``attn_in`` and one covariance root, gate/up share ``mlp_in``); each weight becomes ``W_c + B A`` with ``(B, A)``
   computed as :func:`eigenkit.methods.eora.eora_factors` computes them (the function the parity test compares with
   the official code; the same two steps, root then factors, with the spec's ``form`` and ``clamp``); the block is
   re-run with the new weights to give the next block's inputs.
   ``SVD`` needs no calibration (no forward pass).

:func:`input_covariances` and :func:`layer_errors` measure every linear's relative output error
``‖(W − Ŵ) Xᵀ‖_F / ‖W Xᵀ‖_F`` on any token set, with ``X`` the inputs that layer sees in the *uncompressed* model
(one forward pass per token set, shared by every compression and compensation compared on it).
"""

from __future__ import annotations

import dataclasses
import enum
import functools

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit.methods.eora._compress import CompressionSpec, compress_weight
from eigenkit.methods.eora._factors import (
    EigenClamp,
    EoraForm,
    covariance_root,
    eigen_sqrt,
    eora_factors_cholesky,
    eora_factors_from_root,
    eora_factors_from_sqrt,
    svd_factors,
)
from eigenkit.nn import (
    LINEAR_INPUTS,
    LINEAR_NAMES,
    LlamaConfig,
    LlamaModel,
    block_apply,
    llama_from_weights,
    llama_weights,
    next_token_nll,
)


class Compensation(enum.Enum):
    """Low-rank compensation of the compression error."""

    NONE = "none"
    SVD = "svd"  # truncated SVD of ΔW (ZeroQuant-V2)
    EORA = "eora"  # eora_factors (eigendecomposition in float64 when x64 is enabled)
    EORA_CHOLESKY = "eora_cholesky"  # float32 Cholesky whitening


@dataclasses.dataclass(frozen=True)
class CompensationSpec:
    """Static compensation recipe: ``method``, ``rank`` (capped per layer at ``min(d_out, d_in)``), the EoRA
    :class:`EoraForm` and its eigenvalue ``clamp`` (``WHITENED`` only), relative Cholesky ``damp``. The defaults are
    those of :func:`eigenkit.methods.eora.eora_factors`."""

    method: Compensation = Compensation.EORA
    rank: int = 64
    form: EoraForm = EoraForm.PROJECTION
    clamp: EigenClamp = EigenClamp.NVLABS_MINPOS
    damp: float = 1e-6  # Cholesky path only

    @property
    def label(self) -> str:
        return "none" if self.method is Compensation.NONE else f"{self.method.value}{self.rank}"


@functools.partial(jax.jit, static_argnames=("config",))
def _block_stats(config, bw, h):
    y, inputs = block_apply(config, bw, h, return_inputs=True)
    grams = {k: v.reshape(-1, v.shape[-1]).T @ v.reshape(-1, v.shape[-1]) for k, v in inputs.items()}
    return y, grams


@functools.partial(jax.jit, static_argnames=("config",))
def _block_out(config, bw, h):
    return block_apply(config, bw, h)


@functools.partial(jax.jit, static_argnames=("spec",))
def _compress(w, cov, spec):
    return compress_weight(w, cov, spec)


def _cdt():
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


@functools.partial(jax.jit, static_argnames=("form", "clamp"))
def _root(cov, form, clamp):
    """What eora_factors derives from the covariance, computed once per input shared by several linears."""
    cov = cov.astype(_cdt())
    return (covariance_root(cov),) if form is EoraForm.PROJECTION else eigen_sqrt(cov, clamp=clamp)


@functools.partial(jax.jit, static_argnames=("rank",))
def _eora(w, w_c, root, rank):
    """eora_factors(W − W_c, S, rank, form, clamp) from _root(S, form, clamp)."""
    if len(root) == 1:
        return eora_factors_from_root(w - w_c, root[0], rank)
    return eora_factors_from_sqrt(w - w_c, *root, rank)


@functools.partial(jax.jit, static_argnames=("rank", "damp"))
def _eora_chol(w, w_c, cov, rank, damp):
    return eora_factors_cholesky(w - w_c, cov, rank, damp=damp)


@functools.partial(jax.jit, static_argnames=("rank",))
def _svd(w, w_c, rank):
    return svd_factors(w - w_c, rank)


@jax.jit
def _errors(w, w_c, w_new, cov):
    def q(m):
        return jnp.sum((m @ cov) * m)

    ref = q(w)
    return jnp.sqrt(q(w - w_c) / ref), jnp.sqrt(q(w - w_new) / ref)


def _block(weights, i):
    return {k.split(".", 2)[2]: v for k, v in weights.items() if k.startswith(f"blocks.{i}.")}


def _calib_states(model, calib_tokens, batch_size):
    tokens = np.asarray(calib_tokens)
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"calib_tokens must be a 2-D integer array (n, l), got {tokens.shape} {tokens.dtype}")
    chunks = [tokens[i:i + batch_size] for i in range(0, len(tokens), batch_size)]
    return [model.embed_tokens(jnp.asarray(c)) for c in chunks], float(tokens.size)


def _covariances(cfg, bw, hs, n_tok):
    grams = None
    for h in hs:
        _, g = _block_stats(cfg, bw, h)
        grams = g if grams is None else {k: grams[k] + g[k] for k in g}
    return {k: v / n_tok for k, v in grams.items()}


def compress_model(model: LlamaModel, calib_tokens, compression: CompressionSpec, *, batch_size: int = 8):
    """Sequential compression pass. Returns ``(compressed, report)``: ``{"blocks.i.name": W_c}`` and per-linear
    ``{layer, name, rel_err}`` with ``rel_err = ‖(W − W_c) Xᵀ‖_F / ‖W Xᵀ‖_F`` on that layer's calibration inputs."""
    cfg: LlamaConfig = model.config
    weights = llama_weights(model)
    hs, n_tok = _calib_states(model, calib_tokens, batch_size)
    compressed, report = {}, []
    for i in range(cfg.num_layers):
        new_bw, rep = compress_block(cfg, _block(weights, i), hs, n_tok, compression, layer=i)
        report += rep
        compressed.update({f"blocks.{i}.{name}": new_bw[name] for name in LINEAR_NAMES})
        hs = [_block_out(cfg, new_bw, h) for h in hs]
    return compressed, report


def compress_block(cfg: LlamaConfig, bw: dict, hs, n_tok: float, compression: CompressionSpec, *, layer: int = 0):
    """One block of :func:`compress_model`: covariances of every linear's input on the hidden states ``hs`` (a list of
    ``(b, l, d)`` chunks, host or device), each linear compressed with :func:`compress_weight`.

    Returns:
      ``(new_bw, report)``: the block's weights with every linear replaced by ``W_c``, and per-linear
      ``{layer, name, rel_err}``.
    """
    covs = _covariances(cfg, bw, hs, n_tok)
    new_bw, report = dict(bw), []
    for name in LINEAR_NAMES:
        w, cov = bw[name], covs[LINEAR_INPUTS[name]]
        w_c = _compress(w, cov, compression)
        e, _ = _errors(w, w_c, w_c, cov)
        report.append({"layer": layer, "name": name, "rel_err": float(e)})
        new_bw[name] = w_c
    return new_bw, report


def compensate_model(
    model: LlamaModel,
    compressed: dict,
    calib_tokens=None,
    compensation: CompensationSpec = CompensationSpec(),
    *,
    batch_size: int = 8,
):
    """Sequential compensation pass (NVlabs ``llama_sequential_eigen``; ``SVD``: ``llama_sequential_svd``).

    Args:
      model: the uncompressed model (not modified).
      compressed: ``{"blocks.i.name": W_c}`` from :func:`compress_model` (names missing here stay uncompressed).
      calib_tokens: ``(n, l)`` int passages (not needed for ``NONE`` / ``SVD``).
      compensation: :class:`CompensationSpec`; its rank is capped at ``min(d_out, d_in)`` per layer (that rank
        recovers ``W`` exactly when the covariance is nonsingular).
      batch_size: passages per forward chunk.

    Returns:
      ``(new_model, factors, report)``: model with ``W_c + B A`` merged, ``{"blocks.i.name": (B, A)}``, and per-linear
      ``{layer, name, rel_err_compressed, rel_err_compensated}`` (empty for ``NONE`` / ``SVD``).
    """
    cfg: LlamaConfig = model.config
    weights = dict(llama_weights(model))
    method, rank = compensation.method, compensation.rank
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"compensation rank must be a Python int >= 1, got {rank!r}")
    factors, report = {}, []
    if method in (Compensation.NONE, Compensation.SVD):
        for key, w_c in compressed.items():
            if method is Compensation.SVD:
                b, a = _svd(weights[key], w_c, min(rank, *w_c.shape))
                factors[key] = (b, a)
                w_c = w_c + b @ a
            weights[key] = w_c
        return llama_from_weights(cfg, weights), factors, report
    if calib_tokens is None:
        raise ValueError(f"{method} needs calib_tokens")
    hs, n_tok = _calib_states(model, calib_tokens, batch_size)
    for i in range(cfg.num_layers):
        comp = {name: compressed[f"blocks.{i}.{name}"] for name in LINEAR_NAMES if f"blocks.{i}.{name}" in compressed}
        new_bw, f, rep = compensate_block(cfg, _block(weights, i), comp, hs, n_tok, compensation, layer=i)
        report += rep
        factors.update({f"blocks.{i}.{name}": ba for name, ba in f.items()})
        for k, v in new_bw.items():
            weights[f"blocks.{i}.{k}"] = v
        hs = [_block_out(cfg, new_bw, h) for h in hs]
    return llama_from_weights(cfg, weights), factors, report


def compensate_block(cfg: LlamaConfig, bw: dict, compressed: dict, hs, n_tok: float, compensation: CompensationSpec,
                     *, layer: int = 0):
    """One block of :func:`compensate_model` (``EORA`` / ``EORA_CHOLESKY``): covariances of the *original* block's
    linear inputs on ``hs`` (all linears hooked at once, as NVlabs ``llama_sequential_eigen``), then ``(B, A)`` for
    every linear named in ``compressed`` (``{name: W_c}``; q/k/v and gate/up share one covariance root).

    Returns:
      ``(new_bw, factors, report)``: weights with ``W_c + B A`` merged (uncompressed linears unchanged),
      ``{name: (B, A)}``, per-linear ``{layer, name, rel_err_compressed, rel_err_compensated}``.
    """
    method, rank = compensation.method, compensation.rank
    covs = _covariances(cfg, bw, hs, n_tok)
    roots, factors, report = {}, {}, []
    new_bw = dict(bw)
    for name in LINEAR_NAMES:
        if name not in compressed:
            continue
        src = LINEAR_INPUTS[name]
        w, w_c, cov = bw[name], compressed[name], covs[src]
        r = min(rank, *w.shape)
        if method is Compensation.EORA:
            if src not in roots:
                roots[src] = _root(cov, compensation.form, compensation.clamp)
            b, a = _eora(w, w_c, roots[src], r)
        else:
            b, a = _eora_chol(w, w_c, cov, r, compensation.damp)
        factors[name] = (b, a)
        w_new = w_c + b @ a
        e0, e1 = _errors(w, w_c, w_new, cov)
        report.append({"layer": layer, "name": name, "rel_err_compressed": float(e0),
                       "rel_err_compensated": float(e1)})
        new_bw[name] = w_new
    return new_bw, factors, report


def input_covariances(model: LlamaModel, tokens, *, batch_size: int = 8) -> dict:
    """Input covariance ``XᵀX / n`` of every linear of the *uncompressed* ``model`` on ``tokens`` ``(n, l)``.

    Returns ``{"blocks.i.<input>": S}`` with ``<input>`` one of ``attn_in``, ``o_in``, ``mlp_in``, ``down_in``
    (:data:`eigenkit.nn.LINEAR_INPUTS`); one forward pass, float32 accumulation (for SmolLM2-135M: 30 x 4 matrices,
    about 400 MB)."""
    cfg: LlamaConfig = model.config
    weights = llama_weights(model)
    hs, n_tok = _calib_states(model, tokens, batch_size)
    out = {}
    for i in range(cfg.num_layers):
        bw = _block(weights, i)
        out.update({f"blocks.{i}.{k}": v for k, v in _covariances(cfg, bw, hs, n_tok).items()})
        hs = [_block_out(cfg, bw, h) for h in hs]
    return out


@jax.jit
def _rel_errors(w, w_new, cov):
    """Batched over the leading (layer) axis: ``sqrt(tr(E S Eᵀ) / tr(W S Wᵀ))``, ``E = W − Ŵ``."""

    def one(w, wn, c):
        def q(m):
            return jnp.sum((m @ c) * m)

        return jnp.sqrt(q(w - wn) / q(w))

    return jax.vmap(one)(w, w_new, cov)


def layer_errors(model: LlamaModel, new_weights: dict, covs: dict) -> list[dict]:
    """Per-linear relative output error ``sqrt(tr(E S Eᵀ) / tr(W S Wᵀ))``, ``E = W − Ŵ``, for the weights listed in
    ``new_weights`` (``{"blocks.i.name": Ŵ}``, e.g. ``W_c`` or ``W_c + B A``) against ``model``'s ``W``, with ``S``
    from :func:`input_covariances` (the uncompressed model's inputs, so every method is measured on the same ``X``).

    Returns a list of ``{layer, name, rel_err}`` in layer order (one batched computation per linear name)."""
    weights = llama_weights(model)
    by_name: dict[str, list[tuple[int, str]]] = {}
    for key in new_weights:
        _, i, name = key.split(".")
        src = f"blocks.{i}.{LINEAR_INPUTS[name]}"
        if src not in covs:
            raise ValueError(f"covs has no entry {src} for {key}: pass the dict from input_covariances(model, tokens)")
        by_name.setdefault(name, []).append((int(i), key))
    report = []
    for name, items in by_name.items():
        keys = [k for _, k in items]
        errs = _rel_errors(jnp.stack([weights[k] for k in keys]), jnp.stack([new_weights[k] for k in keys]),
                           jnp.stack([covs[f"blocks.{i}.{LINEAR_INPUTS[name]}"] for i, _ in items]))
        report += [{"layer": i, "name": name, "rel_err": float(e)} for (i, _), e in zip(items, np.asarray(errs),
                                                                                       strict=True)]
    return sorted(report, key=lambda r: (r["layer"], LINEAR_NAMES.index(r["name"])))


def compensated_weights(compressed: dict, factors: dict | None = None) -> dict:
    """``{"blocks.i.name": W_c + B A}`` (``W_c`` where ``factors`` has no entry)."""
    factors = factors or {}
    return {k: (w_c + factors[k][0] @ factors[k][1]) if k in factors else w_c for k, w_c in compressed.items()}


def compress_and_compensate(
    model: LlamaModel,
    calib_tokens,
    compression: CompressionSpec,
    compensation: CompensationSpec = CompensationSpec(),
    *,
    batch_size: int = 8,
):
    """:func:`compress_model` then :func:`compensate_model` on the same calibration passages.

    Returns:
      ``(new_model, factors, report)`` as :func:`compensate_model` (for ``NONE``/``SVD`` the report is the
      compression report).
    """
    compressed, creport = compress_model(model, calib_tokens, compression, batch_size=batch_size)
    new_model, factors, report = compensate_model(model, compressed, calib_tokens, compensation,
                                                  batch_size=batch_size)
    return new_model, factors, report or creport


def truncate_factors(factors: dict, rank: int) -> dict:
    """Rank-``r`` prefix of SVD factors (truncated SVD factors are nested: ``B[:, :r]``, ``A[:r]``). Not valid for
    sequential EoRA factors, whose later layers depend on the rank used earlier."""
    return {k: (b[:, :rank], a[:rank]) for k, (b, a) in factors.items()}


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _nll(graphdef, state, tokens):
    from flax import nnx

    return next_token_nll(nnx.merge(graphdef, state)(tokens), tokens)


def perplexity(model: LlamaModel, tokens, *, batch_size: int = 8) -> float:
    """``exp(mean next-token NLL)`` over ``(n, l)`` passages (each scored independently)."""
    from flax import nnx

    graphdef, state = nnx.split(model)
    tokens = np.asarray(tokens)
    tot, cnt = 0.0, 0
    for i in range(0, len(tokens), batch_size):
        nll = np.asarray(_nll(graphdef, state, jnp.asarray(tokens[i:i + batch_size])), np.float64)
        tot += nll.sum()
        cnt += nll.size
    return float(np.exp(tot / cnt))


__all__ = [
    "Compensation",
    "CompensationSpec",
    "compensate_block",
    "compress_block",
    "compensate_model",
    "compress_and_compensate",
    "compress_model",
    "compensated_weights",
    "input_covariances",
    "layer_errors",
    "perplexity",
    "truncate_factors",
]


def apply_factors(model: LlamaModel, compressed: dict, factors: dict | None = None) -> LlamaModel:
    """A copy of ``model`` whose linears listed in ``compressed`` are ``W_c`` (+ ``B A`` where ``factors`` has them)."""
    return llama_from_weights(model.config, {**llama_weights(model), **compensated_weights(compressed, factors)})


__all__ += ["apply_factors"]
