#!/usr/bin/env bash
# Copy what the device run reads of lego-400 into the ignored folder .device-data/lego-400 (~16 MB):
# the 100 training views and the first TEST_VIEWS test views (RGB only), so that it travels to the
# GPU machine with the working tree (device tool: carry=[".whl", ".device-data"]).
#   bash scripts/device-data.sh [SCENE] [TEST_VIEWS]
set -euo pipefail
cd "$(dirname "$0")/.."
SCENE=${1:-../shared/data/blender-lego-400}
TEST_VIEWS=${2:-20}
[ -f "$SCENE/transforms_train.json" ] || { echo "error: $SCENE/transforms_train.json not found (expected a Blender scene)" >&2; exit 2; }
DEST=.device-data/lego-400
rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp/train" "$DEST.tmp/test"
cp "$SCENE"/train/*.png "$DEST.tmp/train/"
cp "$SCENE/transforms_train.json" "$DEST.tmp/"
"${PYTHON:-python3}" - "$SCENE" "$DEST.tmp" "$TEST_VIEWS" <<'PY'
import json, shutil, sys
from pathlib import Path
scene, dest, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
meta = json.loads((scene / "transforms_test.json").read_text())
frames = meta["frames"]
keep = [frames[round(i * len(frames) / count)] for i in range(count)]
for frame in keep:
    name = frame["file_path"].lstrip("./") + ".png"
    shutil.copy(scene / name, dest / name)
meta["frames"] = keep
(dest / "transforms_test.json").write_text(json.dumps(meta, indent=1))
(dest / "transforms_val.json").write_text(json.dumps(meta, indent=1))
PY
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
du -sh "$DEST" | awk '{print "device data: " $2 " (" $1 ")"}'
