#!/usr/bin/env bash
# Run the whole test suite (creating .venv on first use): ruff, mypy --strict, pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$ROOT/scripts/env.sh")"
cd "$ROOT"
echo "== ruff"; "$PY" -m ruff check omio tests benchmarks
echo "== mypy --strict"; "$PY" -m mypy omio
echo "== pytest"; "$PY" -m pytest "$@"
