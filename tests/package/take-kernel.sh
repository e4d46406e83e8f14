#!/bin/sh
# take-kernel.sh <hwlab-cache> <pkgtest-cache>: hard-links the hardware lab's current kernel, modules
# and initramfs (tests/hwlab: fetch-kernel.sh, mkinitrd.sh) into the package test's cache, so a later
# `make hwlab` that replaces its kernel cannot pull them from under a running VM. `make package-test`
# runs it under the lab's lock; the VM then runs without it. Copies when the caches are on different
# file systems.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 <hwlab-cache> <pkgtest-cache>" >&2; exit 2; }
H=$(cd "$1" && pwd); mkdir -p "$2"; P=$(cd "$2" && pwd)
ABI=$(cat "$H/KVER"); K=$H/kernel/$ABI; T=$P/kernel/$ABI
if [ ! -e "$T/ready" ] || [ "$K/initrd.gz" -nt "$T/initrd.gz" ] || [ "$K/vmlinux" -nt "$T/vmlinux" ]; then
	rm -rf "$T.tmp"; mkdir -p "$T.tmp/root/lib"
	cp -al "$K/vmlinux" "$K/initrd.gz" "$T.tmp/" 2>/dev/null || cp -a "$K/vmlinux" "$K/initrd.gz" "$T.tmp/"
	cp -al "$K/root/lib/modules" "$T.tmp/root/lib/" 2>/dev/null || cp -a "$K/root/lib/modules" "$T.tmp/root/lib/"
	rm -rf "$T"; mv "$T.tmp" "$T"; touch "$T/ready"
	echo "take-kernel: $ABI from $H"
fi
echo "$ABI" > "$P/KVER"
for k in "$P"/kernel/*; do [ "$k" = "$T" ] || rm -rf "$k"; done
