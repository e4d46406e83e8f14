// Package telemetry reads the host's hardware facts and health through an
// fs.FS root (/ on the device, testdata trees in tests).
package telemetry

import (
	"io/fs"
	"strings"
)

// BoardModel names the board: the device tree's model on a Raspberry Pi
// ("Raspberry Pi 4 Model B Rev 1.4"), DMI's product name on a PC, or "".
func BoardModel(root fs.FS) string {
	for _, p := range []string{"proc/device-tree/model", "sys/firmware/devicetree/base/model", "sys/devices/virtual/dmi/id/product_name"} {
		b, err := fs.ReadFile(root, p)
		if err != nil {
			continue
		}
		if s := strings.TrimSpace(strings.TrimRight(string(b), "\x00")); s != "" {
			return s
		}
	}
	return ""
}
