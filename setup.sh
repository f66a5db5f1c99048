#!/usr/bin/env bash
# edge-sdk setup: system tools from Debian, Python packages from PyPI. Non-interactive and
# idempotent: safe to run again; runs `apt-get update` at most once, and only when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(gcc make gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
              gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross
              libc6-dev-armhf-cross qemu-user-static
              openssh-server openssh-client ocl-icd-libopencl1 ocl-icd-opencl-dev pocl-opencl-icd clinfo
              chromium fonts-dejavu-core)  # chromium: the HTML report is checked in a real browser
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

PYTHON="${PYTHON:-python3}"
echo "setup: installing edge-sdk and its Python dependencies (pip)"
"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[dev]"
echo "setup: done. Try: edge-sdk inspect ../shared/models/mlperf_tiny/kws_ref_model.tflite"
