package telemetry

import (
	"encoding/binary"
	"io/fs"
	"strconv"
	"strings"
)

// BoardModel names the board: the device tree's model on a Raspberry Pi
// ("Raspberry Pi 4 Model B Rev 1.4"), DMI's product name on a PC, or "".
func BoardModel(root fs.FS) string {
	for _, p := range []string{"proc/device-tree/model", "sys/firmware/devicetree/base/model", "sys/devices/virtual/dmi/id/product_name"} {
		if s := readString(root, p); s != "" {
			return s
		}
	}
	return ""
}

// Board is what identifies the hardware. Empty fields are unknown.
type Board struct {
	Model string `json:"model,omitempty"`
	// Serial is the Raspberry Pi's serial number ("10000000b3c5d2e1").
	Serial string `json:"serial,omitempty"`
	// Revision is the Raspberry Pi revision code ("c03114"), documented at
	// https://www.raspberrypi.com/documentation/computers/raspberry-pi.html#raspberry-pi-revision-codes
	Revision string `json:"revision,omitempty"`
}

// ReadBoard reads the board's model, serial number and revision code, or
// returns nil when none is known.
func ReadBoard(root fs.FS) *Board {
	b := Board{Model: BoardModel(root)}
	info := cpuinfoPi(root)
	b.Serial = readString(root, "proc/device-tree/serial-number")
	if b.Serial == "" {
		b.Serial = info["Serial"]
	}
	b.Revision = info["Revision"]
	if b.Revision == "" {
		// The firmware also puts the code in the device tree, as a
		// big-endian 32-bit cell.
		if c, err := fs.ReadFile(root, "proc/device-tree/system/linux,revision"); err == nil && len(c) == 4 {
			b.Revision = strconv.FormatUint(uint64(binary.BigEndian.Uint32(c)), 16)
		}
	}
	if b.Model == "" {
		b.Model = info["Model"]
	}
	if b == (Board{}) {
		return nil
	}
	return &b
}

// cpuinfoPi returns the board lines the Raspberry Pi kernel appends to
// /proc/cpuinfo ("Revision\t: c03114", "Serial\t\t: ...", "Model\t\t: ...").
// On a PC none of these keys exist (its per-CPU key is the lower-case
// "model").
func cpuinfoPi(root fs.FS) map[string]string {
	b, err := fs.ReadFile(root, "proc/cpuinfo")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k = strings.TrimSpace(k); k {
		case "Revision", "Serial", "Model":
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// canDetectUnderVoltage reports whether the board's firmware can see
// under-voltage. The Pi Zero and Zero W have no supply monitor, so their
// get_throttled under-voltage bits stay 0 whatever the supply does (the
// kernel's raspberrypi-hwmon documentation lists only the A+, B+, 2 B, 3 B
// and 3 B+ as supported boards). The Zero 2 W can.
func canDetectUnderVoltage(b *Board) bool {
	if b == nil {
		return true
	}
	if strings.Contains(b.Model, "Raspberry Pi Zero") && !strings.Contains(b.Model, "Zero 2") {
		return false
	}
	t, ok := revisionType(b.Revision)
	return !ok || (t != 0x09 && t != 0x0c) // 0x09 Zero, 0x0c Zero W
}

// revisionType decodes the board type of a new-style revision code (bit 23
// set; type in bits 4-11).
func revisionType(code string) (uint32, bool) {
	v, err := strconv.ParseUint(code, 16, 32)
	if err != nil || v&(1<<23) == 0 {
		return 0, false
	}
	return uint32(v>>4) & 0xff, true
}

// readString reads a small text file, trimming the device tree's NUL
// terminator and surrounding white space; "" when absent.
func readString(root fs.FS, name string) string {
	b, err := fs.ReadFile(root, name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
}
