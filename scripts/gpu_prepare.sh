#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine that reaches no package registry and no
# ../shared folder (the device tool of docs/gpu.md), into the git-ignored folder .gpu/:
#   - wheels, for that machine's Python 3.12, of the packages its image lacks or holds at another
#     version (pydantic and its parts, pandas 3); torch, lightning, numpy, scipy and the rest are there;
#   - the MovieLens-100K files the loader reads (GroupLens terms: copied, never committed);
#   - a cache folder for the run (configs/ml100k.yaml reads no item text, so no text model travels).
# It ends by running the check's training command here on the CPU for one epoch, from .gpu alone.
#   bash scripts/gpu_prepare.sh [MOVIELENS_100K_DIR]     # default ../shared/data/ml-100k
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/ml-100k}
[ -x .venv/bin/python ] || { echo "run bash scripts/setup.sh first" >&2; exit 1; }
[ -f "$DATA/u.data" ] || { echo "$DATA: not a MovieLens-100K folder (no u.data)" >&2; exit 1; }

rm -rf .gpu
mkdir -p .gpu/wheels .gpu/ml-100k .gpu/cache
cp "$DATA"/u.data "$DATA"/u.item "$DATA"/u.user "$DATA"/u.genre "$DATA"/u.occupation .gpu/ml-100k/

# The versions this checkout runs with (pyproject.toml pins), so the device runs the same code paths.
versions=$(.venv/bin/python - <<'EOF'
from importlib.metadata import version
names = ["pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions", "pandas"]
print(" ".join(f"{n}=={version(n)}" for n in names))
EOF
)
echo "[gpu_prepare] wheels for Python 3.12: $versions"
# shellcheck disable=SC2086  # one argument per requirement
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels $versions

echo "[gpu_prepare] the check's training command, here on the CPU for one epoch, from .gpu alone"
EXPLAINREC_CACHE="$PWD/.gpu/cache" OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
  .venv/bin/explainrec bench train --config configs/ml100k.yaml --set data.path=.gpu/ml-100k \
  --max-epochs 1 --json .gpu/cpu-smoke.json >/dev/null
rm .gpu/cpu-smoke.json
du -sh .gpu
echo "[gpu_prepare] ready: run(command=\"bash scripts/gpu_check.sh\", carry=[\".gpu\"], timeout_s=420)"
