#!/usr/bin/env bash
# cross.sh <target> [output]: builds the agent (cgo, GStreamer 1.22) for a Raspberry Pi OS / Debian 12
# target on a Debian 12 amd64 host, with Debian's cross compilers. Output: bin/makercast-agent-linux-<target>.
#   arm64   Pi 3, 4, 5, Zero 2 W with the 64-bit OS
#   armv7   the 32-bit OS on a Pi 2, 3, 4 or Zero 2 W (GOARM=7; Debian armhf)
#   amd64   this machine's architecture (for the amd64 .deb)
#   armv6   Pi Zero W and Pi 1: not possible here (see below); exits 2 saying what to do instead
# `cross.sh sysroot` prints the armv7 sysroot (made if missing), for tests that run armv7 binaries.
# Environment: VERSION (stamped into the binary, default dev), GO, CROSS_CACHE (default
# /var/cache/makercast-cross as root, ~/.cache/makercast-cross otherwise), CROSS_MIRROR (armv7 sysroot).
#
# arm64: Debian's multiarch packages (scripts/deps.sh cross adds the arm64 dpkg architecture).
#   libgstreamer-plugins-base1.0-dev has no Multi-Arch field, so its arm64 package would replace the
#   amd64 one; its .pc files and .so links are taken from the .deb instead (research notes §6.1).
# armv7: a private sysroot, never the armhf dpkg architecture. The mirror serves a stale armhf
#   bookworm-security index (its size and hash do not match the signed Release file), and apt commits a
#   Release's indexes all or none: with armhf added, `apt-get update` fails for every architecture's
#   security index, and the armhf libraries cannot match the amd64 security versions (Multi-Arch:
#   same). The sysroot is unpacked from armhf .debs of bookworm and bookworm-updates by a private apt
#   (its own lists and status); it is only linked against (sonames and symbols), never shipped: on the Pi
#   the .deb's Depends bring Raspberry Pi OS's own, security-updated libraries.
# armv6: Debian armhf is ARMv7. Its cross toolchain's startup files and libgcc (crt1.o, crti.o, crtn.o,
#   crtbegin.o, libgcc.a, libc_nonshared.a) are ARMv7 Thumb-2 code that every program links, so even
#   `-march=armv6 -marm` output dies with SIGILL on an ARM1176 (checked: a hello world under
#   `qemu-arm -cpu arm1176`). Debian's armel is a different ABI (soft-float) that Raspberry Pi OS has no
#   libraries for. Build on Raspberry Pi OS 32-bit instead, whose gcc targets ARMv6 (README, Install).
set -euo pipefail
target=${1:-}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root/bin/makercast-agent-linux-$target}
GO=${GO:-go}
VERSION=${VERSION:-dev}
if [ "$(id -u)" -eq 0 ]; then CACHE=${CROSS_CACHE:-/var/cache/makercast-cross}
else CACHE=${CROSS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/makercast-cross}; fi
MIRROR=${CROSS_MIRROR:-http://deb.debian.org/debian}

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# arm64_pc: the arm64 .pc files of libgstreamer-plugins-base1.0-dev (gstreamer-app-1.0 for go-gst),
# their libdir pointing at links to the arm64 runtime libraries. Cached per package version.
arm64_pc() {
	local ver dir l
	ver=$(dpkg-query -W -f='${Version}' libgstreamer-plugins-base1.0-0:arm64)
	dir=$CACHE/arm64/plugins-base-dev-$ver
	if [ ! -e "$dir/ready" ]; then
		rm -rf "$dir.tmp"; mkdir -p "$dir.tmp/deb" "$dir.tmp/pkgconfig" "$dir.tmp/lib"
		chmod 777 "$dir.tmp/deb"   # apt's _apt sandbox user writes here
		(cd "$dir.tmp/deb" && apt-get download -q=2 "libgstreamer-plugins-base1.0-dev:arm64=$ver")
		dpkg-deb -x "$dir.tmp"/deb/*.deb "$dir.tmp/x"
		cp "$dir.tmp"/x/usr/lib/aarch64-linux-gnu/pkgconfig/*.pc "$dir.tmp/pkgconfig/"
		for l in "$dir.tmp"/x/usr/lib/aarch64-linux-gnu/*.so; do
			ln -s "/usr/lib/aarch64-linux-gnu/$(readlink "$l")" "$dir.tmp/lib/$(basename "$l")"
		done
		sed -i "s|^libdir=.*|libdir=$dir/lib|" "$dir.tmp"/pkgconfig/*.pc
		rm -rf "$dir.tmp/deb" "$dir.tmp/x" "$dir"
		find "$CACHE/arm64" -maxdepth 1 -name 'plugins-base-dev-*' ! -name '*.tmp' -exec rm -rf {} +
		mv "$dir.tmp" "$dir"; touch "$dir/ready"
		echo "cross: arm64 plugins-base .pc files $ver in $dir" >&2
	fi
	echo "$dir"
}

# The armhf packages the agent links against: the -dev packages of its pkg-config modules
# (gstreamer-1.0, -base, -controller, -app; glib-2.0, gobject-2.0, gio-2.0) and what their .pc files
# require, plus the shared libraries the linker follows (-rpath-link). libc comes from the cross
# toolchain (libc6-dev-armhf-cross).
armhf_pkgs=(
	libgstreamer1.0-dev libgstreamer1.0-0 libgstreamer-plugins-base1.0-dev libgstreamer-plugins-base1.0-0
	libglib2.0-dev libglib2.0-0 libunwind-dev libunwind8 libdw-dev libdw1 libelf-dev libelf1
	zlib1g-dev zlib1g liblzma-dev liblzma5 libbz2-1.0 libzstd1 libffi-dev libffi8 libmount-dev libmount1
	libblkid-dev libblkid1 libselinux1-dev libselinux1 libsepol-dev libpcre2-dev libpcre2-8-0
	libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 liborc-0.4-0 liborc-0.4-dev
)

# armhf_sysroot: the sysroot for armv7, built once per package list.
armhf_sysroot() {
	local key dir a codename l t
	key=$(printf '%s\n' "$MIRROR" "${armhf_pkgs[@]}" | sha256sum | cut -c1-12)
	dir=$CACHE/armhf/sysroot-$key
	if [ ! -e "$dir/ready" ]; then
		a=$CACHE/armhf/apt
		codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
		mkdir -p "$a/lists/partial" "$a/cache" "$a/etc/sources.list.d" "$a/etc/preferences.d"
		: > "$a/status"
		printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
			"$MIRROR" "$codename" "$MIRROR" "$codename-updates" > "$a/etc/sources.list"
		local apt=(-q=2 -o APT::Architecture=armhf -o APT::Architectures::=armhf
			-o Dir::State::Lists="$a/lists" -o Dir::State::status="$a/status" -o Dir::Cache="$a/cache"
			-o Dir::Etc::SourceList="$a/etc/sources.list" -o Dir::Etc::SourceParts="$a/etc/sources.list.d"
			-o Dir::Etc::Preferences="$a/etc/preferences" -o Dir::Etc::PreferencesParts="$a/etc/preferences.d")
		echo "cross: building the armhf sysroot in $dir" >&2
		apt-get "${apt[@]}" update
		rm -rf "$dir.tmp"; mkdir -p "$dir.tmp/deb"; chmod 777 "$dir.tmp/deb"
		(cd "$dir.tmp/deb" && apt-get "${apt[@]}" download "${armhf_pkgs[@]}")
		for l in "$dir.tmp"/deb/*.deb; do dpkg-deb -x "$l" "$dir.tmp/root"; done
		# absolute .so links (libz.so -> /lib/arm-linux-gnueabihf/libz.so.1) must stay in the sysroot
		find "$dir.tmp/root" -type l -lname '/*' | while read -r l; do
			t=$(readlink "$l")
			[ -e "$dir.tmp/root$t" ] || t=${t/#\/lib\//\/usr\/lib\/}
			ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$dir.tmp/root$t")" "$l"
		done
		rm -rf "$dir.tmp/deb" "$dir"
		find "$CACHE/armhf" -maxdepth 1 -name 'sysroot-*' ! -name '*.tmp' -exec rm -rf {} +
		mv "$dir.tmp" "$dir"; touch "$dir/ready"
	fi
	echo "$dir/root"
}

build() { # build <GOARCH> <GOARM> <CC> (and the pkg-config/cgo environment already exported)
	mkdir -p "$(dirname "$out")"
	local t0=$SECONDS
	(cd "$root" && CGO_ENABLED=1 GOOS=linux GOARCH=$1 GOARM=$2 CC=$3 \
		"$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$out" ./cmd/makercast-agent)
	echo "cross: $out ($VERSION, $(du -h "$out" | cut -f1), $((SECONDS - t0)) s): $(file -b "$out" | cut -d, -f1-2)"
}

case $target in
amd64)
	[ "$(dpkg --print-architecture)" = amd64 ] || { echo "cross: amd64 is built on an amd64 host" >&2; exit 2; }
	"$root/scripts/deps.sh" runtime
	build amd64 "" gcc
	;;
arm64)
	"$root/scripts/deps.sh" cross
	mkdir -p "$CACHE/arm64"; exec 9>"$CACHE/arm64/lock"; flock 9   # one setup at a time
	pc=$(arm64_pc); flock -u 9
	export PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=$pc/pkgconfig:/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
	build arm64 "" aarch64-linux-gnu-gcc
	;;
armv7)
	"$root/scripts/deps.sh" cross
	mkdir -p "$CACHE/armhf"; exec 9>"$CACHE/armhf/lock"; flock 9
	S=$(armhf_sysroot); flock -u 9
	T=arm-linux-gnueabihf
	export PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR=$S PKG_CONFIG_LIBDIR=$S/usr/lib/$T/pkgconfig:$S/usr/share/pkgconfig
	export CGO_LDFLAGS="-Wl,-rpath-link,$S/usr/lib/$T -Wl,-rpath-link,$S/lib/$T"
	build arm "7" $T-gcc
	;;
sysroot)
	mkdir -p "$CACHE/armhf"; exec 9>"$CACHE/armhf/lock"; flock 9
	armhf_sysroot
	;;
armv6)
	cat >&2 <<'EOF'
cross: ARMv6 (Pi Zero W, Pi 1) cannot be built with Debian's toolchains. Debian armhf is ARMv7: the
startup files and libgcc that every program links (crt1.o, crti.o, crtbegin.o, libgcc.a,
libc_nonshared.a) are ARMv7 Thumb-2, so even -march=armv6 output dies with SIGILL on an ARM1176.
Debian armel is soft-float, an ABI Raspberry Pi OS has no libraries for.
Build on Raspberry Pi OS 32-bit (its gcc targets ARMv6), on the Zero W or on any Pi with that OS:
  GOARM=6 make build      # then copy bin/makercast-agent to the Zero W (README, Install)
EOF
	exit 2
	;;
*) usage ;;
esac
