#!/usr/bin/env bash
# The device run on the lent GPU machine, in one call (README "Device run"): carried wheels into a
# private site folder, then benchmarks/device_run.py on the carried lego copy; report into $OUT/device.
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=${SITE:-/tmp/mobiler2l-site}
python -m pip install --quiet --disable-pip-version-check --no-index --no-deps --target "$SITE" .whl/*.whl
PYTHONPATH="$SITE:$PWD" python benchmarks/device_run.py --out "${OUT:-device-out}/device" --data .device-data/lego-400 "$@"
