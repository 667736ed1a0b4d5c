"""Loading the official (PyTorch) code from a user's checkout (``--official-src PATH``), shared by the parity-fixture
scripts and the benchmarks. Nothing here is vendored: the code is read from the user's path at run time."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess


def load_module_from_file(path: pathlib.Path, name: str):
    """Import the Python file ``path`` as module ``name`` (without putting its folder on ``sys.path``).

    Raises:
      FileNotFoundError: ``path`` does not exist (the message says which ``--official-src`` layout is expected).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is --official-src the root of the official repository?")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def git_commit(src: pathlib.Path, given: str | None = None) -> str:
    """``given``, else the HEAD commit of the checkout ``src``, else ``"unknown"``."""
    if given:
        return given
    try:
        return subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
