#!/usr/bin/env bash
# edge-sdk setup: system tools from Debian, Python packages from PyPI into a virtual environment.
#
# Non-interactive and idempotent: safe to run again. It runs `apt-get update` at most once, and
# only when a tool is missing. Python packages go into a virtual environment (default: .venv in
# this checkout; EDGE_SDK_VENV=DIR picks another), made once and reused: Debian 12's own python3
# refuses `pip install` outside one (PEP 668), and a venv keeps edge-sdk's pinned TVM and LiteRT
# apart from the system's packages. Afterwards `edge-sdk` is .venv/bin/edge-sdk (or on PATH after
# `source .venv/bin/activate`).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV="${EDGE_SDK_VENV:-.venv}"

APT_PACKAGES=(gcc make gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
              gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross
              libc6-dev-armhf-cross qemu-user-static
              openssh-server openssh-client ocl-icd-libopencl1 ocl-icd-opencl-dev pocl-opencl-icd clinfo
              chromium fonts-dejavu-core)  # chromium: the HTML report is checked in a real browser
# Debian's python3 makes virtual environments only with python3-venv (it carries ensurepip).
if ! "$PYTHON" -c "import ensurepip, venv" 2>/dev/null; then
  APT_PACKAGES+=(python3-venv)
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]} (apt)"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A venv whose interpreter went away (python upgraded, folder copied) is made again.
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c "import sys" 2>/dev/null; then
  echo "setup: $VENV is not a working virtual environment: making it again"
  rm -rf "$VENV"
fi
if [ ! -e "$VENV" ]; then
  echo "setup: making the virtual environment $VENV ($("$PYTHON" --version))"
  "$PYTHON" -m venv "$VENV"
fi
echo "setup: installing edge-sdk and its Python dependencies into $VENV (pip)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
echo "setup: done. edge-sdk is $VENV/bin/edge-sdk (or run 'source $VENV/bin/activate' first)."
echo "       Try: $VENV/bin/edge-sdk inspect ../shared/models/mlperf_tiny/kws_ref_model.tflite"
