#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one short run on a GPU machine (docs/gpu.md): training
# throughput and time to the best validation NDCG@10 on MovieLens-100K in bf16-mixed at batch 512,
# against fp32 at the same batch and fp32 at the shipped batch of 64, all on the GPU.
#
# Prepared here by `bash scripts/gpu_prepare.sh` (wheels, data and a cache folder in .gpu/), then, with
# the device tool, one call:
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=420)
# Reports land in $OUT (the tool's folder that comes back): env.txt, one JSON and log per run,
# summary.txt. A dry run on this CPU machine (no install, one epoch each):
#   PYTHON=.venv/bin/python GPU_CHECK_INSTALL=0 GPU_CHECK_MAX_EPOCHS=1 OUT=/tmp/gpu-out bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
[ -d .gpu/ml-100k ] || { echo "no .gpu/ folder: run bash scripts/gpu_prepare.sh first and carry .gpu" >&2; exit 2; }

if [ "${GPU_CHECK_INSTALL:-1}" = 1 ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .gpu/wheels/*.whl || exit 3
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" EXPLAINREC_CACHE="$PWD/.gpu/cache" PYTHONUNBUFFERED=1

{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"
  "$PY" - <<'EOF'
import platform, torch, lightning, numpy, pandas, pydantic
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "lightning", lightning.__version__, "numpy", numpy.__version__, "pandas", pandas.__version__,
      "pydantic", pydantic.VERSION)
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
      "bf16", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
try:
    import faiss
    print("faiss", faiss.__version__, "gpus", faiss.get_num_gpus())
except ImportError as exc:
    print("faiss: not importable here:", exc)
EOF
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

epochs=()
[ -n "${GPU_CHECK_MAX_EPOCHS:-}" ] && epochs=(--max-epochs "$GPU_CHECK_MAX_EPOCHS")
status=0
train() {  # name, then bench train options
  local name=$1
  shift
  echo "== $name"
  timeout "${GPU_CHECK_RUN_TIMEOUT_S:-120}" "$PY" -m explainrec.cli bench train --config configs/ml100k.yaml \
    --set data.path=.gpu/ml-100k "${epochs[@]}" "$@" --json "$OUT/$name.json" >"$OUT/$name.log" 2>&1 \
    || { echo "$name failed (rc $?), see $name.log"; tail -5 "$OUT/$name.log"; status=1; }
}
train train-bf16-b512 --precision bf16-mixed --batch-size 512
train train-fp32-b512 --precision 32-true --batch-size 512
train train-fp32-b64 --precision 32-true

"$PY" - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for name in ("train-bf16-b512", "train-fp32-b512", "train-fp32-b64"):
    path = out / f"{name}.json"
    if not path.is_file():
        print(f"{name}: no report")
        continue
    r = json.loads(path.read_text())
    print(f"{name}: device {r['device']} precision {r['precision']} batch {r['batch_size']} "
          f"samples/s median {r['samples_per_s_median']:.0f} best val NDCG@10 {r['best_val_ndcg@10']:.4f} "
          f"(epoch {r['best_epoch']}) seconds to best {r['seconds_to_best']:.1f} fit {r['fit_seconds']:.1f} s")
EOF
exit $status
