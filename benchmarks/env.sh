#!/usr/bin/env bash
# Create (or reuse) benchmarks/.venv: omio with its core dependencies only, plus what the benchmarks need
# (psutil, pylibCZIrw). Benchmarks run here so that they measure what a plain `pip install omio-microscopy`
# costs; the development environment also holds napari, whose scipy dask.array then imports (~25 MB RSS).
# Prints the python path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/benchmarks/.venv"
if [[ ! -x "$VENV/bin/python" ]]; then
    DEV_PY="$(bash "$ROOT/scripts/env.sh")"  # reuse the Python >= 3.12 the project's set-up found
    BASE="$("$DEV_PY" -c 'import sys; print(sys._base_executable)')"
    "$BASE" -m venv "$VENV"
fi
STAMP="$VENV/.omio-installed"
if [[ ! -f "$STAMP" || "$ROOT/pyproject.toml" -nt "$STAMP" ]]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[bench]" >&2
    touch "$STAMP"
fi
echo "$VENV/bin/python"
