"""LLaMA-family checkpoints in the Hugging Face layout (LLaMA-2-7B, LLaMA-3-8B, ...), read lazily and offline.

A checkpoint directory holds ``config.json``, ``tokenizer.json`` and either one ``model.safetensors`` or shards listed
in ``model.safetensors.index.json`` (``{"weight_map": {tensor name: shard file}}``). Nothing here reads a whole shard:
each shard's header is parsed once (an 8-byte little-endian length, then a JSON ``{name: {dtype, shape,
data_offsets}}``) and a tensor is a ``np.memmap`` of its byte range, decoded to float32 when asked for (BF16 by a
16-bit shift into the float32 high half; F16 and F32 as NumPy types). The embedding is gathered row by row, so a
128k-token vocabulary is never decoded whole to embed a batch.

Weight names are mapped to the generic names of :func:`eigenkit.nn.llama_from_weights`::

    model.embed_tokens.weight                       -> embed          (vocab, dim)
    model.layers.{i}.input_layernorm.weight         -> blocks.{i}.attn_norm
    model.layers.{i}.self_attn.{q,k,v,o}_proj.weight -> blocks.{i}.{q,k,v,o}   (d_out, d_in)
    model.layers.{i}.post_attention_layernorm.weight -> blocks.{i}.mlp_norm
    model.layers.{i}.mlp.{gate,up,down}_proj.weight -> blocks.{i}.{gate,up,down}
    model.norm.weight                               -> norm
    lm_head.weight                                  -> lm_head        (untied: LLaMA-2 / LLaMA-3)

Hugging Face q/k weights are in the *half* RoPE layout (``rotate_half``: pairs ``(x_i, x_{i+d/2})``), so the config
uses :attr:`eigenkit.nn.RopeLayout.HALF`; LLaMA-3's grouped-query attention is ``num_key_value_heads < heads``.
"""

from __future__ import annotations

import json
import pathlib
import struct

import numpy as np

from eigenkit.data._common import MissingDataError

__all__ = [
    "HFLlamaCheckpoint",
    "SafetensorsReader",
    "decode_bf16",
    "encode_bf16",
    "hf_llama_config",
    "llama_config_from_dict",
    "llama_generic_name",
    "hf_llama_shapes",
    "hf_llama_tokenizer",
    "write_hf_llama",
    "write_safetensors",
]

_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32, "BF16": np.uint16}
_CODES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64",
          np.dtype(np.int64): "I64", np.dtype(np.int32): "I32"}
_BLOCK = {"input_layernorm": "attn_norm", "self_attn.q_proj": "q", "self_attn.k_proj": "k", "self_attn.v_proj": "v",
          "self_attn.o_proj": "o", "post_attention_layernorm": "mlp_norm", "mlp.gate_proj": "gate",
          "mlp.up_proj": "up", "mlp.down_proj": "down"}


def decode_bf16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (``uint16``) -> float32 (exact: bf16 is the high half of a float32)."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def encode_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (``uint16``), round to nearest even (NaN stays NaN)."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    rounded = ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), rounded)


def _header(path: pathlib.Path) -> tuple[dict, int]:
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path} is not a safetensors file (shorter than its 8-byte header length)")
        (n,) = struct.unpack("<Q", head)
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


class SafetensorsReader:
    """Lazy reader of one ``.safetensors`` file, a sharded checkpoint (``*.safetensors.index.json``) or a directory
    holding either.

    Example:
      >>> r = SafetensorsReader("/path/to/Meta-Llama-3-8B")  # doctest: +SKIP
      >>> r.get("model.norm.weight").shape  # doctest: +SKIP
      (4096,)

    Raises:
      MissingDataError: no ``model.safetensors`` / index in a directory, or a listed shard is missing.
    """

    def __init__(self, path: str | pathlib.Path):
        p = pathlib.Path(path)
        if p.is_dir():
            idx, single = p / "model.safetensors.index.json", p / "model.safetensors"
            if idx.exists():
                p = idx
            elif single.exists():
                p = single
            else:
                raise MissingDataError(f"{p} has neither model.safetensors nor model.safetensors.index.json: pass a "
                                       "Hugging Face checkpoint directory (e.g. a local copy of "
                                       "meta-llama/Meta-Llama-3-8B)")
        if not p.exists():
            raise MissingDataError(f"{p} not found")
        self._where: dict[str, tuple[pathlib.Path, dict, int]] = {}
        if p.name.endswith(".index.json"):
            shards = sorted(set(json.loads(p.read_text())["weight_map"].values()))
            files = [p.parent / s for s in shards]
        else:
            files = [p]
        for f in files:
            if not f.exists():
                raise MissingDataError(f"shard {f} listed in {p} is missing")
            header, base = _header(f)
            for name, meta in header.items():
                self._where[name] = (f, meta, base)

    def names(self) -> list[str]:
        return sorted(self._where)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._meta(name)[1]["shape"])

    def nbytes(self, name: str) -> int:
        lo, hi = self._meta(name)[1]["data_offsets"]
        return hi - lo

    def _meta(self, name):
        if name not in self._where:
            raise KeyError(f"tensor {name!r} is not in the checkpoint ({len(self._where)} tensors)")
        return self._where[name]

    def raw(self, name: str) -> np.ndarray:
        """The stored array as a read-only memmap (BF16 as ``uint16`` bit patterns)."""
        f, meta, base = self._meta(name)
        code = meta["dtype"]
        if code not in _NP:
            raise ValueError(f"tensor {name}: unsupported dtype {code} (supported: {sorted(_NP)})")
        lo, hi = meta["data_offsets"]
        dt = np.dtype(_NP[code]).newbyteorder("<")
        shape = tuple(meta["shape"])
        if hi - lo != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise ValueError(f"tensor {name}: {hi - lo} bytes do not hold shape {shape} of {code}")
        if hi == lo:
            return np.zeros(shape, dt)
        return np.memmap(f, dtype=dt, mode="r", offset=base + lo, shape=shape)

    def _decode(self, name: str, arr: np.ndarray) -> np.ndarray:
        if self._meta(name)[1]["dtype"] == "BF16":
            return decode_bf16(arr)
        return np.asarray(arr).astype(np.float32) if arr.dtype.kind == "f" else np.array(arr)

    def get(self, name: str) -> np.ndarray:
        """The tensor decoded to a float32 array in memory (integer tensors keep their dtype)."""
        return self._decode(name, self.raw(name))

    def rows(self, name: str, index: np.ndarray) -> np.ndarray:
        """``tensor[index]`` decoded (only those rows are read), e.g. embedding lookups."""
        return self._decode(name, self.raw(name)[np.asarray(index)])


def write_safetensors(path: str | pathlib.Path, tensors: dict[str, np.ndarray], *, bf16: bool = False,
                      metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` as one ``.safetensors`` file (float arrays as BF16 when ``bf16``, else their own dtype).

    Raises:
      ValueError: an unsupported dtype (names the tensor).
    """
    header: dict = {"__metadata__": dict(metadata or {})} if metadata else {}
    blobs, off = [], 0
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        if bf16 and arr.dtype.kind == "f":
            code, data = "BF16", encode_bf16(arr.astype(np.float32))
        elif arr.dtype in _CODES:
            code, data = _CODES[arr.dtype], arr
        else:
            raise ValueError(f"tensor {name}: unsupported dtype {arr.dtype} (supported: {sorted(map(str, _CODES))})")
        b = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def hf_llama_config(path: str | pathlib.Path):
    """:class:`eigenkit.nn.LlamaConfig` from a Hugging Face ``config.json`` (or the directory holding it).

    Reads ``hidden_size``, ``intermediate_size``, ``num_attention_heads``, ``num_key_value_heads`` (default: the
    number of heads), ``rms_norm_eps``, ``rope_theta`` (default 10000), ``vocab_size``, ``tie_word_embeddings``
    (default False), ``num_hidden_layers``; RoPE layout ``HALF``.

    Raises:
      MissingDataError: no ``config.json``.
      ValueError: a feature the port does not implement (``rope_scaling`` — e.g. LLaMA-3.1's ``llama3`` scaling —,
        attention/MLP biases, an activation other than SiLU, a ``head_dim`` other than ``hidden_size / heads``,
        a ``model_type`` other than ``llama``), naming the field.
    """
    p = pathlib.Path(path)
    p = p / "config.json" if p.is_dir() else p
    if not p.exists():
        raise MissingDataError(f"{p} not found: pass a Hugging Face LLaMA checkpoint directory with config.json")
    return llama_config_from_dict(json.loads(p.read_text()), where=str(p))


def llama_config_from_dict(c: dict, *, where: str = "config"):
    """:class:`eigenkit.nn.LlamaConfig` from a parsed LLaMA ``config.json`` dict (the checks of
    :func:`hf_llama_config`; ``where`` names the source in error messages)."""
    from eigenkit.nn import LlamaConfig, RopeLayout

    p = where
    if c.get("model_type", "llama") != "llama":
        raise ValueError(f"{p}: model_type {c.get('model_type')!r} is not supported (only 'llama')")
    rp = c.get("rope_parameters")  # transformers >= 5 writes {"rope_theta": ..., "rope_type": ...} here
    if rp:
        if rp.get("rope_type", "default") != "default":
            raise ValueError(f"{p}: rope_parameters.rope_type {rp['rope_type']!r} is not implemented (plain RoPE only)")
        c = {**c, "rope_theta": rp.get("rope_theta", c.get("rope_theta", 10000.0))}
    if c.get("rope_scaling"):
        raise ValueError(f"{p}: rope_scaling {c['rope_scaling']!r} is not implemented (eigenkit.nn.rope has plain "
                         "RoPE only: LLaMA-2 and LLaMA-3(-8B) have rope_scaling null; LLaMA-3.1+ are not supported)")
    for key in ("attention_bias", "mlp_bias"):
        if c.get(key):
            raise ValueError(f"{p}: {key}=true is not supported (eigenkit.nn.LlamaBlock has bias-free linears)")
    if c.get("hidden_act", "silu") != "silu":
        raise ValueError(f"{p}: hidden_act {c['hidden_act']!r} is not supported (SwiGLU with SiLU only)")
    heads = int(c["num_attention_heads"])
    if c.get("head_dim") not in (None, c["hidden_size"] // heads):
        raise ValueError(f"{p}: head_dim {c['head_dim']} != hidden_size / num_attention_heads is not supported")
    return LlamaConfig(
        vocab_size=int(c["vocab_size"]), dim=int(c["hidden_size"]), num_layers=int(c["num_hidden_layers"]),
        num_heads=heads, num_kv_heads=int(c.get("num_key_value_heads") or heads),
        hidden_dim=int(c["intermediate_size"]), rope_theta=float(c.get("rope_theta", 10000.0)),
        norm_eps=float(c.get("rms_norm_eps", 1e-6)), tie_embeddings=bool(c.get("tie_word_embeddings", False)),
        rope_layout=RopeLayout.HALF)


def hf_llama_shapes(config) -> dict[str, tuple[int, ...]]:
    """``{Hugging Face tensor name: shape}`` of a LLaMA checkpoint with :class:`eigenkit.nn.LlamaConfig` ``config``.

    Example:
      >>> from eigenkit.nn import LlamaConfig
      >>> s = hf_llama_shapes(LlamaConfig(vocab_size=10, dim=8, num_layers=1, num_heads=2, num_kv_heads=1,
      ...                                 hidden_dim=12, tie_embeddings=False))
      >>> s["model.layers.0.self_attn.k_proj.weight"], s["lm_head.weight"]
      ((4, 8), (10, 8))
    """
    c = config
    hd = c.head_dim
    per = {"input_layernorm": (c.dim,), "self_attn.q_proj": (c.num_heads * hd, c.dim),
           "self_attn.k_proj": (c.num_kv_heads * hd, c.dim), "self_attn.v_proj": (c.num_kv_heads * hd, c.dim),
           "self_attn.o_proj": (c.dim, c.num_heads * hd), "post_attention_layernorm": (c.dim,),
           "mlp.gate_proj": (c.hidden_dim, c.dim), "mlp.up_proj": (c.hidden_dim, c.dim),
           "mlp.down_proj": (c.dim, c.hidden_dim)}
    out = {"model.embed_tokens.weight": (c.vocab_size, c.dim), "model.norm.weight": (c.dim,)}
    for i in range(c.num_layers):
        out.update({f"model.layers.{i}.{k}.weight": v for k, v in per.items()})
    if not c.tie_embeddings:
        out["lm_head.weight"] = (c.vocab_size, c.dim)
    return out


def checked_weight(weights: dict, key: str, shape: tuple[int, ...], where: str = "") -> np.ndarray:
    """``weights[key]`` as float32, checked to exist and to have ``shape`` (the writers' one validation)."""
    if key not in weights:
        raise ValueError(f"weights has no {key!r}{where}")
    arr = np.asarray(weights[key], np.float32)
    if arr.shape != shape:
        raise ValueError(f"weight {key}{where} has shape {arr.shape}, expected {shape}")
    return arr


def llama_generic_name(name: str) -> str:
    """The generic name (:func:`eigenkit.nn.llama_weights`) of a Hugging Face LLaMA tensor name.

    Example:
      >>> llama_generic_name("model.layers.3.self_attn.q_proj.weight")
      'blocks.3.q'
    """
    fixed = {"model.embed_tokens.weight": "embed", "model.norm.weight": "norm", "lm_head.weight": "lm_head"}
    if name in fixed:
        return fixed[name]
    parts = name.split(".", 3)
    if len(parts) != 4 or parts[:2] != ["model", "layers"] or not parts[3].endswith(".weight"):
        raise ValueError(f"{name!r} is not a LLaMA tensor name")
    return f"blocks.{parts[2]}.{_BLOCK[parts[3][:-len('.weight')]]}"


def write_hf_llama(path: str | pathlib.Path, config, weights: dict, *, bf16: bool = False, shards: int = 1) -> None:
    """Write a Hugging Face LLaMA checkpoint directory: ``config.json`` and the weights (generic names of
    :func:`eigenkit.nn.llama_weights`) as ``model.safetensors`` or, for ``shards > 1``, as
    ``model-0000k-of-0000n.safetensors`` with ``model.safetensors.index.json`` (the layout ``save_pretrained``
    writes). Used by the tests to build tiny checkpoints; ``config.rope_layout`` must be ``HALF``.

    Raises:
      ValueError: a weight is missing or has the wrong shape, or the config's RoPE layout is not ``HALF``.
    """
    from eigenkit.nn import RopeLayout

    c = config
    if c.rope_layout is not RopeLayout.HALF:
        raise ValueError(f"Hugging Face LLaMA checkpoints use RopeLayout.HALF, got {c.rope_layout}")
    tensors = {}
    for name, shape in hf_llama_shapes(c).items():
        tensors[name] = checked_weight(weights, llama_generic_name(name), shape, f" ({name})")
    p = pathlib.Path(path)
    p.mkdir(parents=True, exist_ok=True)
    (p / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": c.dim, "intermediate_size": c.hidden_dim, "num_attention_heads": c.num_heads,
        "num_hidden_layers": c.num_layers, "num_key_value_heads": c.num_kv_heads, "rms_norm_eps": c.norm_eps,
        "rope_theta": c.rope_theta, "rope_scaling": None, "tie_word_embeddings": c.tie_embeddings,
        "vocab_size": c.vocab_size, "attention_bias": False, "mlp_bias": False,
        "torch_dtype": "bfloat16" if bf16 else "float32"}, indent=2))
    names = list(tensors)
    if shards <= 1:
        write_safetensors(p / "model.safetensors", tensors, bf16=bf16, metadata={"format": "pt"})
        return
    parts = np.array_split(np.arange(len(names)), shards)
    weight_map = {}
    for k, idx in enumerate(parts):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(p / fname, {names[j]: tensors[names[j]] for j in idx}, bf16=bf16,
                          metadata={"format": "pt"})
        weight_map.update({names[j]: fname for j in idx})
    total = sum((2 if bf16 else 4) * t.size for t in tensors.values())
    (p / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": int(total)}, "weight_map": weight_map}, indent=2))


def hf_llama_tokenizer(path: str | pathlib.Path):
    """A ``tokenizers.Tokenizer`` from the checkpoint's ``tokenizer.json`` (padding and truncation off; ``encode``
    adds the BOS token through the file's post-processor, as ``AutoTokenizer`` does for LLaMA-2/3).

    Raises:
      MissingDataError: no ``tokenizer.json`` or the ``tokenizers`` package is not installed.
    """
    p = pathlib.Path(path)
    p = p / "tokenizer.json" if p.is_dir() else p
    if not p.exists():
        raise MissingDataError(f"{p} not found: the checkpoint directory needs the fast tokenizer file tokenizer.json")
    try:
        from tokenizers import Tokenizer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDataError("the 'tokenizers' package is needed. Install with: pip install tokenizers") from e
    tok = Tokenizer.from_file(str(p))
    tok.no_padding()
    tok.no_truncation()
    return tok


class HFLlamaCheckpoint:
    """A Hugging Face LLaMA checkpoint read block by block (the ``BlockSource`` interface of
    :mod:`eigenkit.methods.eora`'s streamed driver: ``config``, ``embed_tokens``, ``block``, ``head``).

    Args:
      path: checkpoint directory (``config.json``, safetensors file or shards).

    Example:
      >>> ck = HFLlamaCheckpoint("/path/to/Meta-Llama-3-8B")  # doctest: +SKIP
      >>> ck.block(0)["q"].shape  # doctest: +SKIP
      (4096, 4096)
    """

    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)
        self.config = hf_llama_config(self.path)
        self.reader = SafetensorsReader(self.path)
        want = ["model.embed_tokens.weight", "model.norm.weight"] + [
            f"model.layers.{i}.{k}.weight" for i in range(self.config.num_layers) for k in _BLOCK]
        if not self.config.tie_embeddings:
            want.append("lm_head.weight")
        missing = [n for n in want if n not in self.reader]
        if missing:
            raise ValueError(f"{self.path}: {len(missing)} expected tensors missing, e.g. {missing[:3]}")
        for name, shape in hf_llama_shapes(self.config).items():
            if name in self.reader and self.reader.shape(name) != shape:
                raise ValueError(f"{self.path}: tensor {name} has shape {self.reader.shape(name)}, expected {shape} "
                                 "from config.json")

    def embed_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """``(b, l)`` int tokens -> ``(b, l, dim)`` float32 (only the rows used are read)."""
        tokens = np.asarray(tokens)
        if not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"tokens must be integers, got {tokens.dtype}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.config.vocab_size}), got [{tokens.min()}, "
                             f"{tokens.max()}]")
        uniq, inv = np.unique(tokens, return_inverse=True)
        return self.reader.rows("model.embed_tokens.weight", uniq)[inv.reshape(tokens.shape)]

    def block(self, i: int) -> dict[str, np.ndarray]:
        """Block ``i``'s weights (float32) under the names ``attn_norm, q, k, v, o, mlp_norm, gate, up, down``."""
        if not 0 <= i < self.config.num_layers:
            raise IndexError(f"block index {i} out of range [0, {self.config.num_layers})")
        return {v: self.reader.get(f"model.layers.{i}.{k}.weight") for k, v in _BLOCK.items()}

    def head(self) -> dict[str, np.ndarray]:
        """``{"norm": (dim,), "lm_head": (vocab, dim)}`` (the embedding when tied)."""
        lm = "model.embed_tokens.weight" if self.config.tie_embeddings else "lm_head.weight"
        return {"norm": self.reader.get("model.norm.weight"), "lm_head": self.reader.get(lm)}

    def weights(self) -> dict[str, np.ndarray]:
        """All weights under the generic names (for small models: the whole model in memory)."""
        out = {"embed": self.reader.get("model.embed_tokens.weight"), "norm": self.reader.get("model.norm.weight")}
        if not self.config.tie_embeddings:
            out["lm_head"] = self.reader.get("lm_head.weight")
        for i in range(self.config.num_layers):
            out.update({f"blocks.{i}.{k}": v for k, v in self.block(i).items()})
        return out

    def block_nbytes(self, i: int = 0) -> int:
        """Bytes of block ``i``'s weights once decoded to float32."""
        return sum(4 * int(np.prod(self.reader.shape(f"model.layers.{i}.{k}.weight"))) for k in _BLOCK)
