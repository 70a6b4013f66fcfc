#!/usr/bin/env bash
# The one device check of issue 12, for a lent GPU (run through the `device` tool, then give it back):
# attention parity (reference == fused) in float32 and bfloat16, GPT-2-small training tokens/s and MFU.
# Writes $OUT/gpu_check.json (or runs/gpu/). On a CPU: benchmarks/gpu.sh --device cpu --dry-run
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
PYTHONPATH=src "$PY" benchmarks/gpu_check.py --out "${OUT:-runs/gpu}" "$@"
