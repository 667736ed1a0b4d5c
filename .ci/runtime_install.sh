#!/usr/bin/env bash
# A clean virtual environment with `pip install .` (runtime dependencies only, no extras) must import every public
# module of eigenkit. Catches a runtime import of a package that only an extra provides.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip 2>/dev/null
"$tmp/venv/bin/python" -m pip install -q . 2>&1 | grep -v "^WARNING: Location" || true
cd "$tmp"  # import the installed package, not the source tree
"$tmp/venv/bin/python" - <<'PYEOF'
import importlib
import pkgutil

import eigenkit

assert "site-packages" in eigenkit.__file__, eigenkit.__file__
names = sorted(m.name for m in pkgutil.walk_packages(eigenkit.__path__, "eigenkit.")
               if not any(part.startswith("_") for part in m.name.split(".")))
for name in names:
    importlib.import_module(name)
print(f"runtime-only install: imported eigenkit and {len(names)} public modules: {', '.join(names)}")
PYEOF
