#!/bin/sh
# run-vm.sh <cache> <job> [qemu args...]: boot the cached stock Debian kernel under QEMU TCG (no
# network device; the host's / read-only under a tmpfs overlay), run one job inside (guest-init.sh),
# power off. Exits with the job's status (255 when the VM died or timed out without one).
# Results in <cache>/lab/out/<job>/: log (the job's output), rc, console (serial), dmesg, job.env,
# and what the job leaves in $LAB_OUT (the same directory in the guest), such as the agents' logs.
#
# The job, from the environment:
#   LAB_BIN      Go test binary (a path the guest sees: the host's, or /lab/<name>.test)
#   LAB_RUN      -test.run pattern (default .)       LAB_TIMEOUT  -test.timeout (default 10m)
#   LAB_DIR      working directory (the package's, so testenv finds the repo; default /)
#   LAB_ARGS     more test flags (split on spaces)   LAB_SCRIPT   run this shell script instead
#   LAB_UDEV     0 no udev, 1 udevd for new events (default), 2 also replay the boot's devices
# The VM: SMP (2), MEM (1024 MiB), VM_TIMEOUT (seconds, default 600; qemu is always under timeout),
# LAB_KARGS (more kernel arguments, e.g. loglevel=7 to see the whole boot on the console).
#
# Example: one guest test by hand, after `make hwlab` has built the binaries:
#   LAB_BIN=/lab/hwlab.test LAB_RUN='^TestGuestDevices$' LAB_DIR=$PWD/tests/hwlab \
#     tests/hwlab/run-vm.sh /var/cache/makercast-hwlab devices; cat /var/cache/makercast-hwlab/lab/out/devices/log
set -eu
[ $# -ge 2 ] || { echo "usage: $0 <cache> <job> [qemu args...]" >&2; exit 2; }
D=$(cd "$1" && pwd); J=$2; shift 2; H=$(cd "$(dirname "$0")" && pwd)
ABI=$(cat "$D/KVER"); K=$D/kernel/$ABI
case $J in *[!A-Za-z0-9._-]*|'') echo "run-vm: job name $J: use A-Z a-z 0-9 . _ -" >&2; exit 2;; esac
for f in "$K/vmlinux" "$K/initrd.gz"; do
	[ -s "$f" ] || { echo "run-vm: $f missing: run fetch-kernel.sh, build-v4l2loopback.sh, mkinitrd.sh" >&2; exit 2; }
done
O=$D/lab/out/$J; rm -rf "$O"; mkdir -p "$O"
# shared by concurrent VMs: replace files atomically, and only when they change
cmp -s "$H/guest-init.sh" "$D/lab/guest-init.sh" 2>/dev/null ||
	{ cp "$H/guest-init.sh" "$D/lab/.guest-init.$$" && mv "$D/lab/.guest-init.$$" "$D/lab/guest-init.sh"; }
# the GStreamer registry, built (or refreshed, when plugins changed) on the host: a cold one costs
# the guest ~7 s per boot under TCG
GST_REGISTRY="$D/lab/gst-registry.bin" gst-inspect-1.0 > /dev/null 2>&1 ||
	{ echo "run-vm: gst-inspect-1.0 failed: is GStreamer installed (scripts/deps.sh hwlab)?" >&2; exit 2; }
q() { printf "'%s'" "$(printf %s "$1" | sed "s/'/'\\\\''/g")"; }
{
	for v in LAB_BIN LAB_RUN LAB_TIMEOUT LAB_DIR LAB_ARGS LAB_SCRIPT LAB_UDEV; do
		eval "val=\${$v:-}"; echo "$v=$(q "$val")"
	done
} > "$O/job.env"
[ -n "${LAB_BIN:-}${LAB_SCRIPT:-}" ] || { echo "run-vm: set LAB_BIN or LAB_SCRIPT" >&2; exit 2; }
rc=0
timeout -k 5 "${VM_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -M q35 \
	-m "${MEM:-1024}" -smp "${SMP:-2}" -display none -vga none -monitor none -nic none -no-reboot \
	-serial "file:$O/console" \
	-kernel "$K/vmlinux" -initrd "$K/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check lab.job=$J ${LAB_KARGS:-}" \
	-virtfs local,path=/,mount_tag=rootfs,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$K/root/lib/modules,mount_tag=mods,security_model=none,readonly=on" \
	-virtfs "local,path=$D/lab,mount_tag=lab,security_model=none,multidevs=remap" \
	"$@" < /dev/null > "$O/qemu.log" 2>&1 || rc=$?
if [ ! -s "$O/rc" ]; then
	[ "$rc" = 124 ] && echo "run-vm: $J: the VM was killed after ${VM_TIMEOUT:-600} s" >&2
	[ "$rc" != 0 ] && [ "$rc" != 124 ] && echo "run-vm: $J: qemu exited with $rc: $(tail -3 "$O/qemu.log")" >&2
	echo "run-vm: $J: no exit status from the guest (console: $O/console)" >&2
	exit 255
fi
exit "$(cat "$O/rc")"
