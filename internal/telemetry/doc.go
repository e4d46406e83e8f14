// Package telemetry reads the host's hardware facts and health through an
// fs.FS root: os.DirFS("/") on the device, captured or reconstructed trees
// under testdata/ in tests.
//
// Reader.Read returns a Health snapshot; it never fails as a whole. A source
// the machine lacks (no thermal zone, no Wi-Fi, no Raspberry Pi firmware on a
// PC) leaves its field nil, which JSON omits, so an absent value is never
// reported as zero. Where a source exists but cannot tell (the Pi Zero and
// Zero W have no under-voltage detector) the flag is null: unknown, not OK.
//
// # Sources
//
//   - temperatures: sys/class/thermal/thermal_zone*/{type,temp}
//     (millidegrees C); the main CPU sensor is the zone of type cpu-thermal
//     (Raspberry Pi) or x86_pkg_temp (Intel), else the first zone. Hardware
//     monitors under sys/class/hwmon that are not a copy of a thermal zone
//     are added too (the Pi 5's RP1 sensor rp1_adc, coretemp, nvme).
//   - throttling: the firmware's get_throttled word, from `vcgencmd
//     get_throttled` when Reader.Vcgencmd is set, else the Raspberry Pi
//     kernel's get_throttled attribute of the firmware device (see
//     throttle.go), else only under-voltage from the rpi_volt hwmon's
//     in0_lcrit_alarm.
//   - CPU usage: deltas of the first line of proc/stat between two Reads
//     (the Reader keeps the previous sample, so the first Read has none);
//     load: proc/loadavg; memory: proc/meminfo; uptime: proc/uptime.
//   - disk: Reader.StatFS on Reader.MediaDir.
//   - Wi-Fi: proc/net/wireless.
//   - board: device-tree model, serial-number and proc/cpuinfo Revision and
//     Serial on a Pi; DMI product name on a PC.
//
// # Why not periph.io/x/host/v3
//
// periph was evaluated (v3.8.5) and is not used, because it adds nothing the
// fs.FS readers lack and would break their testability:
//
//   - it has no reader for get_throttled, rpi_volt, proc/stat, meminfo,
//     loadavg, uptime or proc/net/wireless, which is most of Health;
//   - what it does have reads fixed paths of the live system and caches the
//     result in package variables: distro.DTModel, DTRevision and CPUInfo
//     read /proc directly and keep the first answer for the process's life,
//     and sysfs.ThermalSensors is a package-level slice filled by globbing
//     the live /sys during host.Init. None of it can be pointed at a
//     testdata tree, and it goes against this package's rule of no
//     package-level mutable state;
//   - rpi.Present is the constant false on any non-ARM build and on ARM only
//     stats /sys/bus/platform/drivers/raspberrypi-firmware, which is one
//     fs.Stat here; its revision-code decoder is unexported;
//   - host.Init, which its thermal driver needs, also loads the GPIO, I²C,
//     SPI and LED drivers, which open device nodes. A read-only health poll
//     should not do that.
//
// The agent builds its Reader with NewDeviceReader, which passes in the live
// root, vcgencmd when it is on PATH, statfs(2) and the clock.
package telemetry
