"""Jane Austen's six novels from the Debian package ``r-cran-janeaustenr`` (1.0.0-1), read offline.

The package is *not installed* (that would pull in R); extract it into the eigenkit cache once::

    mkdir -p ~/.cache/eigenkit/janeaustenr && cd ~/.cache/eigenkit/janeaustenr \\
      && apt-get download r-cran-janeaustenr && dpkg-deb -x r-cran-janeaustenr_*.deb .

(``$EIGENKIT_CACHE`` replaces ``~/.cache/eigenkit``). The data is an R lazy-load database
``usr/lib/R/site-library/janeaustenr/data/Rdata.{rdx,rdb}``, decoded with the pure-Python PyPI package ``rdata``
(``pip install rdata==1.1.0``). Library code never downloads.

:func:`text_passages` cuts token streams into fixed-length passages and splits them into *disjoint* calibration and
evaluation sets with a fixed seed.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import struct
import warnings
import zlib

import numpy as np

from eigenkit.data._common import MissingDataError

BOOKS = ("sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion")
_REL = pathlib.Path("usr/lib/R/site-library/janeaustenr/data/Rdata")


def austen_install_commands(root: pathlib.Path | None = None) -> str:
    root = root or austen_root()
    return (f"mkdir -p {root} && cd {root} && apt-get download r-cran-janeaustenr "
            f"&& dpkg-deb -x r-cran-janeaustenr_*.deb . && pip install rdata==1.1.0")


def austen_root() -> pathlib.Path:
    """Default extraction directory: ``$EIGENKIT_CACHE/janeaustenr`` or ``~/.cache/eigenkit/janeaustenr``."""
    base = pathlib.Path(os.environ.get("EIGENKIT_CACHE", pathlib.Path.home() / ".cache" / "eigenkit"))
    return base / "janeaustenr"


def _unserialize(raw: bytes):
    try:
        import rdata
    except ImportError as e:
        raise MissingDataError("the 'rdata' package is needed to read the Austen novels: "
                               "pip install rdata==1.1.0") from e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS" is harmless
        return rdata.conversion.convert(rdata.parser.parse_data(raw))


def austen_books(root: str | pathlib.Path | None = None) -> dict[str, str]:
    """The six novels as ``{name: text}`` (lines joined with ``\\n``; blank lines = paragraph breaks).

    Args:
      root: directory where the .deb was extracted (default :func:`austen_root`).

    Raises:
      MissingDataError: the files are missing; the message gives the exact commands to run.
    """
    root = pathlib.Path(root) if root is not None else austen_root()
    prefix = root / _REL
    rdx, rdb = prefix.with_suffix(".rdx"), prefix.with_suffix(".rdb")
    if not (rdx.exists() and rdb.exists()):
        raise MissingDataError(f"Austen novels not found under {root}. Run: {austen_install_commands(root)}")
    index = _unserialize(gzip.decompress(rdx.read_bytes()))
    blob = rdb.read_bytes()
    books = {}
    for name, (offset, length) in index["variables"].items():
        offset, length = int(offset), int(length)
        payload = zlib.decompress(blob[offset + 4:offset + length])
        if len(payload) != struct.unpack(">i", blob[offset:offset + 4])[0]:
            raise ValueError(f"corrupt chunk for {name} in {rdb}")
        books[str(name)] = "\n".join(str(line) for line in _unserialize(payload))
    return books


def text_passages(
    token_streams: list[np.ndarray], length: int, num_calib: int, num_eval: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint calibration / evaluation passages of ``length`` tokens.

    Each stream is cut into non-overlapping windows; the windows are shuffled with ``seed`` and the first
    ``num_calib`` go to calibration, the next ``num_eval`` to evaluation (so no window is in both).

    Returns:
      ``(calib (num_calib, length), eval (num_eval, length))`` int32 arrays.

    Example:
      >>> c, e = text_passages([np.arange(100)], 10, 3, 2)
      >>> c.shape, e.shape, len(set(c[:, 0]) & set(e[:, 0]))
      ((3, 10), (2, 10), 0)
    """
    windows = _windows(token_streams, length, num_calib + num_eval)
    order = np.random.default_rng(seed).permutation(len(windows))
    arr = windows[order[:num_calib + num_eval]]
    return arr[:num_calib], arr[num_calib:]


def _windows(token_streams, length, need):
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a Python int >= 1, got {length!r}")
    windows = [np.asarray(s[i:i + length], np.int32) for s in token_streams
               for i in range(0, len(s) - length + 1, length)]
    if len(windows) < need:
        raise ValueError(f"only {len(windows)} windows of {length} tokens, need {need}: pass longer token streams")
    return np.stack(windows)


def text_passage_sets(
    token_streams: list[np.ndarray], length: int, num_eval: int, counts: tuple[int, ...], *, seed: int = 0,
    draw: int = 0,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """A fixed held-out set and ``len(counts)`` further calibration sets, all pairwise disjoint.

    Windows as in :func:`text_passages`; a permutation with ``seed`` gives the ``num_eval`` held-out windows (the same
    for every ``draw``); the rest are permuted again with ``(seed, draw)`` and cut into sets of ``counts[j]``
    windows. So ``draw`` resamples the calibration sets (e.g. one for compression and one for compensation, as the
    EoRA official code draws with ``seed`` and ``seed + 1``) without touching the held-out set.

    Returns:
      ``(eval (num_eval, length), [set_j (counts[j], length)])`` int32 arrays.

    Example:
      >>> ev, (a, b) = text_passage_sets([np.arange(100)], 10, 2, (3, 4), draw=1)
      >>> ev.shape, a.shape, b.shape, len(set(a[:, 0]) & set(b[:, 0]) | set(ev[:, 0]) & set(a[:, 0]))
      ((2, 10), (3, 10), (4, 10), 0)
    """
    windows = _windows(token_streams, length, num_eval + sum(counts))
    order = np.random.default_rng(seed).permutation(len(windows))
    rest = order[num_eval:][np.random.default_rng([seed, draw]).permutation(len(windows) - num_eval)]
    cuts = np.cumsum((0, *counts))
    return windows[order[:num_eval]], [windows[rest[a:b]] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


__all__ = ["BOOKS", "austen_books", "austen_install_commands", "austen_root", "text_passage_sets", "text_passages"]
