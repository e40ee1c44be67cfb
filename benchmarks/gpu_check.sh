#!/usr/bin/env bash
# GPU paths check (issue 13, item 5): AMP training steps, a DDP run over nccl when the machine
# has more than one GPU, an fp16 checkpoint saved on the GPU and loaded on CPU, and the
# ViT-B/32 embedding/export throughput. Prepared for a CUDA machine; CI never runs it, and
# without CUDA it stops at once with exit code 2.
#
# Usage (from anywhere):
#   benchmarks/gpu_check.sh [--work DIR] [--steps N] [--write]
#     --work DIR   working folder (data, runs, the report); default $GPU_CHECK_DIR, else
#                  $OUT, else a new temporary folder
#     --write      also put the report into benchmarks/RESULTS.md ("## GPU check")
# The report is DIR/gpu_check.md; on another machine, put it into RESULTS.md with
#   python benchmarks/gpu_check.py publish DIR/gpu_check.md
# PYTHON (default .venv/bin/python, else python3) picks the interpreter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-.venv/bin/python}
if [[ ! -x "$PY" ]]; then
    PY=python3
fi
exec "$PY" benchmarks/gpu_check.py run "$@"
