"""The experiment runner.

    python -m experiments list
    python -m experiments run <method>|all --preset smoke|cpu|paper [--workdir DIR] [--results DIR]

``run all --preset cpu`` is the project's main job: it runs every registered method's preset in turn and writes
``<results>/summary.md`` and ``<results>/summary.json`` (one row per method: its metrics, the baseline, wall time),
plus each method's own ``metrics.json`` under ``<workdir>/<method>/<preset>``. A method that fails is reported in
the table and the runner exits non-zero after the others have run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import time
import traceback


def _machine() -> dict:
    import jax

    devs = jax.devices()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=pathlib.Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "host": platform.node(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "jax": jax.__version__, "devices": f"{len(devs)} x {devs[0].device_kind}", "commit": commit,
    }


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _headline(metrics: dict) -> list[str]:
    """Readable cells: ``x_mean``/``x_std`` (or ``x``/``x_std``) pairs merged as ``x m ± s``; per-seed values and
    timings are left to summary.json."""
    out = []
    for k, v in metrics.items():
        if re.search(r"(_std|_seed\d+|_time_s|_s)$", k) or "seconds" in k or k.startswith("time_"):
            continue
        base = k[: -len("_mean")] if k.endswith("_mean") else k
        std = metrics.get(base + "_std")
        out.append(f"{base} {_fmt(v)} ± {_fmt(std)}" if isinstance(std, float) else f"{base} {_fmt(v)}")
    return out


def write_summary(rows: list[dict], results: pathlib.Path, preset: str, command: str) -> None:
    results.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    for r in rows:  # each row remembers the command and machine that produced it (rows may be merged)
        r.setdefault("command", command)
        r.setdefault("machine", machine)
    (results / "summary.json").write_text(json.dumps(
        {"preset": preset, "command": command, "machine": machine, "rows": rows}, indent=2))
    commands = sorted({r["command"] for r in rows})
    lines = [
        f"# eigenkit results — preset `{preset}`", "",
        "Command: " + "; ".join(f"`{c}`" for c in commands) + "  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), "",
        "| method | status | metrics | baseline | wall time |", "|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["method"]):
        m = r.get("metrics", {})
        ours = ", ".join(_headline({k: v for k, v in m.items() if not k.startswith("baseline_")}))
        base = ", ".join(_headline({k[len("baseline_"):]: v for k, v in m.items() if k.startswith("baseline_")}))
        status = r["status"] if r["status"] == "ok" else f"FAILED: {r.get('error', '')[:120]}"
        lines.append(f"| {r['method']} | {status} | {ours} | {base or '—'} | {r['wall_time_s']:.0f} s |")
    (results / "summary.md").write_text("\n".join(lines) + "\n")


def _previous_rows(results: pathlib.Path, preset: str, methods: list[str]) -> list[dict]:
    """Rows of other methods from an earlier summary of the same preset (``--merge``)."""
    path = results / "summary.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    if old.get("preset") != preset:
        return []
    return [r for r in old.get("rows", []) if r["method"] not in methods]


def run(methods: list[str], preset: str, workdir: pathlib.Path, results: pathlib.Path, command: str,
        merge: bool = False) -> int:
    from eigenkit.train import initialize_distributed
    from experiments import _registry

    initialize_distributed()
    configs = {m: _registry.get_config(m, preset) for m in methods}  # fail fast on unknown names
    rows = _previous_rows(results, preset, methods) if merge else []
    failed = 0
    for m in methods:
        t0 = time.perf_counter()
        print(f"== {m} [{preset}]: {configs[m].get('description', '')} "
              f"(expected {configs[m].get('expected_runtime', '?')})", flush=True)
        try:
            metrics = _registry.get_train_fn(m)(configs[m], str(workdir / m / preset))
            rows.append({"method": m, "status": "ok", "metrics": metrics,
                         "wall_time_s": time.perf_counter() - t0})
        except Exception as e:  # noqa: BLE001 - report and continue with the other methods
            traceback.print_exc()
            failed += 1
            rows.append({"method": m, "status": "failed", "error": f"{type(e).__name__}: {e}",
                         "metrics": {}, "wall_time_s": time.perf_counter() - t0})
        print(json.dumps(rows[-1], default=str), flush=True)
        write_summary(rows, results, preset, command)
    print(f"summary written to {results / 'summary.md'}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m experiments", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list registered methods and their presets")
    sm = sub.add_parser("summarize", help="re-render <results>/summary.md from summary.json")
    sm.add_argument("--results", default="results")
    r = sub.add_parser("run", help="run one method, or all, at a preset")
    r.add_argument("method", help="a registered method, or 'all'")
    r.add_argument("--preset", default="cpu", help="smoke | cpu | paper (default cpu)")
    r.add_argument("--workdir", default="workdirs", help="root of the run directories (default ./workdirs)")
    r.add_argument("--results", default="results", help="where summary.md/json go (default ./results)")
    r.add_argument("--merge", action="store_true",
                   help="keep the other methods' rows of an earlier summary of this preset (default: start anew)")
    args = p.parse_args(argv)

    from experiments import _registry

    if args.cmd == "list":
        for m in _registry.list_methods():
            print(f"{m:16s} presets: {', '.join(_registry.list_presets(m))}")
        return 0
    if args.cmd == "summarize":
        results = pathlib.Path(args.results)
        old = json.loads((results / "summary.json").read_text())
        write_summary(old["rows"], results, old["preset"], old["command"])
        print((results / "summary.md").read_text())
        return 0
    methods = _registry.list_methods() if args.method == "all" else [args.method]
    try:
        for m in methods:
            _registry.get_config(m, args.preset)
    except _registry.UnknownExperimentError as e:
        p.error(str(e))
    command = "python -m experiments " + " ".join(argv)
    return run(methods, args.preset, pathlib.Path(args.workdir), pathlib.Path(args.results), command,
               merge=args.merge)


if __name__ == "__main__":
    sys.exit(main())
