"""LRA ListOps (Nangia & Bowman 2018; Long Range Arena, Tay et al. 2021): reader of the official TSV files and an
offline generator of the same distribution.

**Files.** ``basic_train.tsv`` (96,000 lines), ``basic_val.tsv`` (2,000), ``basic_test.tsv`` (2,000) of the
``listops-1000`` folder of ``lra_release.gz`` (https://github.com/google-research/long-range-arena). A header
``Source\\tTarget``, then one expression and its value ``0..9`` per line, e.g.
``( ( ( [MAX 2 ) 9 ) ] )\\t9``.

**Tokenisation** (the official S4 ``listops_tokenizer`` of ``src/dataloaders/lra.py`` at ``state-spaces/s4``
@ ``e757cef57d89``, itself LRA's ``input_pipeline.py``): drop ``(`` and ``)``, split on whitespace; S4 renames ``]`` to
``X`` first (a spelling only). ``append_eos`` adds an ``<eos>`` token as S4 does (``append_bos: False``,
``append_eos: True`` in ``configs/dataset/listops.yaml``); sequences are cut at ``l_max - 1`` tokens before it.

**Vocabulary** (:data:`LISTOPS_VOCAB`, fixed, 18 tokens as the official "actual size 18"): ``<pad>`` 0, ``<unk>`` 1,
``<eos>`` 2, digits ``0``..``9`` 3..12, ``[MAX`` 13, ``[MIN`` 14, ``[MED`` 15, ``[SM`` 16, ``]`` 17. The official
``torchtext`` vocabulary has the same specials first and the 15 others ordered by training-set frequency; the two
differ only by a permutation of the token ids, which leaves an i.i.d.-initialised embedding's distribution unchanged.

**Generator.** :func:`listops_generate` follows LRA's ``lra_benchmarks/data/listops.py``: a random tree (a node at
depth ``< max_depth`` is, with probability ``VALUE_P = 0.25``, one of MIN, MAX, MED, SM = sum mod 10 with
2..``max_args`` uniformly many arguments, else a value 0..9; at ``max_depth`` always a value), kept when its token
count ``length`` (values, operators and ``]``) satisfies ``min_length < length < max_length``; distinct trees only;
strings written with LRA's ``to_string`` (every application parenthesised) and labels by LRA's ``to_value`` (``MED``
= ``int(np.median)``: the floor of the mean of the two middle values for an even count).
Randomness is a NumPy ``Generator`` (LRA uses Python's ``random``), so the trees are of the same distribution, not the
same trees.
"""

from __future__ import annotations

import csv
import os
import pathlib

import numpy as np

from eigenkit.data._common import MissingDataError

LISTOPS_OPERATORS = ("[MAX", "[MIN", "[MED", "[SM")
LISTOPS_VOCAB = ("<pad>", "<unk>", "<eos>", *"0123456789", *LISTOPS_OPERATORS, "]")
LISTOPS_PAD, LISTOPS_UNK, LISTOPS_EOS = 0, 1, 2
LISTOPS_FILES = {"train": "basic_train.tsv", "val": "basic_val.tsv", "test": "basic_test.tsv"}
_INDEX = {tok: i for i, tok in enumerate(LISTOPS_VOCAB)}
_INDEX["X"] = _INDEX["]"]  # the S4 tokenizer's spelling of "]"
_VALUE_P = 0.25  # LRA: probability that a node above max_depth is an operator
_MAX_TRIES = 1000  # rejected trees per accepted one before giving up


def listops_tokenize(source: str) -> list[str]:
    """The official tokens of an expression: parentheses dropped, split on whitespace."""
    return source.replace("(", " ").replace(")", " ").split()


def _encode(source: str, l_max: int, append_eos: bool) -> list[int]:
    ids = [_INDEX.get(t, LISTOPS_UNK) for t in listops_tokenize(source)][: l_max - int(append_eos)]
    return ids + [LISTOPS_EOS] if append_eos else ids


def listops_encode(sources, targets, *, l_max: int = 2048, append_eos: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids of expressions, padded with ``<pad>`` (0) to ``l_max``.

    Args:
      sources: ``n`` expression strings (the ``Source`` column).
      targets: ``n`` values in ``0..9``.
      l_max: padded length (official 2048), including the ``<eos>``.
      append_eos: append ``<eos>`` (official ``True``).

    Returns:
      ``tokens`` int32 ``(n, l_max)``, ``lengths`` int32 ``(n,)`` (tokens before the padding, ``<eos>`` included),
      ``labels`` int32 ``(n,)``.
    """
    if int(l_max) < 1 + int(append_eos):
        raise ValueError(f"l_max must be >= {1 + int(append_eos)}, got {l_max}")
    sources = list(sources)
    labels = np.asarray(list(targets), dtype=np.int64)
    if labels.shape != (len(sources),):
        raise ValueError(f"targets must be {len(sources)} values, got shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError("targets must lie in 0..9")
    tokens = np.zeros((len(sources), int(l_max)), np.int32)
    lengths = np.zeros(len(sources), np.int32)
    for i, s in enumerate(sources):
        ids = _encode(s, int(l_max), append_eos)
        tokens[i, : len(ids)] = ids
        lengths[i] = len(ids)
    return tokens, lengths, labels.astype(np.int32)


def read_listops_tsv(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """``(sources, targets int32)`` of a ListOps TSV file (header ``Source\\tTarget``).

    Raises:
      ValueError: a missing or wrong header, or a line without two tab-separated fields / an integer target.
    """
    path = pathlib.Path(path)
    sources, targets = [], []
    with open(path, newline="", encoding="utf8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["Source", "Target"]:
            raise ValueError(f"{path}: the first line must be the header 'Source\\tTarget', got {header!r}")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{lineno}: expected 'Source<TAB>Target', got {row!r}")
            try:
                targets.append(int(row[1]))
            except ValueError:
                raise ValueError(f"{path}:{lineno}: the target {row[1]!r} is not an integer") from None
            sources.append(row[0])
    return sources, np.asarray(targets, dtype=np.int32)


def listops(split: str = "train", *, root: str | os.PathLike | None = None, l_max: int = 2048,
            append_eos: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LRA ListOps split from the official TSV files, tokenised as the official S4 code.

    Args:
      split: ``"train"``, ``"val"`` or ``"test"``.
      root: the ``listops-1000`` directory; default ``$EIGENKIT_LISTOPS``.
      l_max, append_eos: see :func:`listops_encode` (official 2048, ``True``).

    Returns:
      ``tokens`` int32 ``(n, l_max)`` (ids of :data:`LISTOPS_VOCAB`, ``<pad>`` = 0 after ``lengths``), ``lengths``
      int32 ``(n,)`` and ``labels`` int32 ``(n,)`` in ``0..9``.

    Raises:
      MissingDataError: no directory given or the split's file is missing (says where to get it, or to generate).

    Example::

        tokens, lengths, labels = listops("val", root="/data/lra_release/listops-1000")  # (2000, 2048), ...
    """
    if split not in LISTOPS_FILES:
        raise ValueError(f"split must be one of {sorted(LISTOPS_FILES)}, got {split!r}")
    env = os.environ.get("EIGENKIT_LISTOPS")
    hint = ("download lra_release.gz from https://github.com/google-research/long-range-arena, tar xzf it and point "
            "at its listops-1000 folder; or write a generated replica with eigenkit.data.listops_write_tsv")
    if not root and not env:
        raise MissingDataError(f"ListOps: no directory given. Pass root= (config.data_dir in the experiments) or set "
                               f"EIGENKIT_LISTOPS to a folder holding {', '.join(LISTOPS_FILES.values())}: {hint}")
    source = "the root argument" if root else f"EIGENKIT_LISTOPS={env}"
    path = pathlib.Path(root or env) / LISTOPS_FILES[split]
    if not path.is_file():
        raise MissingDataError(f"ListOps: {path} not found (directory from {source}; expected "
                               f"{', '.join(LISTOPS_FILES.values())}): {hint}")
    sources, targets = read_listops_tsv(path)
    return listops_encode(sources, targets, l_max=l_max, append_eos=append_eos)


# -- generator ------------------------------------------------------------------------------------------------------
def _tree(rng: np.random.Generator, depth: int, max_depth: int, max_args: int):
    """LRA ``generate_tree``: ``(tree, length)``; a tree is an int or ``(op, [children])``."""
    r = rng.random() if depth < max_depth else 1.0
    if r > _VALUE_P:
        return int(rng.integers(10)), 1
    children, length = [], 2
    for _ in range(int(rng.integers(2, max_args + 1))):
        child, n = _tree(rng, depth + 1, max_depth, max_args)
        children.append(child)
        length += n
    return (LISTOPS_OPERATORS[int(rng.integers(len(LISTOPS_OPERATORS)))], children), length


def _to_string(tree) -> str:
    """LRA ``to_string(parens=True)`` of the nested pairs ``((((op, c0), c1), ...), ']')``."""
    if isinstance(tree, int):
        return str(tree)
    op, children = tree
    s = f"( {op} {_to_string(children[0])} )"
    for c in children[1:]:
        s = f"( {s} {_to_string(c)} )"
    return f"( {s} ] )"


def _value(tree) -> int:
    """LRA ``to_value``."""
    if isinstance(tree, int):
        return tree
    op, children = tree
    v = [_value(c) for c in children]
    if op == "[MAX":
        return max(v)
    if op == "[MIN":
        return min(v)
    if op == "[MED":
        return int(np.median(v))
    return sum(v) % 10


def listops_generate(n: int, *, seed: int | np.random.Generator, max_depth: int = 10, max_args: int = 10,
                     min_length: int = 500, max_length: int = 2000) -> tuple[list[str], np.ndarray]:
    """``n`` distinct ListOps expressions in the TSV ``Source`` format and their values (LRA's generator).

    Args:
      n: number of expressions.
      seed: seed (or NumPy ``Generator``) of the trees.
      max_depth, max_args: LRA defaults 10, 10 (a node at ``max_depth`` is a value).
      min_length, max_length: keep trees with ``min_length < length < max_length`` tokens (LRA 500, 2000); smaller
        values make tiny replicas (e.g. 10, 60 with ``max_depth=4``).

    Returns:
      ``sources`` (``n`` strings) and ``targets`` int32 ``(n,)`` in ``0..9``.

    Raises:
      ValueError: bad arguments, or ``1000 n`` draws produced fewer than ``n`` acceptable distinct trees.

    Example:
      >>> src, y = listops_generate(2, seed=0, max_depth=3, min_length=4, max_length=40)
      >>> len(src), y.dtype.name
      (2, 'int32')
    """
    if n < 0 or max_depth < 1 or max_args < 2 or not 0 <= min_length < max_length - 1:
        raise ValueError(f"need n >= 0, max_depth >= 1, max_args >= 2 and 0 <= min_length < max_length - 1; got "
                         f"n={n}, max_depth={max_depth}, max_args={max_args}, min_length={min_length}, "
                         f"max_length={max_length}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out: dict[str, int] = {}
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > _MAX_TRIES * max(n, 1):
            raise ValueError(f"only {len(out)} of {n} distinct trees with {min_length} < length < {max_length} in "
                             f"{tries - 1} draws (max_depth={max_depth}, max_args={max_args}); widen the lengths")
        tree, length = _tree(rng, 1, max_depth, max_args)
        if min_length < length < max_length:
            out.setdefault(_to_string(tree), _value(tree))
    return list(out), np.fromiter(out.values(), dtype=np.int32, count=len(out))


def listops_write_tsv(path: str | os.PathLike, sources, targets) -> pathlib.Path:
    """Write a ListOps TSV file as LRA does (``csv.writer`` with a tab, header ``Source\\tTarget``)."""
    path = pathlib.Path(path)
    with open(path, "w", newline="", encoding="utf8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["Source", "Target"])
        for s, t in zip(sources, targets, strict=True):
            writer.writerow([s, int(t)])
    return path
