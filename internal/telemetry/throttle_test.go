package telemetry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDecodeThrottled(t *testing.T) {
	// Each row: word, then the now and since-boot flags in the order
	// under-voltage, frequency capped, throttled, soft temperature limit.
	cases := []struct {
		word       uint32
		raw        string
		now, since string
	}{
		{0x0, "0x0", "0000", "0000"},
		{0x1, "0x1", "1000", "0000"},
		{0x2, "0x2", "0100", "0000"},
		{0x4, "0x4", "0010", "0000"},
		{0x8, "0x8", "0001", "0000"},
		{0x10000, "0x10000", "0000", "1000"},
		{0x20000, "0x20000", "0000", "0100"},
		{0x40000, "0x40000", "0000", "0010"},
		{0x80000, "0x80000", "0000", "0001"},
		{0x50000, "0x50000", "0000", "1010"}, // under-voltage and throttling have occurred
		{0x50005, "0x50005", "1010", "1010"}, // under-voltage now, throttled now
		{0x80008, "0x80008", "0001", "0001"},
		{0xe0000, "0xe0000", "0000", "0111"},
		{0xf000f, "0xf000f", "1111", "1111"},
		// Bits the documentation does not name are ignored.
		{0xfff0fff0, "0xfff0fff0", "0000", "0000"},
	}
	flags := func(c Conditions) string {
		var b strings.Builder
		for _, f := range []*bool{c.UnderVoltage, c.FreqCapped, c.Throttled, c.SoftTempLimit} {
			switch {
			case f == nil:
				b.WriteByte('?')
			case *f:
				b.WriteByte('1')
			default:
				b.WriteByte('0')
			}
		}
		return b.String()
	}
	for _, c := range cases {
		th := decodeThrottled(c.word)
		if th.Raw != c.raw || flags(th.Now) != c.now || flags(*th.SinceBoot) != c.since {
			t.Errorf("%#x: raw %s now %s since %s, want %s %s %s", c.word, th.Raw, flags(th.Now), flags(*th.SinceBoot), c.raw, c.now, c.since)
		}
	}
}

func TestParseVcgencmdThrottled(t *testing.T) {
	cases := []struct {
		out  string
		want uint32
		err  string
	}{
		{"throttled=0x50005\n", 0x50005, ""},
		{"throttled=0x0\n", 0, ""},
		{"throttled=0x80008", 0x80008, ""},
		{"  throttled=0xE0000 \n", 0xe0000, ""},
		{"", 0, "unexpected output"},
		{"throttled=\n", 0, "unexpected output"},
		{"throttled=50005\n", 0, "unexpected output"},
		{"throttled=0x\n", 0, "bad value"},
		{"throttled=0xzz\n", 0, "bad value"},
		{"throttled=0x1ffffffff\n", 0, "bad value"},
		{"throttled=0x5 0005\n", 0, "bad value"},
		{"VCHI initialization failed\n", 0, "unexpected output"},
		{`error=2 error_msg="Command not registered"` + "\n", 0, "unexpected output"},
		{"temp=48.3'C\n", 0, "unexpected output"},
		{strings.Repeat("x", 500), 0, "…"},
	}
	for _, c := range cases {
		got, err := parseVcgencmdThrottled(c.out)
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("%q: %#x, %v; want %#x", c.out, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "telemetry: ") {
			t.Errorf("%q: error %v, want one containing %q", c.out, err, c.err)
		}
		if err != nil && len(err.Error()) > 150 {
			t.Errorf("%q: error not clipped: %d bytes", c.out[:10], len(err.Error()))
		}
	}
}

func TestParseSysfsThrottled(t *testing.T) {
	cases := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"50000\n", 0x50000, true},
		{"0\n", 0, true},
		{"80008\n", 0x80008, true},
		{"0x50005\n", 0x50005, true},
		{"\n", 0, false},
		{"throttled=0x5\n", 0, false},
	}
	for _, c := range cases {
		got, err := parseSysfsThrottled([]byte(c.in))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%q: %#x, %v", c.in, got, err)
		}
	}
}

func TestThrottlingSources(t *testing.T) {
	const pi4 = "Raspberry Pi 4 Model B Rev 1.4\x00"
	vc := func(out string, err error) func(context.Context, ...string) (string, error) {
		return func(_ context.Context, args ...string) (string, error) {
			if len(args) != 1 || args[0] != "get_throttled" {
				t.Errorf("vcgencmd %q", args)
			}
			return out, err
		}
	}
	hwmon := func(alarm string) fstest.MapFS {
		return fstest.MapFS{
			"sys/class/hwmon/hwmon0/name":            {Data: []byte("cpu_thermal\n")},
			"sys/class/hwmon/hwmon3/name":            {Data: []byte("rpi_volt\n")},
			"sys/class/hwmon/hwmon3/in0_lcrit_alarm": {Data: []byte(alarm + "\n")},
		}
	}
	with := func(m fstest.MapFS, kv ...string) fstest.MapFS {
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
		}
		return m
	}
	cases := []struct {
		name   string
		root   fstest.MapFS
		vc     func(context.Context, ...string) (string, error)
		want   string // JSON of Throttling
		errors int
	}{
		{"nothing", fstest.MapFS{}, nil, "null", 0},
		{"vcgencmd first", with(hwmon("0"), throttledSysfs, "0\n"), vc("throttled=0x50005\n", nil),
			`{"source":"vcgencmd","raw":"0x50005","now":{"under_voltage":true,"freq_capped":false,"throttled":true,"soft_temp_limit":false},"since_boot":{"under_voltage":true,"freq_capped":false,"throttled":true,"soft_temp_limit":false}}`, 0},
		{"vcgencmd fails, sysfs", with(hwmon("0"), throttledSysfs, "50000\n"), vc("", errors.New("exit status 255")),
			`{"source":"sysfs","raw":"0x50000","now":{"under_voltage":false,"freq_capped":false,"throttled":false,"soft_temp_limit":false},"since_boot":{"under_voltage":true,"freq_capped":false,"throttled":true,"soft_temp_limit":false}}`, 1},
		{"vcgencmd garbage, sysfs", with(fstest.MapFS{}, throttledSysfs, "0\n"), vc("VCHI initialization failed\n", nil),
			`{"source":"sysfs","raw":"0x0","now":{"under_voltage":false,"freq_capped":false,"throttled":false,"soft_temp_limit":false},"since_boot":{"under_voltage":false,"freq_capped":false,"throttled":false,"soft_temp_limit":false}}`, 1},
		{"firmware device found through its driver", with(fstest.MapFS{}, "sys/bus/platform/drivers/raspberrypi-firmware/soc@107c000000:firmware/get_throttled", "8\n"), nil,
			`{"source":"sysfs","raw":"0x8","now":{"under_voltage":false,"freq_capped":false,"throttled":false,"soft_temp_limit":true},"since_boot":{"under_voltage":false,"freq_capped":false,"throttled":false,"soft_temp_limit":false}}`, 0},
		{"bad sysfs, hwmon", with(hwmon("1"), throttledSysfs, "?\n"), nil,
			`{"source":"hwmon","now":{"under_voltage":true,"freq_capped":null,"throttled":null,"soft_temp_limit":null}}`, 1},
		{"hwmon only", hwmon("0"), nil,
			`{"source":"hwmon","now":{"under_voltage":false,"freq_capped":null,"throttled":null,"soft_temp_limit":null}}`, 0},
		{"hwmon garbage", hwmon("2"), nil, "null", 1},
		{"zero w via hwmon", with(hwmon("0"), "proc/device-tree/model", "Raspberry Pi Zero W Rev 1.1\x00"), nil,
			`{"source":"hwmon","now":{"under_voltage":null,"freq_capped":null,"throttled":null,"soft_temp_limit":null}}`, 0},
		{"zero via sysfs", with(fstest.MapFS{}, "proc/device-tree/model", "Raspberry Pi Zero Rev 1.3\x00", throttledSysfs, "50005\n"), nil,
			`{"source":"sysfs","raw":"0x50005","now":{"under_voltage":null,"freq_capped":false,"throttled":true,"soft_temp_limit":false},"since_boot":{"under_voltage":null,"freq_capped":false,"throttled":true,"soft_temp_limit":false}}`, 0},
		{"zero 2 w can detect", with(fstest.MapFS{}, "proc/device-tree/model", "Raspberry Pi Zero 2 W Rev 1.0\x00"), vc("throttled=0x1\n", nil),
			`{"source":"vcgencmd","raw":"0x1","now":{"under_voltage":true,"freq_capped":false,"throttled":false,"soft_temp_limit":false},"since_boot":{"under_voltage":false,"freq_capped":false,"throttled":false,"soft_temp_limit":false}}`, 0},
		{"pi 4 model", with(fstest.MapFS{}, "proc/device-tree/model", pi4), vc("throttled=0x10000\n", nil),
			`{"source":"vcgencmd","raw":"0x10000","now":{"under_voltage":false,"freq_capped":false,"throttled":false,"soft_temp_limit":false},"since_boot":{"under_voltage":true,"freq_capped":false,"throttled":false,"soft_temp_limit":false}}`, 0},
	}
	for _, c := range cases {
		r := &Reader{Root: c.root, Vcgencmd: c.vc}
		h := r.Read(context.Background())
		if got := jsonOf(h.Throttling); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
		if len(h.Errors) != c.errors {
			t.Errorf("%s: errors %q, want %d", c.name, h.Errors, c.errors)
		}
	}
}

func TestVcgencmdGetsADeadline(t *testing.T) {
	r := &Reader{Root: fstest.MapFS{}, Vcgencmd: func(ctx context.Context, _ ...string) (string, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("vcgencmd ran without a deadline")
		}
		return "throttled=0x0\n", nil
	}}
	r.Read(context.Background())
}

func TestCanDetectUnderVoltage(t *testing.T) {
	cases := []struct {
		b    *Board
		want bool
	}{
		{nil, true},
		{&Board{Model: "OptiPlex 7050"}, true},
		{&Board{Model: "Raspberry Pi 3 Model B Rev 1.2", Revision: "a02082"}, true},
		{&Board{Model: "Raspberry Pi Zero W Rev 1.1"}, false},
		{&Board{Model: "Raspberry Pi Zero Rev 1.3"}, false},
		{&Board{Model: "Raspberry Pi Zero 2 W Rev 1.0", Revision: "902120"}, true},
		// By revision code alone: 9000c1 Zero W, 900093 Zero, 902120 Zero 2 W.
		{&Board{Revision: "9000c1"}, false},
		{&Board{Revision: "900093"}, false},
		{&Board{Revision: "902120"}, true},
		{&Board{Revision: "0010"}, true}, // old-style code: no type field
		{&Board{Revision: "junk"}, true},
	}
	for _, c := range cases {
		if got := canDetectUnderVoltage(c.b); got != c.want {
			t.Errorf("%+v: %v, want %v", c.b, got, c.want)
		}
	}
}
