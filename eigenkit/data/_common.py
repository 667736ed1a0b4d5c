"""Conventions shared by every offline loader.

* One loader per source; loaders read **local files only** (installed packages, Debian packages, user paths).
* Preprocessed arrays are cached under :func:`cache_dir` (``$EIGENKIT_CACHE`` or ``~/.cache/eigenkit``).
* Missing data raises :class:`MissingDataError` whose message says exactly what to install.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile
from collections.abc import Callable

import numpy as np


class MissingDataError(FileNotFoundError):
    """A data source is not installed. The message names the package / command that installs it."""


def cache_dir(*parts: str) -> pathlib.Path:
    """The eigenkit cache directory (created on demand): ``$EIGENKIT_CACHE`` or ``~/.cache/eigenkit``."""
    root = pathlib.Path(os.environ.get("EIGENKIT_CACHE", pathlib.Path.home() / ".cache" / "eigenkit"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_package_dir(package: str, *, install_hint: str) -> pathlib.Path:
    """Directory of an installed Python package **without importing it** (several data packages import torch).

    Raises:
      MissingDataError: the package is not installed; the message is ``install_hint``.
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(f"Python package '{package}' is not installed. Install it with: {install_hint}")
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def cached_arrays(name: str, build: Callable[[], dict[str, np.ndarray]], *, key: str = "") -> dict[str, np.ndarray]:
    """Load ``name`` from the cache, or ``build()`` it and cache it atomically (write to a temp file, then rename).

    ``key`` (e.g. the source file's size and the preprocessing settings) is hashed into the file name so stale caches
    are never reused.
    """
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    path = cache_dir() / f"{name}-{digest}.npz"
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError):  # a corrupt cache file is rebuilt, never trusted
            path.unlink(missing_ok=True)
    arrays = build()
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return arrays
