"""The one results writer: ``<results>/<preset>/summary.json`` + ``summary.md``, a page and a headline plot per method.

Presets never share a file, so a smoke run cannot touch the cpu table. A run replaces only its own method's row;
the row it replaces is appended to ``history.jsonl`` beside the summary, so nothing a run wrote before is lost.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import subprocess
from typing import Any

from experiments._contract import Metric, Result


def machine_info() -> dict[str, Any]:
    """Date, host, cores, Python / jax versions, devices, git commit and load average of this machine."""
    import jax

    devs = jax.devices()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=pathlib.Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        commit = ""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "host": platform.node(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "jax": jax.__version__, "devices": f"{len(devs)} x {devs[0].device_kind}", "commit": commit,
        "loadavg": load,
    }


def preset_dir(results: pathlib.Path, preset: str) -> pathlib.Path:
    return pathlib.Path(results) / preset


def load_rows(results: pathlib.Path, preset: str) -> dict[str, dict]:
    """The rows of ``<results>/<preset>/summary.json`` by experiment name (empty if there is none)."""
    path = preset_dir(results, preset) / "summary.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if data.get("preset") != preset:
        raise ValueError(f"{path} holds preset {data.get('preset')!r}, not {preset!r}")
    return {r["name"]: r for r in data.get("rows", [])}


def make_row(name: str, preset: str, *, status: str, result: Result | None, config_hash: str, config: dict,
             wall_time_s: float, command: str, error: str = "") -> dict:
    row = {"name": name, "preset": preset, "status": status, "config_hash": config_hash,
           "wall_time_s": wall_time_s, "command": command, "machine": machine_info(), "config": config}
    row.update(result.to_json() if result is not None else {"metrics": [], "extras": {}, "artifacts": {},
                                                             "tables": {}})
    if error:
        row["error"] = error
    return row


def update(results: pathlib.Path, preset: str, row: dict) -> pathlib.Path:
    """Put ``row`` into the preset's summary (replacing the same experiment's row, which goes to history.jsonl),
    then re-render summary.md, the experiment's page and its plot. Returns the summary.md path."""
    out = preset_dir(results, preset)
    out.mkdir(parents=True, exist_ok=True)
    rows = load_rows(results, preset)
    old = rows.get(row["name"])
    if old is not None:
        with open(out / "history.jsonl", "a") as f:
            f.write(json.dumps(old) + "\n")
    rows[row["name"]] = row
    _write_json(out / "summary.json", {"preset": preset, "rows": [rows[k] for k in sorted(rows)]})
    render(results, preset)
    return out / "summary.md"


def render(results: pathlib.Path, preset: str) -> None:
    """(Re)write summary.md and every experiment's page ``<name>.md`` and headline plot ``<name>.png``."""
    out = preset_dir(results, preset)
    rows = load_rows(results, preset)
    lines = [f"# eigenkit results — preset `{preset}`", "",
             "Written by `python -m experiments run ... --preset " + preset + "`; each row's command, commit, "
             "machine and config are in summary.json.", "",
             "| experiment | status | eigenkit | baselines (same run) | wall time | commit | date |",
             "|---|---|---|---|---|---|---|"]
    for name in sorted(rows):
        r = rows[name]
        metrics = [Metric.from_json(m) for m in r.get("metrics", [])]
        ours = ", ".join(m.cell() for m in metrics if not m.baseline) or "—"
        base = ", ".join(m.cell() for m in metrics if m.baseline) or "—"
        status = r["status"] if r["status"] == "ok" else f"FAILED: {r.get('error', '')[:160]}"
        mach = r.get("machine", {})
        lines.append(f"| [{name}]({name}.md) | {status} | {ours} | {base} | {r['wall_time_s']:.0f} s | "
                     f"{mach.get('commit', '')} | {mach.get('date_utc', '')} |")
        _write_page(out, r, metrics)
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def _write_page(out: pathlib.Path, row: dict, metrics: list[Metric]) -> None:
    name = row["name"]
    lines = [f"# {name} — preset `{row['preset']}`", "", f"Command: `{row['command']}`  ",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in row.get("machine", {}).items()), ""]
    if row["status"] != "ok":
        lines += [f"**FAILED**: {row.get('error', '')}", ""]
    if metrics:
        lines += ["| metric | baseline | mean | std (ddof 0) | per seed |", "|---|---|---|---|---|"]
        for m in metrics:
            seeds = ", ".join(f"{s}: {v:.4g}" for s, v in zip(m.seeds or range(len(m.values)), m.values))
            std = "" if m.std is None else f"{m.std:.4g}"
            lines.append(f"| {m.name} | {'yes' if m.baseline else ''} | {m.mean:.4g} | {std} | {seeds} |")
        lines.append("")
        if _plot(out / f"{name}.png", name, metrics):
            lines += [f"![{name}]({name}.png)", ""]
    for title, table in row.get("tables", {}).items():
        lines += [f"## {title}", "", table, ""]
    if row.get("artifacts"):
        lines += ["Artifacts: " + ", ".join(f"{k}: `{v}`" for k, v in row["artifacts"].items()), ""]
    (out / f"{name}.md").write_text("\n".join(lines))


def _plot(path: pathlib.Path, title: str, metrics: list[Metric]) -> bool:
    """Horizontal bars of the headline metrics (mean ± std, baselines grey), one panel per unit of measure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups: dict[str, list[Metric]] = {}
    for m in metrics:
        groups.setdefault(_unit_group(m), []).append(m)
    fig, axes = plt.subplots(len(groups), 1, figsize=(7, 0.9 + 0.32 * len(metrics) + 0.5 * len(groups)),
                             squeeze=False)
    for ax, (unit, ms) in zip(axes[:, 0], groups.items()):
        y = range(len(ms))
        ax.barh(list(y), [m.mean for m in ms], xerr=[m.std or 0.0 for m in ms],
                color=["0.65" if m.baseline else "tab:blue" for m in ms], capsize=3)
        ax.set_yticks(list(y), [m.name + (" (baseline)" if m.baseline else "") for m in ms], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _unit_group(m: Metric) -> str:
    arrow = {True: " (higher is better)", False: " (lower is better)", None: ""}[m.higher_is_better]
    return (m.unit or "value") + arrow


def _write_json(path: pathlib.Path, data: Any) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
