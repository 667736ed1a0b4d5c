"""The experiment contract.

Every registered experiment (a method's main experiment, or one of its studies) is a function

    train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result

whose config comes from ``configs/<preset>.py`` (``get_config()``) plus ``--config.KEY=VALUE`` overrides. The
:class:`Result` is typed: its headline :class:`Metric` s carry their per-seed values and say whether they are a
baseline, so the summary writer never guesses from key names. Build the metrics with :class:`SeedSweep`.

Config vocabulary (the same keys in every experiment): ``seed`` or ``seeds``; ``learning_rate``; ``num_steps`` or
``epochs``; ``batch_size`` / ``eval_batch_size``; ``log_every`` / ``eval_every`` / ``checkpoint_every``;
``show_progress``; ``description`` and ``expected_runtime`` (shown by ``python -m experiments list``). The keys that
may change when a run is resumed are :data:`eigenkit.train.RESUMABLE_KEYS`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

E = TypeVar("E", bound=enum.Enum)

#: Config keys that do not change what an experiment computes (presentation and cadence). They are left out of the
#: config hash that decides whether ``run all`` may skip a method whose result already exists.
NON_RESULT_KEYS = frozenset({"description", "expected_runtime", "expected_device", "expected_memory", "show_progress",
                             "log_every", "checkpoint_every", "max_to_keep"})


@dataclasses.dataclass(frozen=True)
class Metric:
    """One headline number of an experiment, with the per-seed values it aggregates.

    ``std`` is the population standard deviation over seeds (``ddof = 0``; NumPy's default, used for every table of
    this project); it is ``None`` for a single value.
    """

    name: str
    values: tuple[float, ...]
    seeds: tuple[int, ...] = ()
    baseline: bool = False
    higher_is_better: bool | None = None
    unit: str = ""

    def __post_init__(self):
        if not self.values:
            raise ValueError(f"metric {self.name!r} has no values")
        if self.seeds and len(self.seeds) != len(self.values):
            raise ValueError(f"metric {self.name!r}: {len(self.values)} values but {len(self.seeds)} seeds")

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float | None:
        return float(np.std(self.values)) if len(self.values) > 1 else None

    def cell(self) -> str:
        """``name m ± s`` (or ``name v``) with 4 significant digits."""
        std = self.std
        return f"{self.name} {_fmt(self.mean)}" + (f" ± {_fmt(std)}" if std is not None else "") + \
            (f" {self.unit}" if self.unit else "")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "mean": self.mean, "std": self.std, "values": list(self.values),
                "seeds": list(self.seeds), "baseline": self.baseline, "higher_is_better": self.higher_is_better,
                "unit": self.unit}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Metric:
        return cls(d["name"], tuple(d["values"]), tuple(d.get("seeds", ())), bool(d.get("baseline", False)),
                   d.get("higher_is_better"), d.get("unit", ""))


@dataclasses.dataclass
class Result:
    """What an experiment returns.

    Attributes:
      metrics: the headline metrics (ours and the baselines of the same run, marked ``baseline=True``).
      extras: other numbers and facts worth keeping (timings, parameter counts, per-cell details); JSON-able.
      artifacts: ``{name: path}`` of files the experiment wrote (plots, tables), paths as written.
      tables: ``{title: markdown}`` tables rendered into the method's results page.
    """

    metrics: list[Metric]
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    artifacts: dict[str, str] = dataclasses.field(default_factory=dict)
    tables: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        names = [m.name for m in self.metrics]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate metric names: {dup}")

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"no metric {name!r}; have {[m.name for m in self.metrics]}")

    def to_json(self) -> dict[str, Any]:
        return {"metrics": [m.to_json() for m in self.metrics], "extras": _jsonable(self.extras),
                "artifacts": dict(self.artifacts), "tables": dict(self.tables)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Result:
        return cls([Metric.from_json(m) for m in d.get("metrics", [])], dict(d.get("extras", {})),
                   dict(d.get("artifacts", {})), dict(d.get("tables", {})))


class SeedSweep:
    """Collects per-seed values of named metrics and turns them into :class:`Metric` s (one helper for every sweep).

    Example:
      >>> sweep = SeedSweep()
      >>> for seed in (0, 1):
      ...     sweep.add("test_accuracy", 0.9 + seed / 100, seed=seed, higher_is_better=True)
      ...     sweep.add("logreg_test_accuracy", 0.8, seed=seed, baseline=True, higher_is_better=True)
      >>> [m.cell() for m in sweep.metrics()]
      ['test_accuracy 0.905 ± 0.005', 'logreg_test_accuracy 0.8 ± 0']
    """

    def __init__(self) -> None:
        self._values: dict[str, list[float]] = {}
        self._seeds: dict[str, list[int]] = {}
        self._meta: dict[str, tuple[bool, bool | None, str]] = {}

    def add(self, name: str, value: float, *, seed: int, baseline: bool = False,
            higher_is_better: bool | None = None, unit: str = "") -> None:
        meta = (baseline, higher_is_better, unit)
        if self._meta.setdefault(name, meta) != meta:
            raise ValueError(f"metric {name!r} added with conflicting baseline/higher_is_better/unit")
        if seed in self._seeds.get(name, []):
            raise ValueError(f"metric {name!r} already has a value for seed {seed}")
        self._values.setdefault(name, []).append(float(value))
        self._seeds.setdefault(name, []).append(int(seed))

    def values(self, name: str) -> list[float]:
        return list(self._values[name])

    def metrics(self) -> list[Metric]:
        return [Metric(n, tuple(v), tuple(self._seeds[n]), *self._meta[n]) for n, v in self._values.items()]


def config_enum(enum_cls: type[E], value: Any, *, key: str) -> E:
    """The member of ``enum_cls`` a config value names: a member itself, its name (any case) or its value.

    The one string -> enum conversion at the config boundary (algorithm variants are enums inside eigenkit).

    Raises:
      ValueError: naming ``key`` and the valid choices.
    """
    if isinstance(value, enum_cls):
        return value
    for m in enum_cls:
        if (isinstance(value, str) and value.upper() == m.name.upper()) or value == m.value:
            return m
    choices = ", ".join(m.name.lower() for m in enum_cls)
    raise ValueError(f"config.{key}={value!r} is not a {enum_cls.__name__}; choose one of: {choices}")


def config_hash(config: Any) -> str:
    """Hash of the effective config without :data:`NON_RESULT_KEYS` (what decides if a result can be reused)."""
    d = _config_dict(config)
    d = {k: v for k, v in d.items() if k not in NON_RESULT_KEYS}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _config_dict(config: Any) -> dict[str, Any]:
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    return json.loads(json.dumps(dict(config), sort_keys=True, default=str))


def _jsonable(x: Any) -> Any:
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    return json.loads(json.dumps(x, default=default))


def _fmt(v: float) -> str:
    return "nan" if isinstance(v, float) and math.isnan(v) else f"{v:.4g}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (floats with 4 significant digits)."""
    cell = lambda v: _fmt(v) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
