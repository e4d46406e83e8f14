#!/bin/sh
# Capture the files telemetry reads from this machine into DIR/root, shaped
# like the trees next to this script, to replace a reconstructed tree with a
# real one:
#
#	sh capture.sh pi4            # on the board, then copy pi4/ here
#	vcgencmd get_throttled > pi4/vcgencmd/get_throttled   # if installed
#
# ':' in a path becomes %3A (git on Windows and Go module zips refuse ':');
# the tests undo it. Review the serial number before committing.
set -eu
dir=${1:?usage: capture.sh DIR}
copy() {
	[ -r "$1" ] || return 0
	dst="$dir/root$(printf '%s' "$1" | sed 's/:/%3A/g')"
	mkdir -p "$(dirname "$dst")"
	cat "$1" > "$dst" 2>/dev/null || rm -f "$dst"
}
for f in /proc/cpuinfo /proc/stat /proc/meminfo /proc/loadavg /proc/uptime /proc/net/wireless \
	/proc/device-tree/model /proc/device-tree/serial-number /proc/device-tree/system/linux,revision \
	/sys/devices/virtual/dmi/id/product_name /sys/devices/platform/soc/soc:firmware/get_throttled \
	/sys/bus/platform/drivers/raspberrypi-firmware/*/get_throttled \
	/sys/class/thermal/thermal_zone*/type /sys/class/thermal/thermal_zone*/temp \
	/sys/class/hwmon/hwmon*/name /sys/class/hwmon/hwmon*/temp*_input /sys/class/hwmon/hwmon*/temp*_label \
	/sys/class/hwmon/hwmon*/in0_lcrit_alarm; do
	copy "$f"
done
if command -v vcgencmd >/dev/null 2>&1; then
	mkdir -p "$dir/vcgencmd"
	vcgencmd get_throttled > "$dir/vcgencmd/get_throttled" || rm -f "$dir/vcgencmd/get_throttled"
fi
