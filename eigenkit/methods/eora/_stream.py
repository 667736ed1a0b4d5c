"""Block-streamed compression, compensation and perplexity: only one decoder block lives on the device at a time.

The same passes as :func:`eigenkit.methods.eora.compress_model` / :func:`compensate_model` / :func:`perplexity`, for
checkpoints too large to hold whole (LLaMA-3-8B: 32 blocks of 0.87 GB in float32). The model comes from a
*block source* — any object with ``config`` (:class:`eigenkit.nn.LlamaConfig`), ``embed_tokens(tokens) -> (b, l, d)``
NumPy, ``block(i) -> {attn_norm, q, k, v, o, mlp_norm, gate, up, down}`` and ``head() -> {norm, lm_head}``
(:class:`eigenkit.data.HFLlamaCheckpoint` reads these lazily from safetensors shards; :class:`ModelSource` wraps an
in-memory :class:`eigenkit.nn.LlamaModel`). Per block ``i``:

1. load block ``i`` to the device;
2. compute every linear's input covariance on the current hidden states of all calibration sequences (kept on the
   host by default, :class:`StatePlacement`; moved to the device one ``batch_size`` chunk at a time);
3. compress (:func:`compress_block`) or compensate (:func:`compensate_block`) — the very functions the whole-model
   driver runs, so the results are the same: compression feeds the next block with the *compressed* block's outputs,
   EoRA with the *compensated* block's outputs (NVlabs ``llama_sequential_gptq`` / ``llama_sequential_eigen``);
4. write the new weights of block ``i`` to a :class:`BlockStore` (one ``.npz`` per block, float32), run the block
   on every chunk in place, free it.

:func:`stream_perplexity` streams the evaluation the same way (NVlabs ``llama_eval``), with ``W_c`` and
``W_c + B A`` rebuilt per block from the stores. :class:`DeviceMemory` samples the bytes of live JAX arrays (and,
where the backend reports it, the allocator's peak) so the bound "one block + one chunk of activations" is measured,
not assumed.
"""

from __future__ import annotations

import enum
import functools
import json
import pathlib
import shutil
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit.methods.eora._compress import CompressionSpec
from eigenkit.methods.eora._driver import (
    Compensation,
    CompensationSpec,
    _block_out,
    _svd,
    compensate_block,
    compress_block,
)
from eigenkit.nn import LINEAR_NAMES, LlamaConfig, llama_weights, next_token_nll

__all__ = [
    "BlockStore",
    "DeviceMemory",
    "ModelSource",
    "StatePlacement",
    "block_weights",
    "stream_compensate",
    "stream_compress",
    "stream_perplexity",
]


class StatePlacement(enum.Enum):
    """Where the calibration / evaluation hidden states of all sequences live between blocks."""

    HOST = "host"  # NumPy float32; device holds one chunk at a time
    DEVICE = "device"  # JAX arrays (faster; all n·l·d·4 bytes on the device)


class ModelSource:
    """Block source over an in-memory :class:`eigenkit.nn.LlamaModel` (for tests and small models)."""

    def __init__(self, model):
        self.config: LlamaConfig = model.config
        self._w = {k: np.asarray(v) for k, v in llama_weights(model).items()}

    def embed_tokens(self, tokens):
        return self._w["embed"][np.asarray(tokens)]

    def block(self, i: int) -> dict:
        return {k.split(".", 2)[2]: v for k, v in self._w.items() if k.startswith(f"blocks.{i}.")}

    def head(self) -> dict:
        return {"norm": self._w["norm"], "lm_head": self._w["embed" if self.config.tie_embeddings else "lm_head"]}


class BlockStore:
    """A directory of per-block weights: ``block-{i:05d}.npz`` (float32) and ``meta.json``, written when a pass
    completes (a store without it is incomplete and is rewritten by the next pass).

    Compressed weights are stored under the linear names (``q``, ..., ``down``: ``W_c``, ``(d_out, d_in)``); factors
    as ``{name}.B`` ``(d_out, r)`` and ``{name}.A`` ``(r, d_in)`` (NVlabs ``lora_B`` / ``lora_A`` of
    ``model.layers.{i}.{self_attn|mlp}.{name}_proj``)."""

    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)

    def _file(self, i: int) -> pathlib.Path:
        return self.path / f"block-{i:05d}.npz"

    @property
    def meta(self) -> dict | None:
        m = self.path / "meta.json"
        return json.loads(m.read_text()) if m.exists() else None

    def complete(self, key: str | None = None) -> bool:
        m = self.meta
        return m is not None and (key is None or m.get("key") == key)

    def start(self) -> None:
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)

    def write(self, i: int, arrays: dict) -> None:
        tmp = self.path / f"block-{i:05d}.tmp.npz"
        np.savez(tmp, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
        tmp.replace(self._file(i))

    def read(self, i: int) -> dict[str, np.ndarray]:
        if not self._file(i).exists():
            raise FileNotFoundError(f"{self._file(i)} missing: the store {self.path} was not written by a complete "
                                    "pass")
        with np.load(self._file(i)) as f:
            return {k: f[k] for k in f.files}

    def finish(self, **meta) -> None:
        (self.path / "meta.json").write_text(json.dumps(meta, indent=1, default=str))

    def nbytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.glob("block-*.npz"))


class DeviceMemory:
    """Samples of device memory during a streamed pass.

    ``sample(tag)`` records the bytes of all live JAX arrays (``jax.live_arrays()``) minus those alive when the
    monitor was made, and the allocator peak (``device.memory_stats()["peak_bytes_in_use"]``) where the backend
    reports one (GPU/TPU; ``None`` on CPU). ``peak`` is the largest sample; ``per_block`` the largest per block."""

    def __init__(self):
        self.baseline = self._live()
        self.samples: list[tuple[str, int]] = []
        self.per_block: dict[int, int] = {}
        self.host_state_bytes = 0

    @staticmethod
    def _live() -> int:
        return sum(a.nbytes for a in jax.live_arrays() if not a.is_deleted())

    def sample(self, tag: str, block: int | None = None) -> int:
        b = self._live() - self.baseline
        self.samples.append((tag, b))
        if block is not None:
            self.per_block[block] = max(self.per_block.get(block, 0), b)
        return b

    @property
    def peak(self) -> int:
        return max((b for _, b in self.samples), default=0)

    @property
    def allocator_peak(self) -> int | None:
        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")

    def summary(self) -> dict:
        return {"peak_live_bytes": self.peak, "allocator_peak_bytes": self.allocator_peak,
                "host_state_bytes": self.host_state_bytes, "samples": len(self.samples)}


def _check_tokens(tokens, name):
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"{name} must be a 2-D integer array (n, l), got {tokens.shape} {tokens.dtype}")
    return tokens


def _states(source, tokens, batch_size, placement, memory):
    chunks = [tokens[i:i + batch_size] for i in range(0, len(tokens), batch_size)]
    hs = [np.asarray(source.embed_tokens(c), np.float32) for c in chunks]
    if placement is StatePlacement.DEVICE:
        hs = [jnp.asarray(h) for h in hs]
    elif placement is not StatePlacement.HOST:
        raise TypeError(f"placement must be a StatePlacement, got {placement!r}")
    if memory is not None:
        memory.host_state_bytes = sum(h.nbytes for h in hs) if placement is StatePlacement.HOST else 0
    return hs


def _advance(cfg, bw, hs, placement, memory, i):
    """Run block ``bw`` on every chunk, replacing it in place (old chunk freed as the new one is made)."""
    for j, h in enumerate(hs):
        out = _block_out(cfg, bw, h)
        hs[j] = np.asarray(out) if placement is StatePlacement.HOST else out
        if memory is not None:
            memory.sample("block_out", i)
        del out


def _tick(progress, what, i, n, t0):
    if progress is not None:
        progress(f"{what}: block {i + 1}/{n} ({time.perf_counter() - t0:.1f} s elapsed)")


def _device(block: dict) -> dict:
    return {k: jnp.asarray(v, jnp.float32) for k, v in block.items()}


def stream_compress(source, calib_tokens, compression: CompressionSpec, store: BlockStore, *, batch_size: int = 8,
                    placement: StatePlacement = StatePlacement.HOST, memory: DeviceMemory | None = None,
                    key: str = "", progress: Callable[[str], None] | None = None) -> list[dict]:
    """Streamed :func:`eigenkit.methods.eora.compress_model`: writes every block's ``W_c`` to ``store``.

    Args:
      source: block source (see module docstring).
      calib_tokens: ``(n, l)`` int calibration passages.
      compression: :class:`CompressionSpec`.
      store: output :class:`BlockStore` (emptied first; marked complete with ``key`` at the end).
      batch_size: passages per forward chunk (the same chunking gives the same covariances as the whole-model pass).
      placement: :class:`StatePlacement` of the hidden states between blocks.
      memory: optional :class:`DeviceMemory` to sample.
      key: identifies the inputs (e.g. a config hash), stored in ``meta.json``.
      progress: optional callback, called after each block with a line such as
        ``"compress: block 3/32 (41.2 s elapsed)"``.

    Returns:
      Per-linear ``{layer, name, rel_err}`` as :func:`compress_model`.
    """
    cfg = source.config
    t0 = time.perf_counter()
    tokens = _check_tokens(calib_tokens, "calib_tokens")
    hs = _states(source, tokens, batch_size, placement, memory)
    n_tok = float(tokens.size)
    store.start()
    report = []
    for i in range(cfg.num_layers):
        bw = _device(source.block(i))
        if memory is not None:
            memory.sample("block_loaded", i)
        new_bw, rep = compress_block(cfg, bw, hs, n_tok, compression, layer=i)
        report += rep
        if memory is not None:
            memory.sample("compressed", i)
        store.write(i, {n: new_bw[n] for n in LINEAR_NAMES})
        del bw
        _advance(cfg, new_bw, hs, placement, memory, i)
        del new_bw
        _tick(progress, "compress", i, cfg.num_layers, t0)
    store.finish(key=key, kind="compressed", compression=compression.label, num_layers=cfg.num_layers)
    return report


def stream_compensate(source, compressed: BlockStore, calib_tokens, compensation: CompensationSpec,
                      store: BlockStore, *, batch_size: int = 8, placement: StatePlacement = StatePlacement.HOST,
                      memory: DeviceMemory | None = None, key: str = "",
                      progress: Callable[[str], None] | None = None) -> list[dict]:
    """Streamed :func:`eigenkit.methods.eora.compensate_model`: writes every block's ``(B, A)`` to ``store``.

    ``SVD`` needs no calibration (``calib_tokens`` may be ``None``; no forward pass); ``EORA`` / ``EORA_CHOLESKY``
    run the sequential pass (block ``i`` sees the outputs of the compensated blocks ``0..i−1``). Other arguments as
    :func:`stream_compress`.

    Returns:
      Per-linear ``{layer, name, rel_err_compressed, rel_err_compensated}`` (empty for ``SVD``).

    Raises:
      ValueError: ``NONE`` (nothing to store), a bad rank, or missing ``calib_tokens`` for EoRA.
    """
    cfg = source.config
    t0 = time.perf_counter()
    method, rank = compensation.method, compensation.rank
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"compensation rank must be a Python int >= 1, got {rank!r}")
    if method is Compensation.NONE:
        raise ValueError("Compensation.NONE has no factors to stream: evaluate the compressed store directly")
    if not compressed.complete():
        raise ValueError(f"compressed store {compressed.path} is incomplete: run stream_compress first")
    report = []
    store.start()
    if method is Compensation.SVD:
        for i in range(cfg.num_layers):
            bw, comp = source.block(i), compressed.read(i)
            out = {}
            for name, w_c in comp.items():
                b, a = _svd(jnp.asarray(bw[name], jnp.float32), jnp.asarray(w_c), min(rank, *w_c.shape))
                out[f"{name}.B"], out[f"{name}.A"] = b, a
            if memory is not None:
                memory.sample("svd", i)
            store.write(i, out)
            _tick(progress, compensation.label, i, cfg.num_layers, t0)
        store.finish(key=key, kind="factors", compensation=compensation.label, num_layers=cfg.num_layers)
        return report
    if calib_tokens is None:
        raise ValueError(f"{method} needs calib_tokens")
    tokens = _check_tokens(calib_tokens, "calib_tokens")
    hs = _states(source, tokens, batch_size, placement, memory)
    n_tok = float(tokens.size)
    for i in range(cfg.num_layers):
        bw = _device(source.block(i))
        comp = _device(compressed.read(i))
        if memory is not None:
            memory.sample("block_loaded", i)
        new_bw, factors, rep = compensate_block(cfg, bw, comp, hs, n_tok, compensation, layer=i)
        report += rep
        if memory is not None:
            memory.sample("compensated", i)
        store.write(i, {f"{n}.{ab}": f for n, (b, a) in factors.items() for ab, f in (("B", b), ("A", a))})
        del bw, comp, factors
        _advance(cfg, new_bw, hs, placement, memory, i)
        del new_bw
        _tick(progress, compensation.label, i, cfg.num_layers, t0)
    store.finish(key=key, kind="factors", compensation=compensation.label, num_layers=cfg.num_layers)
    return report


def block_weights(source, i: int, compressed: BlockStore | None = None, factors: BlockStore | None = None) -> dict:
    """Block ``i`` as evaluated: original weights, ``W_c`` from ``compressed``, ``W_c + B A`` where ``factors`` has
    ``(B, A)`` (on the device, float32; the same arithmetic as :func:`eigenkit.methods.eora.compensated_weights`)."""
    bw = _device(source.block(i))
    if compressed is not None:
        bw.update(_device(compressed.read(i)))
    if factors is not None:
        f = _device(factors.read(i))
        for name in LINEAR_NAMES:
            if f"{name}.B" in f:
                bw[name] = bw[name] + f[f"{name}.B"] @ f[f"{name}.A"]
    return bw


@functools.partial(jax.jit, static_argnames=("eps",))
def _head_nll(norm_w, lm_head, h, tokens, eps):
    """Final RMSNorm (:class:`eigenkit.nn.RMSNorm`'s formula), output projection, next-token NLL."""
    ms = jnp.mean(jnp.square(h), axis=-1, keepdims=True)
    return next_token_nll((h * jax.lax.rsqrt(ms + eps) * norm_w) @ lm_head.T, tokens)


def stream_perplexity(source, tokens, *, compressed: BlockStore | None = None, factors: BlockStore | None = None,
                      batch_size: int = 8, placement: StatePlacement = StatePlacement.HOST,
                      memory: DeviceMemory | None = None, progress: Callable[[str], None] | None = None) -> float:
    """``exp(mean next-token NLL)`` over ``(n, l)`` passages (each scored independently, as
    :func:`eigenkit.methods.eora.perplexity` and NVlabs ``llama_eval``), streamed block by block.

    Args:
      source: block source.
      tokens: ``(n, l)`` int passages (e.g. :func:`eigenkit.data.token_windows` of the WikiText-2 test text).
      compressed: optional store of ``W_c`` (the compressed model); ``factors``: optional store of ``(B, A)``
        (needs ``compressed``).
      batch_size, placement, memory, progress: as :func:`stream_compress`.
    """
    cfg = source.config
    t0 = time.perf_counter()
    tokens = _check_tokens(tokens, "tokens")
    if factors is not None and compressed is None:
        raise ValueError("factors need the compressed store they compensate")
    hs = _states(source, tokens, batch_size, placement, memory)
    for i in range(cfg.num_layers):
        bw = block_weights(source, i, compressed, factors)
        if memory is not None:
            memory.sample("block_loaded", i)
        _advance(cfg, bw, hs, placement, memory, i)
        del bw
        _tick(progress, "perplexity", i, cfg.num_layers, t0)
    head = source.head()
    norm_w, lm_head = jnp.asarray(head["norm"], jnp.float32), jnp.asarray(head["lm_head"], jnp.float32)
    tot, cnt = 0.0, 0
    for j, h in enumerate(hs):
        toks = jnp.asarray(tokens[j * batch_size:(j + 1) * batch_size])
        nll = np.asarray(_head_nll(norm_w, lm_head, jnp.asarray(h), toks, cfg.norm_eps), np.float64)
        tot += nll.sum()
        cnt += nll.size
        if memory is not None:
            memory.sample("head", cfg.num_layers)
    return float(np.exp(tot / cnt))
