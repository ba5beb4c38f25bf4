#!/usr/bin/env bash
# Install omio into .venv and run the main job on a small generated sample:
# open it, print its summary, write a zlib-compressed OME-TIFF and read it back.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$ROOT/scripts/env.sh")"
"$PY" -m omio demo --output "$ROOT/demo-output" "$@"
