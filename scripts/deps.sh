#!/usr/bin/env bash
# Installs the Debian / Raspberry Pi OS packages makercast needs to build,
# run and test. Only missing packages are installed; sudo is used when not
# root. Usage: scripts/deps.sh [runtime|test|hwlab]
# hwlab: the test packages plus what `make hwlab` needs on the host to boot a
# stock Debian kernel in QEMU and build v4l2loopback for it (tests/hwlab/).
set -euo pipefail
what=${1:-test}
runtime=(
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-alsa glib-networking
)
build=(gcc pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev)
# The local broker and RTMP server for `make run`, the tests and the benchmark.
servers=(mosquitto mosquitto-clients nginx libnginx-mod-rtmp libnginx-mod-stream ffmpeg curl util-linux mount)
pkgs=("${runtime[@]}" "${build[@]}" "${servers[@]}")
# The hardware lab (tests/hwlab/README.md): QEMU, a static busybox for the
# initramfs, module tools, and the device tools the guest runs from the host's /.
hwlab=(
  qemu-system-x86 busybox-static cpio kmod xz-utils socat udev v4l-utils alsa-utils
  gstreamer1.0-plugins-base-apps gcc make
)
if [ "$what" = hwlab ]; then pkgs+=("${hwlab[@]}"); fi
# Node.js and npm for the Node-RED examples' test (it installs Node-RED itself
# with npm); any node/npm already on PATH will do.
if [ "$what" != runtime ]; then
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# policy-rc.d keeps the nginx and mosquitto packages from starting system
# services (port 80, 1883): makercast starts its own on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
