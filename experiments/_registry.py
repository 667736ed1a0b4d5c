"""Discovery of experiments: every ``experiments/<name>/`` package with ``train.py`` and ``configs/<preset>.py``."""

from __future__ import annotations

import importlib
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
PRESETS = ("smoke", "cpu", "paper")


class UnknownExperimentError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def list_methods() -> list[str]:
    """Names of the registered experiments, sorted."""
    return sorted(
        p.name for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith("_") and p.name != "benchmarks"
        and (p / "train.py").exists() and (p / "configs").is_dir()
    )


def list_presets(method: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / method / "configs").glob("*.py") if p.stem in PRESETS)


def get_config(method: str, preset: str):
    """The ``ml_collections.ConfigDict`` of ``method``'s ``preset``.

    Raises:
      UnknownExperimentError: unknown method or preset (the message lists the valid ones).
    """
    methods = list_methods()
    if method not in methods:
        raise UnknownExperimentError(f"unknown method {method!r}; registered methods: {', '.join(methods)}")
    presets = list_presets(method)
    if preset not in presets:
        raise UnknownExperimentError(f"unknown preset {preset!r} for {method}; available: {', '.join(presets)}")
    return importlib.import_module(f"experiments.{method}.configs.{preset}").get_config()


def get_train_fn(method: str):
    """``experiments.<method>.train.train_and_evaluate``."""
    if method not in list_methods():
        raise UnknownExperimentError(f"unknown method {method!r}; registered methods: {', '.join(list_methods())}")
    return importlib.import_module(f"experiments.{method}.train").train_and_evaluate
