#!/usr/bin/env bash
# Rehearse the lent GPU machine's install (issue 14) here: a bare Python 3.12 venv gets only those of
# the device's preinstalled packages that our imports need (at the device's versions where known),
# then, as on the device, the carried wheels (scripts/device-wheels.sh) with --no-index --no-deps and
# the project with --no-deps. Passes when the checks below run. Prints PASS or FAIL.
#   bash scripts/device-rehearsal.sh [DIR]     (DIR: where the venv goes; default: a new temp folder)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY312=${PY312:-/root/.pyenv/versions/3.12.1/bin/python}
DIR=${1:-$(mktemp -d /tmp/device-rehearsal.XXXX)}
# The device's packages that `import mobiler2l_ns`, ns-train, nerfstudio's Trainer / eval_setup and
# mobiler2l_ns.export import (pip adds their own dependencies, e.g. torch's nvidia-* libraries,
# torchmetrics' lightning-utilities, jaxtyping's wadler-lindig, onnx's ml_dtypes, which the device
# must have for its torch / torchmetrics / jaxtyping / onnx to import). Unversioned: not known.
DEVICE_PACKAGES=(torch==2.11.0 torchvision==0.26.0 triton==3.6.0 numpy==2.5.2 onnx==1.23.1 onnx-ir==1.0.0
  onnxruntime==1.30.0 onnxscript==0.7.2 torchmetrics==1.9.0 jaxtyping==0.3.11 rich matplotlib pillow
  scipy opencv-python-headless pyyaml tensorboard imageio requests psutil ninja packaging tqdm
  typing-extensions six)

bash scripts/device-wheels.sh >/dev/null  # .whl/ as the device run will carry it
[ -x "$DIR/venv/bin/python" ] || "$PY312" -m venv "$DIR/venv"
PIP=("$DIR/venv/bin/python" -m pip --quiet --disable-pip-version-check)
nice -n 19 "${PIP[@]}" install "${DEVICE_PACKAGES[@]}" 2> >(grep -v 'is ignored' >&2)
"${PIP[@]}" install --no-index --no-deps "$ROOT"/.whl/*.whl
"${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT" 2> >(grep -v 'is ignored' >&2)

status=PASS
check() {  # run one check from outside the repo (no accidental imports from the working tree)
  if (cd "$DIR" && nice -n 19 "$@" >"$DIR/check.log" 2>&1); then echo "ok    $*"
  else echo "FAIL  $*"; tail -n 15 "$DIR/check.log"; status=FAIL; fi
}
export PATH="$DIR/venv/bin:$PATH" CUDA_VISIBLE_DEVICES=""
check ns-train mobiler2l-small --help
check ns-train mobiler2l-teacher --help
check python -c "import mobiler2l_ns, mobiler2l_ns.export, mobiler2l_ns.methods"
# and what in-process training / evaluation / export import (their lazy imports included)
check python -c "from nerfstudio.engine.trainer import Trainer; from nerfstudio.utils.eval_utils import eval_setup
from mobiler2l_ns.export import export_mobiler2l_onnx, OnnxLightField, ExportMobileR2LOnnx"
echo "$status (venv: $DIR/venv)"
[ "$status" = PASS ]
