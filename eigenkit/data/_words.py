"""Plain-text corpora, GLUE TSV files and a word-level vocabulary, for masked-token experiments on real text.

* :func:`read_text_lines` — a pre-training corpus as the files users already have: one document or sentence per line
  (e.g. a wikipedia-simple dump extracted to text, or :func:`eigenkit.data.austen_books` joined), blank lines dropped;
* :func:`read_glue` — a GLUE task directory as distributed by the GLUE benchmark (``SST-2/{train,dev}.tsv`` with a
  ``sentence  label`` header, ``QNLI/{train,dev}.tsv`` with ``index  question  sentence  label``); the test splits
  carry no labels and are refused;
* :class:`WordVocab` — lower-cased word / punctuation tokens, the ``size`` most frequent kept, four reserved ids
  (``PAD = 0``, ``MASK = 1``, ``UNK = 2``, ``SEP = 3``). Word-level instead of a subword tokenizer on purpose: the
  masked-token kernel is over token sequences, and a closed vocabulary built from the corpus needs no download.
"""

from __future__ import annotations

import collections
import csv
import pathlib
import re
import sys
from collections.abc import Iterable, Sequence

import numpy as np

from eigenkit.data._common import MissingDataError

__all__ = ["GLUE_TASKS", "WordVocab", "read_glue", "read_text_lines", "word_tokens"]

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")

#: task -> (directory, text columns, label column, label names in id order)
GLUE_TASKS = {
    "sst2": ("SST-2", ("sentence",), "label", ("0", "1")),
    "qnli": ("QNLI", ("question", "sentence"), "label", ("not_entailment", "entailment")),
}


def word_tokens(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens.

    Example:
      >>> from eigenkit.data import word_tokens
      >>> word_tokens("Mr. Darcy's pride!")
      ['mr', '.', "darcy's", 'pride', '!']
    """
    return _TOKEN.findall(text.lower())


def read_text_lines(path: str | pathlib.Path, *, max_lines: int | None = None, min_chars: int = 1) -> list[str]:
    """Non-blank lines of a UTF-8 text file (a pre-training corpus: one document or sentence per line).

    Args:
      path: the file.
      max_lines: stop after this many kept lines (``None``: all).
      min_chars: drop lines shorter than this after stripping.

    Returns:
      The stripped lines.

    Raises:
      MissingDataError: ``path`` does not exist.
      ValueError: no line is kept.
    """
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise MissingDataError(f"text corpus {path} not found: pass a UTF-8 file with one document per line "
                               "(e.g. --config.corpus=/data/simplewiki.txt)")
    out = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip()
            if len(s) >= min_chars:
                out.append(s)
                if max_lines is not None and len(out) >= max_lines:
                    break
    if not out:
        raise ValueError(f"{path} has no line of at least {min_chars} characters")
    return out


def read_glue(glue_dir: str | pathlib.Path, task: str, split: str) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """One labelled split of a GLUE task in the original TSV layout.

    Args:
      glue_dir: the directory holding ``SST-2/`` and/or ``QNLI/`` (as unpacked from the GLUE distribution).
      task: ``"sst2"`` or ``"qnli"``.
      split: ``"train"`` or ``"dev"`` (GLUE's test files have no labels).

    Returns:
      ``(texts, labels)``: per example the tuple of its text fields (one for SST-2; question, sentence for QNLI) and
      ``(n,)`` int32 labels (SST-2: 0 negative / 1 positive; QNLI: 0 not_entailment / 1 entailment).

    Raises:
      MissingDataError: the file is missing.
      ValueError: unknown task or split, a missing column, or an unknown label.
    """
    if task not in GLUE_TASKS:
        raise ValueError(f"task must be one of {sorted(GLUE_TASKS)}, got {task!r}")
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev' (GLUE test files are unlabelled), got {split!r}")
    sub, cols, label_col, names = GLUE_TASKS[task]
    path = pathlib.Path(glue_dir).expanduser() / sub / f"{split}.tsv"
    if not path.is_file():
        raise MissingDataError(f"GLUE file {path} not found: pass --config.glue_dir=DIR where DIR/{sub}/{split}.tsv is "
                               "the GLUE distribution's file")
    label_id = {n: i for i, n in enumerate(names)}
    texts, labels = [], []
    csv.field_size_limit(min(sys.maxsize, 2 ** 31 - 1))
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty")
        missing = [c for c in (*cols, label_col) if c not in header]
        if missing:
            raise ValueError(f"{path}: header {header} lacks column(s) {missing}")
        idx = [header.index(c) for c in cols]
        li = header.index(label_col)
        for row_no, row in enumerate(reader, start=2):
            if len(row) <= max(*idx, li):
                raise ValueError(f"{path}:{row_no}: expected {len(header)} tab-separated fields, got {len(row)}")
            lab = row[li].strip()
            if lab not in label_id:
                raise ValueError(f"{path}:{row_no}: label {lab!r} is not one of {list(names)}")
            texts.append(tuple(row[i] for i in idx))
            labels.append(label_id[lab])
    if not texts:
        raise ValueError(f"{path} has a header but no examples")
    return texts, np.asarray(labels, np.int32)


class WordVocab:
    """A closed word-level vocabulary: ids ``0..3`` reserved (PAD, MASK, UNK, SEP), then the words by frequency.

    Example:
      >>> from eigenkit.data import WordVocab
      >>> v = WordVocab.build(["the cat sat", "the dog"], size=3)
      >>> v.words[4:], len(v)
      (['the', 'cat', 'sat'], 7)
      >>> ids, mask = v.encode([("the bird sat",)], 5)
      >>> ids.tolist(), mask.tolist()
      ([[4, 2, 6, 0, 0]], [[True, True, True, False, False]])
    """

    PAD, MASK, UNK, SEP = 0, 1, 2, 3
    RESERVED = ("[PAD]", "[MASK]", "[UNK]", "[SEP]")

    def __init__(self, words: Sequence[str]):
        self.words = [*self.RESERVED, *words]
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("words must be distinct and must not repeat the reserved tokens")

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, texts: Iterable[str], size: int, *, min_count: int = 1) -> WordVocab:
        """The ``size`` most frequent tokens of ``texts`` with at least ``min_count`` occurrences (ties: first seen)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a Python int >= 1, got {size!r}")
        counts = collections.Counter()
        for t in texts:
            counts.update(word_tokens(t))
        return cls([w for w, c in counts.most_common(size) if c >= min_count])

    def ids(self, text: str) -> list[int]:
        return [self.index.get(w, self.UNK) for w in word_tokens(text)]

    def encode(self, examples: Sequence[tuple[str, ...] | str], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-length ids of each example (fields joined by SEP), truncated or PAD-padded to ``length``.

        Returns:
          ``(ids (n, length) int32, mask (n, length) bool)`` with ``mask`` true on real tokens.
        """
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a Python int >= 1, got {length!r}")
        ids = np.zeros((len(examples), length), np.int32)
        for r, ex in enumerate(examples):
            fields = (ex,) if isinstance(ex, str) else ex
            seq: list[int] = []
            for j, field in enumerate(fields):
                if j:
                    seq.append(self.SEP)
                seq.extend(self.ids(field))
            seq = seq[:length]
            ids[r, :len(seq)] = seq
        return ids, ids != self.PAD
