#!/usr/bin/env bash
# One prepared GPU session (at most 9.5 minutes on one H100 / H200): training
# throughput, GFLOP per sample, MFU and peak memory of CFine, the CFine
# baseline, CLIP-ReID and CCAF; eager and torch.compile at the papers'
# batch sizes, and the largest batch that fits (.dev_scripts/gpu_session.py).
#
#   bash .dev_scripts/gpu_session.sh [OUT_DIR] [gpu_session.py options]
#
# OUT_DIR defaults to $OUT (the device machine's result folder), else
# ./gpu_session_out. PYTHON selects the interpreter (default: python3).
# Wheels in $WHEELS (default .whl, made here by .dev_scripts/gpu_wheels.py:
# the OpenMMLab packages and open_clip, which the machines' image lacks)
# are installed first into $GPU_SITE (default /tmp/site, put on
# PYTHONPATH), without dependencies and without an index. An import check
# then stops the script, naming the module, before any GPU time is spent
# on a session that cannot start.
# The CUDA-only tests run next (cuda_tests.txt, at most 2 minutes).
# The Python side starts no unit after --budget-s (420 s); the whole script
# ends within $GPU_SESSION_S seconds (default 570: under a 10-minute
# command limit), the hard stop of the Python side, whose JSON / markdown
# are rewritten after every unit, so a cut-short run keeps what it measured.
set -euo pipefail
SECONDS=0
cd "$(dirname "$0")/.."
out_dir="${1:-${OUT:-gpu_session_out}}"
shift || true
py="${PYTHON:-python3}"
wheels="${WHEELS:-.whl}"
site="${GPU_SITE:-/tmp/site}"
mkdir -p "$out_dir"
shopt -s nullglob
wheel_files=("$wheels"/*.whl)
if (( ${#wheel_files[@]} )); then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$site" "${wheel_files[@]}"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    echo "installed ${#wheel_files[@]} wheels from $wheels into $site"
fi
if ! "$py" -c 'import numpy, torch, mmengine, mmcv, mmpretrain, open_clip
import mmreid_clip
from mmreid_clip.evaluation.functional.rank_kernel import HAS_NUMBA
print("numpy", numpy.__version__, "torch", torch.__version__,
      "mmengine", mmengine.__version__, "mmcv", mmcv.__version__,
      "mmpretrain", mmpretrain.__version__, "open_clip",
      open_clip.__version__, "numba kernel", HAS_NUMBA)' \
        > "$out_dir/imports.txt" 2>&1; then
    cat "$out_dir/imports.txt"
    echo "gpu_session.sh: the packages above do not import with $py;" \
        "make the wheels here with .dev_scripts/gpu_wheels.py and send" \
        "them (carry=['.whl'])" >&2
    exit 3
fi
{
    nvidia-smi || echo 'nvidia-smi not available'
    "$py" -c 'import torch; print(torch.__version__, torch.version.cuda,
torch.cuda.is_available() and torch.cuda.get_device_name(0))'
} > "$out_dir/env.txt" 2>&1
# The tests that only run with CUDA (skipped on CI's CPU machines) and the
# value checks' device behaviour; a failure is reported, not fatal: the
# figures below are still wanted.
if ! timeout 120 "$py" -m pytest -q -p no:cacheprovider \
        tests/test_evaluation/test_ranking.py \
        tests/test_models/test_value_checks.py \
        > "$out_dir/cuda_tests.txt" 2>&1; then
    tail -n 30 "$out_dir/cuda_tests.txt"
    echo "gpu_session.sh: tests failed on this machine (cuda_tests.txt)" >&2
fi
# AOTAutograd's on-disk cache off: with torch 2.11, the GPU image's version,
# the compile phase died twice here in its cache save (a segfault while
# pickling the entry in the first compiled backward; CPU inductor, a cache
# folder that torch 2.14 had also written to), and did not again in fresh
# folders. One session compiles each graph once, so the cache gains nothing.
export TORCHINDUCTOR_AUTOGRAD_CACHE="${TORCHINDUCTOR_AUTOGRAD_CACHE:-0}"
left=$(( ${GPU_SESSION_S:-570} - SECONDS ))
timeout "$(( left > 60 ? left : 60 ))" \
    "$py" .dev_scripts/gpu_session.py --out "$out_dir" "$@" \
    2>&1 | tee "$out_dir/log.txt"
