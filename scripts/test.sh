#!/usr/bin/env bash
# Run the whole test suite (creating .venv on first use): ruff, mypy --strict, pytest, the documentation
# (mkdocs --strict) and the notebooks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$ROOT/scripts/env.sh")"
cd "$ROOT"
echo "== ruff"; "$PY" -m ruff check omio tests benchmarks scripts docs
echo "== mypy --strict"; "$PY" -m mypy omio
# napari's viewer tests need a display: a virtual one (Xvfb with Mesa's software OpenGL) where available
if command -v xvfb-run >/dev/null 2>&1; then
    echo "== pytest (virtual display)"; xvfb-run -a "$PY" -m pytest "$@"
else
    echo "== pytest"; "$PY" -m pytest "$@"
fi
echo "== docs (mkdocs --strict)"; NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict --quiet --site-dir site
echo "== notebooks"; "$PY" scripts/run_notebooks.py
