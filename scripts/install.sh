#!/usr/bin/env bash
# Create .venv (if missing) and install mobiler2l-ns into it, every package at the version CI tested
# (constraints.txt; pyproject.toml only states the supported ranges).
# On Debian/Ubuntu also installs the system packages (as root, via apt): the libraries nerfstudio's
# tools load, and Chromium for the browser viewer's tests. With npm present, installs the viewer's
# pinned onnxruntime-web (mobiler2l_ns/web/package-lock.json) with 'npm ci'.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# libusb-1.0-0: open3d, imported by ns-export. colmap, ffmpeg: ns-process-data (mobiler2l-process,
# mobiler2l run on photos / a video). chromium: tests/test_web.py and benchmarks/web_frame_time.py
# drive /usr/bin/chromium (Playwright never downloads a browser); without root chromium is optional
# (those tests are skipped).
APT_PACKAGES=(libusb-1.0-0 colmap ffmpeg chromium)
OPTIONAL_WITHOUT_ROOT=(chromium)

if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
      apt-get clean
    else
      required=()
      for pkg in "${missing[@]}"; do
        [[ " ${OPTIONAL_WITHOUT_ROOT[*]} " == *" $pkg "* ]] || required+=("$pkg")
      done
      if [ ${#required[@]} -gt 0 ]; then
        echo "mobiler2l: missing system packages: run 'sudo apt-get install ${missing[*]}' first" >&2
        exit 1
      fi
      echo "mobiler2l: ${missing[*]} not installed (browser viewer tests will be skipped): 'sudo apt-get install ${missing[*]}'" >&2
    fi
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# --no-cache-dir: the CUDA build of torch that nerfstudio resolves is several GB; a cached copy of
# every wheel would double what the install needs on disk (a CI run once ran out of space).
.venv/bin/python -m pip install --quiet --no-cache-dir --upgrade pip
.venv/bin/python -m pip install --quiet --no-cache-dir -c constraints.txt -e ".[dev]"

# Browser viewer (mobiler2l-view): onnxruntime-web at the exact version of package-lock.json,
# served from mobiler2l_ns/web/node_modules (no CDN). No install scripts are needed.
if command -v npm >/dev/null 2>&1; then
  (cd mobiler2l_ns/web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
else
  echo "mobiler2l: npm not found: mobiler2l-view needs 'npm ci' in mobiler2l_ns/web (its tests will be skipped)" >&2
fi
