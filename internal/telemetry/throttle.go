package telemetry

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// The firmware's get_throttled word. The low half is the live state, the
// high half latches the same conditions ("has occurred"). Documented at
// https://www.raspberrypi.com/documentation/computers/os.html#get_throttled
// and in https://github.com/raspberrypi/linux/issues/2367.
const (
	underVoltageNow       = 1 << 0  // under-voltage detected
	freqCappedNow         = 1 << 1  // ARM frequency capped
	throttledNow          = 1 << 2  // currently throttled
	softTempLimitNow      = 1 << 3  // soft temperature limit active
	underVoltageOccurred  = 1 << 16 // under-voltage has occurred since boot
	freqCappedOccurred    = 1 << 17 // ARM frequency capping has occurred
	throttledOccurred     = 1 << 18 // throttling has occurred
	softTempLimitOccurred = 1 << 19 // soft temperature limit has occurred
)

// Sysfs places of the Raspberry Pi kernel's get_throttled attribute
// (drivers/firmware/raspberrypi.c: "%x\n", hex without 0x). It hangs off the
// firmware's platform device, soc:firmware on the Pi 1-4; the driver's
// directory links to that device whatever it is called on a board. The
// kernel marks the attribute deprecated and logs a one-time warning on its
// first read, so it is only read when vcgencmd is missing or fails.
const (
	throttledSysfs = "sys/devices/platform/soc/soc:firmware/get_throttled"
	throttledGlob  = "sys/bus/platform/drivers/raspberrypi-firmware/*/get_throttled"
)

// vcgencmdTimeout bounds one vcgencmd run; the VideoCore can stall.
const vcgencmdTimeout = 2 * time.Second

// Conditions are the four firmware conditions. A nil flag is unknown: the
// source does not report it, or the board cannot detect it.
type Conditions struct {
	UnderVoltage  *bool `json:"under_voltage"`
	FreqCapped    *bool `json:"freq_capped"`
	Throttled     *bool `json:"throttled"`
	SoftTempLimit *bool `json:"soft_temp_limit"`
}

// Throttling is the Raspberry Pi firmware's power and thermal state.
type Throttling struct {
	// Source is "vcgencmd", "sysfs" (the kernel's get_throttled
	// attribute) or "hwmon" (rpi_volt: under-voltage only).
	Source string `json:"source"`
	// Raw is the get_throttled word, "0x50005"; empty from hwmon.
	Raw       string      `json:"raw,omitempty"`
	Now       Conditions  `json:"now"`
	SinceBoot *Conditions `json:"since_boot,omitempty"`
}

// decodeThrottled splits a get_throttled word into the live and the latched
// conditions.
func decodeThrottled(w uint32) Throttling {
	bit := func(m uint32) *bool { v := w&m != 0; return &v }
	return Throttling{
		Raw: fmt.Sprintf("%#x", w),
		Now: Conditions{
			UnderVoltage:  bit(underVoltageNow),
			FreqCapped:    bit(freqCappedNow),
			Throttled:     bit(throttledNow),
			SoftTempLimit: bit(softTempLimitNow),
		},
		SinceBoot: &Conditions{
			UnderVoltage:  bit(underVoltageOccurred),
			FreqCapped:    bit(freqCappedOccurred),
			Throttled:     bit(throttledOccurred),
			SoftTempLimit: bit(softTempLimitOccurred),
		},
	}
}

// parseVcgencmdThrottled parses `vcgencmd get_throttled` output,
// "throttled=0x50005\n".
func parseVcgencmdThrottled(out string) (uint32, error) {
	s := strings.TrimSpace(out)
	v, ok := strings.CutPrefix(s, "throttled=0x")
	if !ok {
		return 0, fmt.Errorf("telemetry: vcgencmd get_throttled: unexpected output %s", clip(s))
	}
	w, err := strconv.ParseUint(v, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("telemetry: vcgencmd get_throttled: bad value %s", clip(s))
	}
	return uint32(w), nil
}

// parseSysfsThrottled parses the kernel attribute, "50005\n".
func parseSysfsThrottled(b []byte) (uint32, error) {
	s := strings.TrimSpace(string(b))
	w, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("telemetry: get_throttled: bad value %s", clip(s))
	}
	return uint32(w), nil
}

// throttling reads the firmware state from the first source that answers.
// Sources that exist but fail are reported through errs.
//
// The kernel's sysfs and hwmon values are its own copy of the firmware word,
// refreshed every 2 s by raspberrypi-hwmon, which asks the firmware to reset
// the latched bits on each poll (drivers/hwmon/raspberrypi-hwmon.c). Their
// "since boot" half may therefore cover less than the whole uptime, which is
// why vcgencmd comes first.
func (r *Reader) throttling(ctx context.Context, b *Board, errs *[]string) *Throttling {
	t := r.firmwareThrottling(ctx, errs)
	if t == nil {
		t = hwmonUnderVoltage(r.Root, errs)
	}
	if t != nil && !canDetectUnderVoltage(b) {
		t.Now.UnderVoltage = nil
		if t.SinceBoot != nil {
			t.SinceBoot.UnderVoltage = nil
		}
	}
	return t
}

func (r *Reader) firmwareThrottling(ctx context.Context, errs *[]string) *Throttling {
	if r.Vcgencmd != nil {
		ctx, cancel := context.WithTimeout(ctx, vcgencmdTimeout)
		out, err := r.Vcgencmd(ctx, "get_throttled")
		cancel()
		if err == nil {
			var w uint32
			if w, err = parseVcgencmdThrottled(out); err == nil {
				t := decodeThrottled(w)
				t.Source = "vcgencmd"
				return &t
			}
		}
		*errs = append(*errs, errText(err))
	}
	// The first attribute that exists answers; the driver's link to the
	// Pi 1-4 device is the same file as throttledSysfs.
	if t, ok := sysfsThrottling(r.Root, throttledSysfs, errs); ok {
		return t
	}
	others, _ := fs.Glob(r.Root, throttledGlob)
	for _, p := range others {
		if t, ok := sysfsThrottling(r.Root, p, errs); ok {
			return t
		}
	}
	return nil
}

// sysfsThrottling reads one get_throttled attribute; ok is whether it
// exists, t nil when it does not parse.
func sysfsThrottling(root fs.FS, name string, errs *[]string) (t *Throttling, ok bool) {
	b, err := fs.ReadFile(root, name)
	if err != nil {
		return nil, false
	}
	w, err := parseSysfsThrottled(b)
	if err != nil {
		*errs = append(*errs, err.Error())
		return nil, true
	}
	th := decodeThrottled(w)
	th.Source = "sysfs"
	return &th, true
}

// hwmonUnderVoltage reads the rpi_volt hardware monitor, whose
// in0_lcrit_alarm is 1 while the firmware reports under-voltage
// (Documentation/hwmon/raspberrypi-hwmon.rst).
func hwmonUnderVoltage(root fs.FS, errs *[]string) *Throttling {
	for _, dir := range hwmonDirs(root) {
		if readString(root, dir+"/name") != "rpi_volt" {
			continue
		}
		s := readString(root, dir+"/in0_lcrit_alarm")
		if s == "" {
			return nil
		}
		if s != "0" && s != "1" {
			*errs = append(*errs, "telemetry: rpi_volt in0_lcrit_alarm: bad value "+clip(s))
			return nil
		}
		uv := s == "1"
		return &Throttling{Source: "hwmon", Now: Conditions{UnderVoltage: &uv}}
	}
	return nil
}

// clip quotes s for an error message, cut to a sane length.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strconv.Quote(s)
}

// errText prefixes an error from an injected function with the package name
// unless it already carries it.
func errText(err error) string {
	s := err.Error()
	if !strings.HasPrefix(s, "telemetry: ") {
		s = "telemetry: " + s
	}
	return s
}
