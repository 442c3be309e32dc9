#!/usr/bin/env bash
# Distributed training with torchrun; on CPU-only machines gloo is used.
#   bash tools/dist_train.sh CONFIG NPROC [train.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT as usual. The Python is
# .venv/bin/python when there is one (else python3); PYTHON=... overrides.
# The batch size of the config is per process (CLIP-ReID / CCAF included:
# docs/methods/ccaf.md section 9).
set -e
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR=$(cd "$(dirname "$0")" && pwd)
# the project's virtual environment first (make install creates it), then
# python3 / python on the PATH; PYTHON=... overrides
if [ -z "$PYTHON" ]; then
    if [ -x "$DIR/../.venv/bin/python" ]; then
        PYTHON="$DIR/../.venv/bin/python"
    elif command -v python3 > /dev/null; then
        PYTHON=python3
    else
        PYTHON=python
    fi
fi
echo "$(basename "$0"): $PYTHON -m torch.distributed.run, $NPROC processes" >&2
PYTHONPATH="$DIR/..:$PYTHONPATH" \
$PYTHON -m torch.distributed.run \
    --nnodes=$NNODES --node_rank=$NODE_RANK --master_addr=$MASTER_ADDR \
    --nproc_per_node=$NPROC --master_port=$PORT \
    "$DIR/train.py" "$CONFIG" --launcher pytorch "${@:3}"
