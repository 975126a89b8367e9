#!/usr/bin/env bash
# README command 1: set everything up, then prepare the demo shop, train, build the bundle and
# serve API + UI on http://127.0.0.1:8000. Extra arguments go to `explainrec demo`.
#   bash scripts/demo.sh [--port 8000] [--workdir artifacts]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
exec .venv/bin/explainrec demo "$@"
