#!/usr/bin/env bash
# README main job: install, then the whole chain on the shipped scene:
#   teacher (Instant-NGP) -> pseudo views streamed to the student -> student -> ONNX -> PNG renders.
# Usage: bash scripts/main.sh [DATA] [TEACHER_STEPS] [STUDENT_STEPS]
#        (defaults: scenes/toy-360, 800, 2000; the presets follow the device: CUDA if present, else CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-scenes/toy-360}
TEACHER_STEPS=${2:-800}
STUDENT_STEPS=${3:-2000}
NAME=$(basename "$DATA")
OUT=outputs/$NAME
RENDERS=renders/$NAME
bash scripts/install.sh
BIN=.venv/bin
COMMON=(--vis tensorboard --output-dir outputs --experiment-name "$NAME" --timestamp main
        --steps-per-eval-image 100000 --steps-per-eval-all-images 100000)

echo "== 1/4 teacher: ns-train mobiler2l-teacher ($TEACHER_STEPS steps)"
"$BIN/ns-train" mobiler2l-teacher "${COMMON[@]}" \
  --max-num-iterations "$TEACHER_STEPS" --steps-per-save "$TEACHER_STEPS" \
  blender-data --data "$DATA"
TEACHER="$OUT/mobiler2l-teacher/main/config.yml"
"$BIN/ns-eval" --load-config "$TEACHER" --output-path "$RENDERS/teacher-eval.json"

echo "== 2/4 student: ns-train mobiler2l-small on teacher pseudo views + real images ($STUDENT_STEPS steps)"
"$BIN/ns-train" mobiler2l-small "${COMMON[@]}" \
  --max-num-iterations "$STUDENT_STEPS" --steps-per-save "$STUDENT_STEPS" \
  --pipeline.datamanager.teacher-config "$TEACHER" \
  --pipeline.datamanager.pseudo-count 400 \
  --pipeline.datamanager.real-share 0.25 \
  --pipeline.datamanager.finetune-steps 200 \
  blender-data --data "$DATA"
STUDENT="$OUT/mobiler2l-small/main/config.yml"
"$BIN/ns-eval" --load-config "$STUDENT" --output-path "$RENDERS/student-eval.json"

echo "== 3/4 export: ns-export mobiler2l-onnx"
"$BIN/ns-export" mobiler2l-onnx --load-config "$STUDENT" --output-dir "exports/$NAME"

echo "== 4/4 renders"
"$BIN/ns-render" dataset --load-config "$TEACHER" --split test --image-format png \
  --rendered-output-names rgb gt-rgb --output-path "$RENDERS/teacher"
"$BIN/ns-render" dataset --load-config "$STUDENT" --split test --image-format png \
  --rendered-output-names rgb --output-path "$RENDERS/student"
"$BIN/mobiler2l-render" "exports/$NAME" --out "$RENDERS/onnx-view.png"
"$BIN/mobiler2l-render" "exports/$NAME" --orbit 24 --out "$RENDERS/onnx-orbit.gif"
"$BIN/python" -m mobiler2l_ns.utils.strip "$RENDERS" --out "$RENDERS/strip.png"
echo "done: $RENDERS/strip.png (ground truth | teacher | student), $RENDERS/*-eval.json, exports/$NAME/"
