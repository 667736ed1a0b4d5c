"""The experiment runner, the one command line of every experiment.

    python -m experiments list
    python -m experiments run <name>|all --preset smoke|cpu|paper [--workdir DIR] [--results DIR] [--force]
                              [--config.KEY=VALUE ...]
    python -m experiments summarize [--preset P] [--results DIR]

``<name>`` is a method (``s4d``) or one of its studies (``s4d.ablation``); ``all`` is every method's main
experiment. ``run all --preset cpu`` is the project's main job. Results go to ``<results>/<preset>/summary.md`` and
``summary.json`` (one row per experiment, with its metrics, baselines, command, machine and config), a page and a
headline plot per experiment beside them; each run's checkpoints and logs go to ``<workdir>/<name>/<preset>``.

* Presets never share a results file, and a run replaces only its own row (the old row is kept in history.jsonl).
* ``run all`` is resumable: an experiment whose row already exists with the same effective config is skipped
  (``--force`` reruns it); an interrupted experiment resumes from its checkpoints.
* ``--config.KEY=VALUE`` overrides a config value (``--config.num_steps=3``, ``--config.head_dims='(8,)'``);
  the value is parsed as the type the key has in the preset.
* Expected failures (missing data, a checkpoint written with another config, an unknown name) are one line on
  stderr and exit status 2; ``run all`` records them in the table and goes on with the other methods.
"""

from __future__ import annotations

import argparse
import ast
import logging
import pathlib
import sys
import time
import traceback


class ConfigOverrideError(ValueError):
    """A ``--config.KEY=VALUE`` argument names no key of the preset or has a value of the wrong type."""


def setup_logging() -> None:
    """One logging setup for every experiment: our own lines on stdout, library INFO chatter (Orbax, absl) off."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("absl", "orbax", "jax"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.WARNING)
    except ImportError:  # pragma: no cover - absl comes with the experiments extra
        pass


def _parse_value(raw: str, current):
    if isinstance(current, bool):
        low = raw.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ConfigOverrideError(f"expected true/false, got {raw!r}")
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, str):
        return raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if current is None:
            return raw
        raise ConfigOverrideError(f"cannot parse {raw!r} as a Python literal") from None
    if isinstance(current, tuple) and isinstance(value, list | int | float | str):
        value = tuple(value) if isinstance(value, list) else (value,)
    return value


def apply_overrides(config, overrides: list[str]):
    """Apply ``--config.a.b=VALUE`` (or ``--config.a.b VALUE``) arguments to ``config`` in place; returns it.

    Raises:
      ConfigOverrideError: an unknown key, a malformed argument or a value that does not parse as the key's type.
    """
    items: list[tuple[str, str]] = []
    it = iter(overrides)
    for arg in it:
        if not arg.startswith("--config."):
            raise ConfigOverrideError(f"unexpected argument {arg!r} (config overrides look like --config.KEY=VALUE)")
        key, eq, raw = arg[len("--config."):].partition("=")
        if not eq:
            raw = next(it, None)
            if raw is None:
                raise ConfigOverrideError(f"{arg} needs a value")
        items.append((key, raw))
    for key, raw in items:
        node, parts = config, key.split(".")
        for p in parts[:-1]:
            if p not in node:
                raise ConfigOverrideError(f"--config.{key}: no key {p!r} in the config")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigOverrideError(f"--config.{key}: the preset has no key {parts[-1]!r}; keys: "
                                      + ", ".join(sorted(node.keys())))
        current = node[parts[-1]]
        try:
            value = _parse_value(raw, current)
            node[parts[-1]] = value
        except (ConfigOverrideError, TypeError, ValueError) as e:
            raise ConfigOverrideError(f"--config.{key}={raw}: {e}") from None
    return config


def _expected_errors() -> tuple[type[BaseException], ...]:
    from eigenkit.data import MissingDataError
    from eigenkit.train import CheckpointMismatchError
    from experiments._registry import UnknownExperimentError

    return (MissingDataError, CheckpointMismatchError, UnknownExperimentError, ConfigOverrideError)


def run(names: list[str], preset: str, workdir: pathlib.Path, results: pathlib.Path, command: str, *,
        overrides: list[str] = (), force: bool = False) -> int:
    """Run ``names`` at ``preset`` in turn; returns the exit status (0 ok, 1 a method failed, 2 expected error)."""
    from eigenkit.train import initialize_distributed
    from experiments import _contract, _registry, _summary

    setup_logging()
    initialize_distributed()
    expected = _expected_errors()
    try:  # fail fast on unknown names and bad overrides, before anything runs
        configs = {n: apply_overrides(_registry.get_config(n, preset), list(overrides)) for n in names}
    except expected as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    done = _summary.load_rows(results, preset)
    status = 0
    for i, name in enumerate(names, 1):
        config = configs[name]
        chash = _contract.config_hash(config)
        head = f"== [{i}/{len(names)}] {name} ({preset})"
        old = done.get(name)
        if not force and old is not None and old["status"] == "ok" and old.get("config_hash") == chash:
            print(f"{head}: skipped — {results / preset / 'summary.json'} already has its result for this config "
                  f"(from {old.get('machine', {}).get('date_utc', '?')}; --force reruns)", flush=True)
            continue
        print(f"{head}: {config.get('description', '')} — expected {config.get('expected_runtime', '?')}", flush=True)
        for key in ("expected_device", "expected_memory"):  # what a paper-scale run needs, before it starts
            if config.get(key):
                print(f"   {key.removeprefix('expected_')}: {config[key]}", flush=True)
        t0 = time.perf_counter()
        result, error, state = None, "", "ok"
        try:
            result = _registry.get_train_fn(name)(config, str(workdir / name / preset))
            if not isinstance(result, _contract.Result):
                raise TypeError(f"{name}'s train_and_evaluate returned {type(result).__name__}, not a Result")
        except expected as e:
            error, state = f"{type(e).__name__}: {e}", "failed"
            print(f"error: {name}: {e}", file=sys.stderr, flush=True)
            status = max(status, 2 if len(names) == 1 else 1)
        except Exception as e:  # noqa: BLE001 - report, keep the traceback, go on with the other methods
            traceback.print_exc()
            error, state = f"{type(e).__name__}: {e}", "failed"
            status = max(status, 1)
        wall = time.perf_counter() - t0
        row = _summary.make_row(name, preset, status=state, result=result, config_hash=chash,
                                config=_contract._config_dict(config), wall_time_s=wall, command=command,
                                error=error)
        md = _summary.update(results, preset, row)
        if result is not None:
            ours = ", ".join(m.cell() for m in result.metrics if not m.baseline)
            base = ", ".join(m.cell() for m in result.metrics if m.baseline)
            print(f"-> {name} ok in {wall:.0f} s: {ours}" + (f" | baselines: {base}" if base else ""), flush=True)
        else:
            print(f"-> {name} FAILED after {wall:.0f} s: {error[:300]}", flush=True)
        print(f"   results: {md}", flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog="python -m experiments", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="registered experiments, their presets and expected runtimes")
    sm = sub.add_parser("summarize", help="re-render <results>/<preset>/summary.md and the pages from summary.json")
    sm.add_argument("--preset", default="cpu")
    sm.add_argument("--results", default="results")
    r = sub.add_parser("run", help="run one experiment, or all methods, at a preset")
    r.add_argument("name", help="a method, a study (method.study), or 'all' (every method)")
    r.add_argument("--preset", default="cpu", help="smoke | cpu | paper (default cpu)")
    r.add_argument("--workdir", default="workdirs", help="root of the run directories (default ./workdirs)")
    r.add_argument("--results", default="results", help="root of the results tables (default ./results)")
    r.add_argument("--force", action="store_true", help="rerun experiments whose result already exists")
    args, extra = p.parse_known_args(argv)
    if extra and args.cmd != "run":
        p.error(f"unrecognized arguments: {' '.join(extra)}")

    from experiments import _registry, _summary

    if args.cmd == "list":
        for name in _registry.list_experiments():
            presets = _registry.list_presets(name)
            first = _registry.get_config(name, "cpu" if "cpu" in presets else presets[0])
            print(f"{name}\n    {first.get('description', '')}")
            for pr in presets:
                print(f"    --preset {pr:6s} {_registry.get_config(name, pr).get('expected_runtime', '?')}")
        return 0
    if args.cmd == "summarize":
        _summary.render(pathlib.Path(args.results), args.preset)
        print((pathlib.Path(args.results) / args.preset / "summary.md").read_text())
        return 0
    names = _registry.list_methods() if args.name == "all" else [args.name]
    command = "python -m experiments " + " ".join(argv)
    return run(names, args.preset, pathlib.Path(args.workdir), pathlib.Path(args.results), command,
               overrides=extra, force=args.force)


if __name__ == "__main__":
    sys.exit(main())
