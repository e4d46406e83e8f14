package telemetry

import (
	"testing"
	"testing/fstest"
)

func TestBoardModel(t *testing.T) {
	cases := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		// The device tree string is NUL-terminated on a Pi.
		{"pi4", fstest.MapFS{"proc/device-tree/model": {Data: []byte("Raspberry Pi 4 Model B Rev 1.4\x00")}}, "Raspberry Pi 4 Model B Rev 1.4"},
		{"pi zero w via sysfs", fstest.MapFS{"sys/firmware/devicetree/base/model": {Data: []byte("Raspberry Pi Zero W Rev 1.1\x00")}}, "Raspberry Pi Zero W Rev 1.1"},
		{"pc", fstest.MapFS{"sys/devices/virtual/dmi/id/product_name": {Data: []byte("OptiPlex 7050\n")}}, "OptiPlex 7050"},
		{"nothing", fstest.MapFS{}, ""},
	}
	for _, c := range cases {
		if got := BoardModel(c.fs); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
