#!/usr/bin/env bash
# Create .venv (if missing) and install mobiler2l-ns with its pinned dependencies into it.
# On Debian/Ubuntu also installs the system libraries nerfstudio's tools load (as root, via apt).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
APT_PACKAGES=(libusb-1.0-0 colmap ffmpeg)  # libusb: open3d (ns-export); colmap, ffmpeg: ns-process-data (mobiler2l-process)

if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
      echo "mobiler2l: missing system packages: run 'sudo apt-get install ${missing[*]}' first" >&2
      exit 1
    fi
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
