#!/bin/sh
# build-v4l2loopback.sh <cache>: the out-of-tree v4l2loopback module (fake MJPEG/H.264 webcams) for
# the unpacked kernel, with the kernel's own kbuild (no dkms: it would also build for the host's
# kernel). Needs gcc and make. The module is unsigned: loading it taints the guest kernel, harmlessly.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 <cache>" >&2; exit 2; }
D=$(cd "$1" && pwd); ABI=$(cat "$D/KVER"); K=$D/kernel/$ABI
KO=$K/root/lib/modules/$ABI/updates/v4l2loopback.ko
if [ -s "$KO" ]; then echo "build-v4l2loopback: $KO (cached)"; exit 0; fi
SRC=$(ls -d "$K"/root/usr/src/v4l2loopback-* | head -1)
make -s -C "$K/root/usr/src/linux-headers-$ABI" M="$SRC" modules
install -D -m 644 "$SRC/v4l2loopback.ko" "$KO"
depmod -b "$K/root" "$ABI"
echo "build-v4l2loopback: $KO"
