"""Shared output of the benchmark scripts."""

from __future__ import annotations

import json
import pathlib


def write_result(result: dict, out: str | pathlib.Path) -> None:
    """Write ``result`` as indented JSON to ``out`` (parents created) and echo it to stdout."""
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    out.write_text(text)
    print(text)
