#!/usr/bin/env bash
# README main job: install, train the teacher on the shipped scene, render the test views as PNGs.
# Usage: bash scripts/main.sh [DATA] [STEPS]   (defaults: scenes/toy-360, 600 steps)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-scenes/toy-360}
STEPS=${2:-600}
NAME=$(basename "$DATA")
bash scripts/install.sh
.venv/bin/ns-train mobiler2l-teacher --vis tensorboard \
  --output-dir outputs --experiment-name "$NAME" --timestamp main \
  --max-num-iterations "$STEPS" --steps-per-save "$STEPS" \
  --steps-per-eval-image 100000 --steps-per-eval-all-images 100000 \
  blender-data --data "$DATA"
CONFIG="outputs/$NAME/mobiler2l-teacher/main/config.yml"
.venv/bin/ns-eval --load-config "$CONFIG" --output-path "renders/$NAME/teacher-eval.json"
.venv/bin/ns-render dataset --load-config "$CONFIG" --split test --image-format png \
  --rendered-output-names rgb gt-rgb --output-path "renders/$NAME/teacher"
echo "Teacher test renders: renders/$NAME/teacher/test/rgb/*.png (ground truth beside them in gt-rgb/)"
