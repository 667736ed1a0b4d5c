"""WikiText-2 (raw) and a C4 shard for LLM calibration and perplexity, from local files only.

* **WikiText-2 raw** (Merity et al. 2016), the data of ``load_dataset("wikitext", "wikitext-2-raw-v1")`` that the
  official ``datautils.get_wikitext2`` reads. Root from the argument or ``$EIGENKIT_WIKITEXT2``, in either layout:

  - the raw text files ``wiki.train.raw``, ``wiki.valid.raw``, ``wiki.test.raw`` (``wikitext-2-raw-v1.zip``,
    also accepted one level down in ``wikitext-2-raw/``). The Hugging Face dataset was built from these files with
    one row per line (``for row in f``: the line with its ``"\\n"``, a blank line as ``""``);
    :func:`wikitext2_rows` rebuilds exactly those rows;
  - the Hugging Face Hub parquet files ``{train,validation,test}-00000-of-00001.parquet`` (the
    ``wikitext-2-raw-v1/`` folder of a ``Salesforce/wikitext`` download; also accepted one level down in
    ``wikitext-2-raw-v1/``), read with ``pyarrow`` (not a dependency: install it, or use the raw files).

  :func:`wikitext2_text` joins the rows with ``"\\n\\n"`` as ``get_wikitext2`` does before tokenising.
* **C4**: one json-lines shard, ``c4-train.00000-of-01024.json.gz`` (``allenai/c4`` ``en``; what the GPTQ family of
  codes calibrates on), each line a JSON object with a ``"text"`` field; path (file or its directory) from the
  argument or ``$EIGENKIT_C4``.

Calibration windows follow the official code (NVlabs/EoRA ``datautils.py``), with Python's ``random`` seeded by
``seed`` so the draws are those of ``random.seed(seed)`` there: WikiText-2 — ``n`` windows of ``seq_len`` tokens at
``random.randint(0, N − seq_len − 1)`` of the tokenised training text; C4 — per window a random document
(``random.randint(0, D − 1)``, redrawn until it has more than ``seq_len`` tokens) and a random window in it.
Perplexity uses :func:`token_windows`: the non-overlapping ``seq_len`` windows of the tokenised test text
(``N // seq_len`` of them, the tail dropped), as ``llama_eval``.
"""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import random
from collections.abc import Callable, Sequence

import numpy as np

from eigenkit.data._common import MissingDataError

__all__ = [
    "c4_calibration",
    "c4_documents",
    "c4_path",
    "token_windows",
    "wikitext2_calibration",
    "wikitext2_root",
    "wikitext2_rows",
    "wikitext2_text",
]

_SPLITS = ("train", "valid", "test")
_WT_HINT = ("provide WikiText-2 raw: unzip wikitext-2-raw-v1.zip (https://s3.amazonaws.com/research.metamind.io/"
            "wikitext/wikitext-2-raw-v1.zip) and pass the folder holding wiki.train.raw and wiki.test.raw, or pass "
            "the wikitext-2-raw-v1/ folder of the Hugging Face dataset Salesforce/wikitext (train-/test-*.parquet, "
            "needs pyarrow); or set $EIGENKIT_WIKITEXT2")
_C4_HINT = ("download en/c4-train.00000-of-01024.json.gz of allenai/c4 and pass its path or folder "
            "(or set $EIGENKIT_C4)")


def _wt_layout(d: pathlib.Path) -> str | None:
    if (d / "wiki.test.raw").exists():
        return "raw"
    if any(d.glob("test-*.parquet")):
        return "parquet"
    return None


def wikitext2_root(path: str | pathlib.Path | None = None) -> pathlib.Path:
    """The folder with ``wiki.{train,valid,test}.raw`` or ``{train,validation,test}-*.parquet``: ``path``, else
    ``$EIGENKIT_WIKITEXT2`` (also looked for in its ``wikitext-2-raw/`` or ``wikitext-2-raw-v1/`` subfolder).

    Raises:
      MissingDataError: neither given, or no WikiText-2 test split there; the message says what to provide.
    """
    if path is None:
        path = os.environ.get("EIGENKIT_WIKITEXT2")
    if not path:
        raise MissingDataError(f"no WikiText-2 folder given: {_WT_HINT}")
    root = pathlib.Path(path)
    for cand in (root, root / "wikitext-2-raw", root / "wikitext-2-raw-v1"):
        if _wt_layout(cand):
            return cand
    raise MissingDataError(f"{root} has neither wiki.test.raw nor test-*.parquet: {_WT_HINT}")


def wikitext2_rows(split: str = "test", root: str | pathlib.Path | None = None) -> list[str]:
    """The Hugging Face ``wikitext-2-raw-v1`` rows of ``split`` (``train``, ``valid``/``validation``, ``test``):
    from the raw files, each line of ``wiki.{split}.raw`` with its newline and blank lines as ``""``; from parquet,
    the ``text`` column.

    Example:
      >>> import tempfile
      >>> d = pathlib.Path(tempfile.mkdtemp())
      >>> _ = (d / "wiki.test.raw").write_text(" \\n = Title = \\n \\n Text .\\n")
      >>> wikitext2_rows("test", d)
      ['', ' = Title = \\n', '', ' Text .\\n']
    """
    split = {"validation": "valid"}.get(split, split)
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS} (or 'validation'), got {split!r}")
    d = wikitext2_root(root)
    if _wt_layout(d) == "parquet":
        files = sorted(d.glob(f"{'validation' if split == 'valid' else split}-*.parquet"))
        if not files:
            raise MissingDataError(f"{d} has no {split}-*.parquet: {_WT_HINT}")
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise MissingDataError(f"{d} holds the parquet layout, which needs pyarrow (pip install pyarrow); or "
                                   f"pass a folder with the raw files instead: {_WT_HINT}") from e
        return [r for f in files for r in pq.read_table(f, columns=["text"]).column("text").to_pylist()]
    f = d / f"wiki.{split}.raw"
    if not f.exists():
        raise MissingDataError(f"{f} not found: {_WT_HINT}")
    with open(f, encoding="utf-8") as fh:  # universal newlines, one row per line, as the dataset builder read it
        return [line if line.strip() else "" for line in fh]


def wikitext2_text(split: str = "test", root: str | pathlib.Path | None = None) -> str:
    """``"\\n\\n".join(rows)`` of :func:`wikitext2_rows` (the text the official code tokenises)."""
    return "\n\n".join(wikitext2_rows(split, root))


def token_windows(tokens: Sequence[int] | np.ndarray, seq_len: int) -> np.ndarray:
    """Non-overlapping windows ``(N // seq_len, seq_len)`` of a token stream (the tail is dropped).

    Example:
      >>> token_windows(np.arange(7), 3).tolist()
      [[0, 1, 2], [3, 4, 5]]
    """
    t = np.asarray(tokens)
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"tokens must be a 1-D integer array, got {t.shape} {t.dtype}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    n = len(t) // seq_len
    return t[:n * seq_len].reshape(n, seq_len).astype(np.int32)


def wikitext2_calibration(tokens: Sequence[int] | np.ndarray, n: int, seq_len: int, *, seed: int) -> np.ndarray:
    """``n`` random ``seq_len`` windows ``(n, seq_len)`` of the tokenised training text (``get_wikitext2``:
    ``random.seed(seed)``, start ``random.randint(0, N − seq_len − 1)`` per window; windows may overlap). The official
    code draws the compressor's set with ``seed`` and EoRA's with ``seed + 1`` from the same text.

    Example:
      >>> wikitext2_calibration(np.arange(10), 3, 4, seed=0).tolist()
      [[3, 4, 5, 6], [3, 4, 5, 6], [0, 1, 2, 3]]
    """
    t = np.asarray(tokens)
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer) or len(t) < seq_len + 1:
        raise ValueError(f"tokens must be a 1-D integer array of at least seq_len + 1 = {seq_len + 1} entries, got "
                         f"{t.shape} {t.dtype}")
    rng = random.Random(seed)
    starts = [rng.randint(0, len(t) - seq_len - 1) for _ in range(n)]
    return np.stack([t[i:i + seq_len] for i in starts]).astype(np.int32)


def c4_path(path: str | pathlib.Path | None = None) -> pathlib.Path:
    """The C4 shard: ``path`` (the file, or a folder holding ``c4-train.00000-of-01024.json.gz``), else
    ``$EIGENKIT_C4``.

    Raises:
      MissingDataError: not given or not found; the message says what to download.
    """
    if path is None:
        path = os.environ.get("EIGENKIT_C4")
    if not path:
        raise MissingDataError(f"no C4 shard given: {_C4_HINT}")
    p = pathlib.Path(path)
    if p.is_dir():
        p = p / "c4-train.00000-of-01024.json.gz"
    if not p.exists():
        raise MissingDataError(f"{p} not found: {_C4_HINT}")
    return p


def c4_documents(path: str | pathlib.Path | None = None, *, max_documents: int | None = None) -> list[str]:
    """The ``"text"`` of every document of the shard (json lines, gzip or plain), in file order."""
    p = c4_path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    out = []
    with opener(p, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line)["text"])
                if max_documents is not None and len(out) >= max_documents:
                    break
    if not out:
        raise ValueError(f"{p} holds no documents")
    return out


def c4_calibration(documents: Sequence[str], tokenize: Callable[[str], Sequence[int]], n: int, seq_len: int, *,
                   seed: int, max_tries: int = 100_000) -> np.ndarray:
    """``n`` windows ``(n, seq_len)`` as ``get_c4``: ``random.seed(seed)``; per window draw documents with
    ``random.randint(0, D − 1)`` until one has more than ``seq_len`` tokens, then the start
    ``random.randint(0, T − seq_len − 1)``.

    Raises:
      ValueError: ``max_tries`` draws in a row found no document longer than ``seq_len`` tokens.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        for _ in range(max_tries):
            ids = np.asarray(tokenize(documents[rng.randint(0, len(documents) - 1)]))
            if len(ids) > seq_len:
                break
        else:
            raise ValueError(f"no document with more than seq_len = {seq_len} tokens in {max_tries} draws")
        i = rng.randint(0, len(ids) - seq_len - 1)
        out.append(ids[i:i + seq_len])
    return np.stack(out).astype(np.int32)
