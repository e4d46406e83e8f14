#!/bin/sh
# guest-init.sh: PID 1 in the lab VM after switch_root (see mkinitrd.sh). It mounts the basics, starts
# udev when asked, runs the job that run-vm.sh described in /lab/out/<job>/job.env (kernel argument
# lab.job=<job>) and writes its output and exit status to /lab/out/<job>/{log,rc}, the kernel log to
# dmesg, then powers off. A job is a Go test binary run as `go test` would in its package directory:
#   cd $LAB_DIR; MAKERCAST_HWLAB_GUEST=1 $LAB_BIN -test.v -test.run $LAB_RUN -test.timeout $LAB_TIMEOUT
# or, with LAB_SCRIPT set, a shell script (for experiments; assertions belong in Go tests).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
# The registry was built on the host from the same plugin files; never rescan it here (a cold
# scan costs ~7 s under TCG, and two VMs share the file).
export GST_REGISTRY=/lab/gst-registry.bin GST_REGISTRY_UPDATE=no
mount -t proc proc /proc; mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
# /tmp stays the host's, writable through the overlay: a repo checked out under /tmp must stay visible
mount -t tmpfs tmpfs /run
ip link set lo up; hostname hwlab
up() { cut -d' ' -f1 /proc/uptime; }
J=$(sed -n 's/.*lab\.job=\([^ ]*\).*/\1/p' /proc/cmdline); O=/lab/out/$J
echo "HWLAB: userspace up at $(up)s"
if [ ! -r "$O/job.env" ]; then echo "HWLAB: no job $O/job.env"; echo o > /proc/sysrq-trigger; sleep 5; fi
. "$O/job.env"
if [ "${LAB_UDEV:-1}" != 0 ]; then
	# udevd handles the events of what the tests load or bind (symlinks, permissions, hotplug
	# events for GstDeviceMonitor); LAB_UDEV=2 also replays the boot's devices (+3.5 s).
	/lib/systemd/systemd-udevd --daemon
	if [ "$LAB_UDEV" = 2 ]; then
		udevadm trigger --action=add --type=subsystems; udevadm trigger --action=add --type=devices
		udevadm settle -t 30
	fi
	echo "HWLAB: udev up at $(up)s"
fi
export LAB_OUT="$O"        # tests may leave files for the host here (StartAgent's logs)
cd "${LAB_DIR:-/}" || echo "HWLAB: no directory $LAB_DIR"
if [ -n "${LAB_SCRIPT:-}" ]; then
	sh "$LAB_SCRIPT" > "$O/log" 2>&1
else
	MAKERCAST_HWLAB_GUEST=1 "$LAB_BIN" -test.v -test.run "${LAB_RUN:-.}" -test.timeout "${LAB_TIMEOUT:-10m}" \
		$LAB_ARGS > "$O/log" 2>&1
fi
echo $? > "$O/rc"
echo "HWLAB: $J rc=$(cat "$O/rc") at $(up)s"
dmesg > "$O/dmesg" 2>&1
sync; echo o > /proc/sysrq-trigger; sleep 5
