#!/usr/bin/env bash
# One-command set-up: a virtual environment in .venv with CAST-RT and its dev tools, plus
# (as root, with apt) the system tools the GUI/browser tests use: Xvfb, xwd, chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  pkgs="xvfb x11-apps chromium chromium-driver"
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "installing system packages:$missing"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
else
  echo "note: not root or no apt-get: skipping Xvfb/chromium (their tests will be skipped)"
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "installed: $(.venv/bin/python -c 'import torch, cv2, av; print("torch", torch.__version__, "opencv", cv2.__version__, "av", av.__version__)')"
