#!/bin/sh
# fetch-kernel.sh <cache>: the stock Debian kernel, its modules and headers, and the v4l2loopback
# source, unpacked into <cache>/kernel/<abi>/root without installing anything (no /boot, no dpkg
# database change), plus an uncompressed vmlinux that QEMU boots directly (PVH entry: no emulated XZ
# decompression, ~2.5 s less per boot). Writes the ABI in use to <cache>/KVER.
#
# The cache is keyed on the kernel ABI (6.1.0-57-amd64): a cached ABI is used without any network.
# KABI=<abi> pins one. Unpinned, the ABI is the one linux-image-amd64 depends on in the apt lists; if
# the mirror no longer has it (security updates retire old ABIs), the lists are refreshed and the
# current one is fetched; if the mirror cannot be reached at all, the newest cached kernel is used.
# Other cached ABIs are removed once a new one is in place (~650 MB each).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 <cache>" >&2; exit 2; }
mkdir -p "$1"; D=$(cd "$1" && pwd)
sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo

current_abi() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/.*Depends: linux-image-\([0-9.]*-[0-9]*-amd64\)$/\1/p' | head -1
}

# fetch <abi>: download and unpack into kernel/<abi>.tmp, then move it into place.
fetch() {
	abi=$1; K=$D/kernel/$abi; T=$K.tmp; ser=$(echo "$abi" | cut -d. -f1,2)
	rm -rf "$T"; mkdir -p "$T/debs"; chmod 777 "$T/debs"   # apt's _apt sandbox user writes here
	(cd "$T/debs" && apt-get download -q=2 "linux-image-$abi" "linux-headers-$abi" \
		"linux-headers-${abi%-amd64}-common" "linux-kbuild-$ser" v4l2loopback-dkms) || { rm -rf "$T"; return 1; }
	for f in "$T"/debs/*.deb; do dpkg -x "$f" "$T/root"; done
	rm -rf "$T/debs"
	# the headers' Makefile includes the common tree by absolute path: point it at our copy
	sed -i "s#^include /usr/src/#include $K/root/usr/src/#" "$T/root/usr/src/linux-headers-$abi/Makefile"
	# vmlinuz = boot stub + XZ stream (+ trailing data, hence the ignored xz status)
	z=$T/root/boot/vmlinuz-$abi
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$z" | head -1 | cut -d: -f1)
	tail -c +$((off + 1)) "$z" | xz -dc > "$T/vmlinux" 2>/dev/null || true
	[ "$(head -c 4 "$T/vmlinux" | tail -c 3)" = ELF ] || { echo "fetch-kernel: no ELF vmlinux in $z" >&2; return 1; }
	depmod -b "$T/root" "$abi"
	echo "$abi" > "$T/KVER"
	rm -rf "$K"; mv "$T" "$K"
	touch "$K/ready"
	echo "fetch-kernel: kernel $abi unpacked in $K"
}

use() { echo "$1" > "$D/KVER"; }

ABI=${KABI:-$(current_abi)}
if [ -n "$ABI" ] && [ -e "$D/kernel/$ABI/ready" ]; then
	use "$ABI"; echo "fetch-kernel: kernel $ABI (cached)"; exit 0
fi
if [ -n "$ABI" ] && fetch "$ABI"; then
	:
elif [ -n "${KABI:-}" ]; then
	echo "fetch-kernel: the pinned KABI=$KABI is neither cached nor on the mirror; unset KABI to use the current one" >&2
	exit 1
else
	echo "fetch-kernel: kernel ${ABI:-?} not on the mirror; refreshing the apt lists" >&2
	$sudo apt-get update -qq || true
	ABI=$(current_abi)
	if [ -n "$ABI" ] && [ -e "$D/kernel/$ABI/ready" ]; then
		echo "fetch-kernel: kernel $ABI (cached)"
	elif [ -z "$ABI" ] || ! fetch "$ABI"; then
		old=$(ls -t "$D"/kernel/*/ready 2>/dev/null | head -1)
		[ -n "$old" ] || { echo "fetch-kernel: no kernel on the mirror and none cached in $D" >&2; exit 1; }
		ABI=$(basename "$(dirname "$old")")
		echo "fetch-kernel: mirror unreachable; using the cached kernel $ABI" >&2
	fi
fi
use "$ABI"
for k in "$D"/kernel/*; do
	[ "$k" = "$D/kernel/$ABI" ] || { echo "fetch-kernel: removing $k"; rm -rf "$k"; }
done
