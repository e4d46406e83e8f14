#!/bin/sh
# run-vm.sh <cache>: boots the hardware lab's stock Debian kernel (take-kernel.sh) under QEMU TCG with
# the host's / read-only over 9p under a tmpfs overlay (the lab's initramfs), and <cache>/lab read-write
# at /lab. The initramfs runs /lab/guest-init.sh, which execs systemd as PID 1; systemd runs the job in
# /lab/job.env as a service (pkgtest.service), whose ExecStopPost (guest-done.sh) writes the job's exit
# status and the journal, then powers off. Exits with the job's status, 255 when there is none.
# Results in <cache>/lab/out/: log (the job's output), rc, console (serial), journal, dmesg.
# VM: SMP (2), MEM (1536 MiB), VM_TIMEOUT (seconds, default 720).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 <cache>" >&2; exit 2; }
D=$(cd "$1" && pwd); H=$(cd "$(dirname "$0")" && pwd)
ABI=$(cat "$D/KVER"); K=$D/kernel/$ABI; O=$D/lab/out
for f in "$K/vmlinux" "$K/initrd.gz" "$D/lab/job.env"; do
	[ -s "$f" ] || { echo "run-vm: $f missing (make package-test prepares it)" >&2; exit 2; }
done
rm -rf "$O"; mkdir -p "$O"
cp "$H/guest-init.sh" "$H/guest-done.sh" "$D/lab/"
rc=0
timeout -k 5 "${VM_TIMEOUT:-720}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -M q35 \
	-m "${MEM:-1536}" -smp "${SMP:-2}" -display none -vga none -monitor none -nic none -no-reboot \
	-serial "file:$O/console" \
	-kernel "$K/vmlinux" -initrd "$K/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check" \
	-virtfs local,path=/,mount_tag=rootfs,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$K/root/lib/modules,mount_tag=mods,security_model=none,readonly=on" \
	-virtfs "local,path=$D/lab,mount_tag=lab,security_model=none,multidevs=remap" \
	< /dev/null > "$O/qemu.log" 2>&1 || rc=$?
if [ ! -s "$O/rc" ]; then
	[ "$rc" = 124 ] && echo "run-vm: the VM was killed after ${VM_TIMEOUT:-720} s" >&2
	[ "$rc" != 0 ] && [ "$rc" != 124 ] && echo "run-vm: qemu exited with $rc: $(tail -3 "$O/qemu.log")" >&2
	echo "run-vm: no exit status from the guest (console: $O/console)" >&2
	exit 255
fi
exit "$(cat "$O/rc")"
