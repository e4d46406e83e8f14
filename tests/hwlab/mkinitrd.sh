#!/bin/sh
# mkinitrd.sh <cache>: a 1.5 MB initramfs (busybox + the virtio/9p/overlay modules). Its init mounts
# the host's / (9p, read-only) under a tmpfs overlay, so the guest sees the host's programs, the repo
# and the test binaries at the same paths and can still write anywhere; then the kernel's modules
# at /lib/modules and <cache>/lab read-write at /lab; then it switches root to /lab/guest-init.sh.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 <cache>" >&2; exit 2; }
D=$(cd "$1" && pwd); ABI=$(cat "$D/KVER"); K=$D/kernel/$ABI; M=$K/root/lib/modules/$ABI
OUT=$K/initrd.gz
if [ -s "$OUT" ] && [ "$OUT" -nt "$0" ]; then echo "mkinitrd: $OUT (cached)"; exit 0; fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/proc" "$T/sys" "$T/dev" "$T/newroot" "$T/lower" "$T/rw" "$T/mods"
cp /bin/busybox "$T/bin/busybox"                   # package busybox-static
: > "$T/modlist"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache \
	9pnet 9pnet_virtio 9p overlay; do
	f=$(find "$M/kernel" -name "$m.ko" | head -1)
	[ -n "$f" ] || continue                        # built into this kernel
	cp "$f" "$T/mods/"; echo "$m" >> "$T/modlist"
done
cat > "$T/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin; /bin/busybox --install -s
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modlist); do insmod /mods/$m.ko; done
o=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $o,ro,cache=loose rootfs /lower
mount -t tmpfs -o size=2G tmpfs /rw; mkdir -p /rw/u /rw/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/u,workdir=/rw/w /newroot
mkdir -p /newroot/lib/modules /newroot/lab
mount -t 9p -o $o,ro,cache=loose mods /newroot/lib/modules
mount -t 9p -o $o lab /newroot/lab
mount --move /dev /newroot/dev; umount /proc /sys
exec switch_root /newroot /bin/sh /lab/guest-init.sh
INIT
chmod +x "$T/init"
(cd "$T" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "mkinitrd: $OUT ($(du -h "$OUT" | cut -f1))"
