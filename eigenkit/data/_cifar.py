"""CIFAR-10 (Krizhevsky 2009) from the standard *python* pickle directory ``cifar-10-batches-py``.

The directory is the one inside ``cifar-10-python.tar.gz`` of https://www.cs.toronto.edu/~kriz/cifar.html (the file
torchvision downloads): ``data_batch_1`` … ``data_batch_5`` (10,000 training images each), ``test_batch`` (10,000) and
``batches.meta``. Each batch is a pickled dict with ``b"data"``, a uint8 ndarray ``(10000, 3072)`` (row-major
``(3, 32, 32)``: the 1024 red, then green, then blue values of an image), and ``b"labels"``, a list of ints in
``0..9``. Library code never downloads.

The pickles are read with a **restricted unpickler**: only the three NumPy globals that rebuild an ndarray
(``_reconstruct``, ``ndarray``, ``dtype``) and latin-1 ``_codecs.encode`` (how Python 3 stores ``bytes`` in a
protocol-2 pickle; the official Python-2 files need none) can be named; any other global in a file raises
:class:`pickle.UnpicklingError` instead of being imported, so a tampered file cannot run code.
"""

from __future__ import annotations

import os
import pathlib
import pickle

import numpy as np

from eigenkit.data._common import MissingDataError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)
_META = "batches.meta"
_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _reconstruct():
    try:  # NumPy >= 2
        from numpy._core.multiarray import _reconstruct as f
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct as f
    return f


def _latin1_encode(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` restricted to latin-1: how Python 3 writes ``bytes`` in a protocol-2 pickle."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed (only latin-1)")
    return text.encode("latin-1")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed to rebuild NumPy arrays and protocol-2 ``bytes`` (never imports
    anything else)."""

    def find_class(self, module: str, name: str):
        if (module, name) in (("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")):
            return _reconstruct()
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch file (only NumPy "
                                     "array reconstruction is)")


def read_restricted_pickle(path: str | os.PathLike):
    """Load a pickle whose only globals are NumPy's ndarray reconstruction (bytes keys kept: ``encoding="bytes"``,
    as the Python-2 pickles of CIFAR need).

    Raises:
      pickle.UnpicklingError: the file names any other global.
    """
    with open(path, "rb") as f:
        return _ArrayUnpickler(f, encoding="bytes").load()


def _read_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    d = read_restricted_pickle(path)
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise ValueError(f"{path} is not a CIFAR-10 python batch (a dict with b'data' and b'labels')")
    data = np.asarray(d[b"data"])
    labels = np.asarray(d[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' must be uint8 (n, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"{path}: b'labels' must be {data.shape[0]} ints in 0..9, got shape {labels.shape}")
    return data, labels


def cifar10(split: str = "train", *, root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 images and labels from the python pickle directory.

    Args:
      split: ``"train"`` (the 50,000 images of ``data_batch_1..5``, in file order) or ``"test"`` (the 10,000 of
        ``test_batch``). A validation split is the caller's choice (the S4 code holds out 10 % of train).
      root: the ``cifar-10-batches-py`` directory; default ``$EIGENKIT_CIFAR10``.

    Returns:
      ``images`` uint8 ``(n, 32, 32, 3)`` (height, width, RGB) and ``labels`` int32 ``(n,)`` in ``0..9``
      (see ``CIFAR10_CLASSES``).

    Raises:
      MissingDataError: no directory given, or files missing (the message names them and where to get them).
      ValueError: unknown split, or a file that is not a CIFAR-10 batch.
      pickle.UnpicklingError: a file names a global other than NumPy's array reconstruction.

    Example::

        x, y = cifar10("test", root="/data/cifar-10-batches-py")   # (10000, 32, 32, 3) uint8, (10000,) int32
    """
    files = {"train": CIFAR10_TRAIN_FILES, "test": CIFAR10_TEST_FILES}
    if split not in files:
        raise ValueError(f"split must be one of {sorted(files)}, got {split!r}")
    env = os.environ.get("EIGENKIT_CIFAR10")
    expected = ", ".join(CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES + (_META,))
    if not root and not env:
        raise MissingDataError(
            "CIFAR-10: no directory given. Pass root= (config.data_dir in the experiments) or set EIGENKIT_CIFAR10 "
            f"to the cifar-10-batches-py folder holding {expected}; get it with: curl -O {_URL} && tar xzf "
            "cifar-10-python.tar.gz")
    source = "the root argument" if root else f"EIGENKIT_CIFAR10={env}"
    root = pathlib.Path(root or env)
    paths = [root / name for name in files[split]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise MissingDataError(
            f"CIFAR-10 not found in {root} (from {source}; missing {', '.join(missing)}). Point it at the "
            f"cifar-10-batches-py folder holding {expected} (from {_URL}, the *python* version)")
    parts = [_read_batch(p) for p in paths]
    data = np.concatenate([d for d, _ in parts])
    labels = np.concatenate([lab for _, lab in parts]).astype(np.int32)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _to_rows(images) -> np.ndarray:
    """uint8 ``(n, 32, 32, 3)`` images as the files' ``(n, 3072)`` rows (all red, then green, then blue)."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f"images must be uint8 (n, 32, 32, 3), got {images.dtype} {images.shape}")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), 3072))


def cifar10_write_batch(path: str | os.PathLike, images: np.ndarray, labels, *, batch_label: str = "batch") -> None:
    """Write ``images`` uint8 ``(n, 32, 32, 3)`` and ``labels`` as a CIFAR-10 python batch file (pickle protocol 2,
    the layout of the official files) — for tests and tiny replicas."""
    data = _to_rows(images)
    d = {b"batch_label": batch_label.encode(), b"labels": [int(v) for v in labels], b"data": data,
         b"filenames": [f"img_{i}.png".encode() for i in range(len(images))]}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)


_URL100 = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_FILES = {"train": "train", "test": "test"}


def cifar100(split: str = "train", *, root: str | os.PathLike | None = None,
             label_mode: str = "fine") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-100 images with its 100 fine or 20 coarse ("CIFAR-20", the clustering literature's) labels, from the
    python pickle directory ``cifar-100-python`` (files ``train``, ``test``, ``meta``; each a dict with ``b"data"``
    uint8 ``(n, 3072)``, ``b"fine_labels"`` and ``b"coarse_labels"``), read with the restricted unpickler.

    Args:
      split: ``"train"`` (50,000) or ``"test"`` (10,000).
      root: the ``cifar-100-python`` directory; default ``$EIGENKIT_CIFAR100``.
      label_mode: ``"fine"`` (0..99) or ``"coarse"`` (0..19, the superclasses).

    Returns:
      ``images`` uint8 ``(n, 32, 32, 3)`` and ``labels`` int32 ``(n,)``.

    Raises:
      MissingDataError: no directory given, or the split's file is missing.
      ValueError: unknown split / label_mode, or a malformed file.
    """
    if split not in CIFAR100_FILES:
        raise ValueError(f"split must be one of {sorted(CIFAR100_FILES)}, got {split!r}")
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    env = os.environ.get("EIGENKIT_CIFAR100")
    if not root and not env:
        raise MissingDataError(
            "CIFAR-100: no directory given. Pass root= (config.data_dir in the experiments) or set EIGENKIT_CIFAR100 "
            f"to the cifar-100-python folder holding train, test and meta; get it with: curl -O {_URL100} && "
            "tar xzf cifar-100-python.tar.gz")
    root = pathlib.Path(root or env)
    path = root / CIFAR100_FILES[split]
    if not path.is_file():
        raise MissingDataError(f"CIFAR-100 not found: {path} is missing (point root at the cifar-100-python folder "
                               f"from {_URL100}, the *python* version)")
    d = read_restricted_pickle(path)
    key = b"fine_labels" if label_mode == "fine" else b"coarse_labels"
    if not isinstance(d, dict) or b"data" not in d or key not in d:
        raise ValueError(f"{path} is not a CIFAR-100 python file (a dict with b'data' and {key!r})")
    data = np.asarray(d[b"data"])
    labels = np.asarray(d[key], dtype=np.int64)
    top = 100 if label_mode == "fine" else 20
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' must be uint8 (n, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) >= top:
        raise ValueError(f"{path}: {key!r} must be {data.shape[0]} ints in 0..{top - 1}, got shape {labels.shape}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int32)


def cifar100_write(path: str | os.PathLike, images: np.ndarray, fine_labels, coarse_labels) -> None:
    """Write a CIFAR-100 python file (``train`` / ``test`` layout, pickle protocol 2) — for tests and replicas."""
    data = _to_rows(images)
    d = {b"filenames": [f"img_{i}.png".encode() for i in range(len(images))], b"batch_label": b"batch",
         b"fine_labels": [int(v) for v in fine_labels], b"coarse_labels": [int(v) for v in coarse_labels],
         b"data": data}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)
