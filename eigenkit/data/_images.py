"""Image classification sources: Fashion-MNIST (Debian ``dataset-fashion-mnist``) and scikit-learn digits."""

from __future__ import annotations

import gzip
import os
import pathlib
import struct

import numpy as np

from eigenkit.data._common import MissingDataError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path: pathlib.Path) -> np.ndarray:
    """A gzip-compressed IDX file with an unsigned-byte payload -> ndarray."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(split: str = "train", *, root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Xiao et al. 2017) from the Debian package ``dataset-fashion-mnist``.

    Args:
      split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
      root: directory holding the four ``*-ubyte.gz`` files; default ``$EIGENKIT_FASHION_MNIST`` or
        ``/usr/share/datasets/fashion-mnist``.

    Returns:
      ``images`` uint8 ``(n, 28, 28)`` and ``labels`` int32 ``(n,)`` in ``0..9`` (see ``FASHION_MNIST_CLASSES``).

    Raises:
      MissingDataError: the files are absent (says how to install them).
    """
    if split not in _FILES:
        raise ValueError(f"split must be one of {sorted(_FILES)}, got {split!r}")
    env = os.environ.get("EIGENKIT_FASHION_MNIST")
    source = "the root argument" if root else ("EIGENKIT_FASHION_MNIST" if env else "the default path")
    root = pathlib.Path(root or env or FASHION_MNIST_DIR)
    img_name, lab_name = _FILES[split]
    img_path, lab_path = root / img_name, root / lab_name
    if not (img_path.exists() and lab_path.exists()):
        missing = ", ".join(p.name for p in (img_path, lab_path) if not p.exists())
        if source == "the default path":
            hint = ("Install it with: sudo apt-get install dataset-fashion-mnist (or without root: apt-get download "
                    "dataset-fashion-mnist && dpkg-deb -x dataset-fashion-mnist_*.deb DIR, then set "
                    "EIGENKIT_FASHION_MNIST=DIR/usr/share/datasets/fashion-mnist)")
        else:
            hint = (f"The directory came from {source}" + (f" (EIGENKIT_FASHION_MNIST={env})" if env and not
                    source.startswith("the root") else "") + "; point it at the folder holding the four "
                    "*-ubyte.gz files, or unset it to use " + FASHION_MNIST_DIR)
        raise MissingDataError(f"Fashion-MNIST not found in {root} (missing {missing}). {hint}")
    images, labels = _read_idx(img_path), _read_idx(lab_path)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels.astype(np.int32)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits (offline, inside the wheel).

    Returns:
      ``images`` float32 ``(1797, 8, 8)`` with values in ``[0, 16]`` and ``labels`` int32 ``(1797,)``.

    Raises:
      MissingDataError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDataError("scikit-learn is not installed. Install it with: pip install scikit-learn==1.9.1") from e
    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int32)
