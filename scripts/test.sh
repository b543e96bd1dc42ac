#!/usr/bin/env bash
# README test command: install, then run the whole test suite (CPU only, ~30 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
