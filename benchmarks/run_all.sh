#!/bin/sh
# Run every benchmark (benchmarks/bench_*.py) and print a summary; arguments go to `python -m benchmarks`,
# e.g. `bash benchmarks/run_all.sh import sweep` or `bash benchmarks/run_all.sh --write-results`.
# MLXP is measured from benchmarks/.venv-mlxp, created on first use (pip install mlxp; skipped when offline).
# PYTHON chooses the interpreter: a real binary is best (a pyenv shim adds ~100 ms to each start it makes).
set -e
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m benchmarks "$@"
