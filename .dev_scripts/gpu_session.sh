#!/usr/bin/env bash
# One prepared GPU session (about 8 minutes on one H100 / H200): training
# throughput, GFLOP per sample, MFU and peak memory of CFine, the CFine
# baseline, CLIP-ReID and CCAF; eager and torch.compile at the papers'
# batch sizes, and the largest batch that fits (.dev_scripts/gpu_session.py).
#
#   bash .dev_scripts/gpu_session.sh [OUT_DIR] [gpu_session.py options]
#
# OUT_DIR defaults to $OUT (the device machine's result folder), else
# ./gpu_session_out. PYTHON selects the interpreter (default: python).
# The Python side starts no unit after --budget-s (420 s); the timeout
# below is the hard stop, and the JSON / markdown are rewritten after every
# unit, so a cut-short run keeps what it measured.
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir="${1:-${OUT:-gpu_session_out}}"
shift || true
py="${PYTHON:-python}"
mkdir -p "$out_dir"
{
    nvidia-smi || echo 'nvidia-smi not available'
    "$py" -c 'import torch; print(torch.__version__, torch.version.cuda,
torch.cuda.is_available() and torch.cuda.get_device_name(0))'
} > "$out_dir/env.txt" 2>&1
timeout 500 "$py" .dev_scripts/gpu_session.py --out "$out_dir" "$@" \
    2>&1 | tee "$out_dir/log.txt"
