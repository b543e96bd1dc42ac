#!/usr/bin/env bash
# README main job: install, then the whole chain on the shipped scene with `mobiler2l run`:
#   teacher (Instant-NGP) -> pseudo views streamed to the student -> student -> ONNX -> previews.
# Usage: bash scripts/main.sh [DATA] [PRESET]   (defaults: scenes/toy-360, cpu-toy; `mobiler2l presets` lists them)
# Rerunning resumes: finished stages are skipped, an interrupted training continues from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-scenes/toy-360}
PRESET=${2:-cpu-toy}
bash scripts/install.sh
.venv/bin/mobiler2l run "$DATA" --preset "$PRESET" --out runs
NAME=$(basename "$DATA")
NAME=${NAME%.*}
echo "results: runs/$NAME/renders/strip.png (ground truth | teacher | student | error),"
echo "         runs/$NAME/eval/{teacher,student}.json, runs/$NAME/export/ (ONNX), runs/$NAME/chain.json"
