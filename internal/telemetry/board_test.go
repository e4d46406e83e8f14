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

func TestReadBoard(t *testing.T) {
	cases := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"nothing", fstest.MapFS{}, "null"},
		{"device tree serial wins", fstest.MapFS{
			"proc/device-tree/model":         {Data: []byte("Raspberry Pi 4 Model B Rev 1.4\x00")},
			"proc/device-tree/serial-number": {Data: []byte("10000000b3c5d2e1\x00")},
			"proc/cpuinfo":                   {Data: []byte("processor\t: 0\nmodel name\t: x\n\nRevision\t: c03114\nSerial\t\t: 1000000000000000\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")},
		}, `{"model":"Raspberry Pi 4 Model B Rev 1.4","serial":"10000000b3c5d2e1","revision":"c03114"}`},
		{"cpuinfo only", fstest.MapFS{
			"proc/cpuinfo": {Data: []byte("Hardware\t: BCM2835\nRevision\t: 9000c1\nSerial\t\t: 000000005e7a19c3\nModel\t\t: Raspberry Pi Zero W Rev 1.1\n")},
		}, `{"model":"Raspberry Pi Zero W Rev 1.1","serial":"000000005e7a19c3","revision":"9000c1"}`},
		{"revision from the device tree cell", fstest.MapFS{
			"proc/device-tree/model":                 {Data: []byte("Raspberry Pi 5 Model B Rev 1.0\x00")},
			"proc/device-tree/system/linux,revision": {Data: []byte{0x00, 0xd0, 0x41, 0x70}},
		}, `{"model":"Raspberry Pi 5 Model B Rev 1.0","revision":"d04170"}`},
		{"pc cpuinfo has no board keys", fstest.MapFS{
			"sys/devices/virtual/dmi/id/product_name": {Data: []byte("OptiPlex 7050\n")},
			"proc/cpuinfo": {Data: []byte("processor\t: 0\nmodel\t\t: 158\nmodel name\t: Intel(R) Core(TM) i5-7500 CPU @ 3.40GHz\n")},
		}, `{"model":"OptiPlex 7050"}`},
	}
	for _, c := range cases {
		if got := jsonOf(ReadBoard(c.fs)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
