"""Discovery of experiments.

* A **method** is a package ``experiments/<method>/`` with ``train.py`` (``train_and_evaluate(config, workdir) ->
  Result``) and ``configs/<preset>.py`` (``get_config()``) for the presets smoke, cpu and paper.
* A **study** of a method (an ablation, a stability or size-shift experiment) is a module
  ``experiments/<method>/<study>.py`` listed in the package's ``STUDIES`` tuple; it defines ``PRESETS`` (a tuple of
  preset names), ``get_config(preset)`` and ``train_and_evaluate(config, workdir) -> Result``. It is registered as
  ``<method>.<study>``.
"""

from __future__ import annotations

import importlib
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
PRESETS = ("smoke", "cpu", "paper")


class UnknownExperimentError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def list_methods() -> list[str]:
    """Names of the registered methods (main experiments), sorted."""
    return sorted(
        p.name for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith("_") and p.name != "benchmarks"
        and (p / "train.py").exists() and (p / "configs").is_dir()
    )


def list_studies(method: str | None = None) -> list[str]:
    """Registered studies ``<method>.<study>`` (of one method, or of all), sorted."""
    methods = list_methods() if method is None else [method]
    out = []
    for m in methods:
        for s in getattr(importlib.import_module(f"experiments.{m}"), "STUDIES", ()):
            out.append(f"{m}.{s}")
    return sorted(out)


def list_experiments() -> list[str]:
    return sorted(list_methods() + list_studies())


def _check(name: str) -> tuple[str, str | None]:
    method, _, study = name.partition(".")
    if method not in list_methods() or (study and name not in list_studies(method)):
        raise UnknownExperimentError(f"unknown experiment {name!r}; registered: {', '.join(list_experiments())}")
    return method, study or None


def _study_module(name: str):
    method, study = _check(name)
    return importlib.import_module(f"experiments.{method}.{study}")


def list_presets(name: str) -> list[str]:
    method, study = _check(name)
    if study:
        return list(_study_module(name).PRESETS)
    return [p for p in PRESETS if (ROOT / method / "configs" / f"{p}.py").exists()]


def get_config(name: str, preset: str):
    """The ``ml_collections.ConfigDict`` of experiment ``name`` (a method or ``method.study``) at ``preset``.

    Raises:
      UnknownExperimentError: unknown experiment or preset (the message lists the valid ones).
    """
    method, study = _check(name)
    presets = list_presets(name)
    if preset not in presets:
        raise UnknownExperimentError(f"unknown preset {preset!r} for {name}; available: {', '.join(presets)}")
    if study:
        return _study_module(name).get_config(preset)
    return importlib.import_module(f"experiments.{method}.configs.{preset}").get_config()


def get_train_fn(name: str):
    """``train_and_evaluate(config, workdir) -> Result`` of experiment ``name``."""
    method, study = _check(name)
    if study:
        return _study_module(name).train_and_evaluate
    return importlib.import_module(f"experiments.{method}.train").train_and_evaluate
