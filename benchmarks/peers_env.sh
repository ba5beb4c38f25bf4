#!/usr/bin/env bash
# Create (or reuse) the environments of omio's peers for benchmarks/bench_peers.py, next to benchmarks/.venv
# (omio's own core-install environment, made by benchmarks/env.sh; it also holds tifffile, the limit):
#
#   benchmarks/.venv-bioio   bioio + bioio-ome-tiff + bioio-ome-zarr + bioio-conversion (+ psutil)
#   benchmarks/.venv-omio03  OMIO 0.3 (omio-microscopy==0.3.0, import name `omio` like this checkout, hence its
#                            own environment) (+ psutil)
#
# A peer that fails to install is reported (benchmarks/.venv-<name>/.install-failed holds pip's output) and the
# script goes on; bench_peers.py then marks that peer's rows as "not installed". Git ignores these directories.
# Prints one line per environment: name, python path or FAILED.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OMIO_PY="$(bash "$ROOT/benchmarks/env.sh")" || { echo "benchmarks/env.sh failed" >&2; exit 1; }
BASE="$("$OMIO_PY" -c 'import sys; print(sys._base_executable)')"

make_env() {  # name, pip requirements...
    local name="$1"; shift
    local venv="$ROOT/benchmarks/.venv-$name"
    local stamp="$venv/.installed" failed="$venv/.install-failed"
    if [[ -f "$stamp" ]]; then echo "$name $venv/bin/python"; return 0; fi
    [[ -x "$venv/bin/python" ]] || "$BASE" -m venv "$venv" >&2 || { echo "$name FAILED"; return 0; }
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    if "$venv/bin/python" -m pip install --quiet "$@" psutil >"$failed" 2>&1; then
        rm -f "$failed"
        "$venv/bin/python" -m pip freeze >"$venv/.freeze" 2>/dev/null
        touch "$stamp"
        echo "$name $venv/bin/python"
    else
        echo "pip install $* failed in $venv (see $failed):" >&2
        tail -5 "$failed" >&2
        echo "$name FAILED"
    fi
}

make_env bioio bioio bioio-ome-tiff bioio-ome-zarr bioio-conversion
make_env omio03 "omio-microscopy==0.3.0"
