#!/usr/bin/env bash
# Installs the Debian / Raspberry Pi OS packages makercast needs to build,
# run and test. Only missing packages are installed; sudo is used when not
# root. Usage: scripts/deps.sh [runtime|test|hwlab|cross|cross-run|package]
# hwlab: the test packages plus what `make hwlab` needs on the host to boot a
# stock Debian kernel in QEMU and build v4l2loopback for it (tests/hwlab/).
# cross: also the cross compilers and arm64 GStreamer development files
# (scripts/cross.sh; adds the arm64 dpkg architecture); cross-run: also the
# arm64 runtime plugins and qemu-user, to run the arm64 agent here (make
# cross-test); package: what `make package-test` boots (tests/package/).
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
# Cross-building (scripts/cross.sh, packaging/README.md). arm64 uses Debian's
# multiarch -dev packages (Multi-Arch: same, so apt keeps the amd64 ones at the
# same version); libgstreamer-plugins-base1.0-dev has no Multi-Arch field and
# would replace the amd64 one, so cross.sh takes its .pc files from the .deb.
# armhf is never added as a dpkg architecture: cross.sh builds a private
# sysroot instead (the reason is in scripts/cross.sh).
cross=(gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-armhf-cross libgstreamer1.0-dev:arm64 libgstreamer-plugins-base1.0-0:arm64)
cross_run=(
  qemu-user-static gstreamer1.0-plugins-base:arm64 gstreamer1.0-plugins-good:arm64
  gstreamer1.0-plugins-bad:arm64 gstreamer1.0-plugins-ugly:arm64 gstreamer1.0-libav:arm64
)
# The package test boots the hardware lab's kernel with systemd as PID 1.
package=(qemu-system-x86 busybox-static cpio kmod systemd)
case $what in
  cross) pkgs+=("${cross[@]}") ;;
  cross-run) pkgs+=("${cross[@]}" "${cross_run[@]}") ;;
  package) pkgs+=("${package[@]}") ;;
esac
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
case $what in
  cross|cross-run)
    dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64 ;;
esac
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
