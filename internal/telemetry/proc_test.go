package telemetry

import (
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	cases := []struct {
		in          string
		busy, total uint64
		err         string
	}{
		{"cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n", 1 + 2 + 3 + 6 + 7 + 8, 36, ""},
		// Older kernels print fewer columns.
		{"cpu  10 0 10 80\n", 20, 100, ""},
		{"cpu0 1 2 3 4\n", 0, 0, "no cpu line"},
		{"cpu  1 2\n", 0, 0, "no cpu line"},
		{"cpu  1 2 x 4\n", 0, 0, "bad cpu field"},
		{"", 0, 0, "no cpu line"},
	}
	for _, c := range cases {
		s, err := parseProcStat([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || s.busy != c.busy || s.total != c.total {
			t.Errorf("%q: %+v, %v; want busy %d total %d", c.in, s, err, c.busy, c.total)
		}
	}
}

func TestParseLoadavgMeminfoUptime(t *testing.T) {
	if l, err := parseLoadavg([]byte("0.31 0.24 0.19 1/236 2154\n")); err != nil || *l != (Load{0.31, 0.24, 0.19}) {
		t.Errorf("loadavg %+v %v", l, err)
	}
	for _, bad := range []string{"", "0.1 0.2\n", "a b c 1/2 3\n"} {
		if _, err := parseLoadavg([]byte(bad)); err == nil {
			t.Errorf("loadavg %q: no error", bad)
		}
	}

	m, err := parseMeminfo([]byte("MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     250 kB\n"))
	if err != nil || *m != (Memory{TotalBytes: 1024000, AvailableBytes: 256000, UsedPercent: 75}) {
		t.Errorf("meminfo %+v %v", m, err)
	}
	for _, bad := range []string{
		"MemTotal: 1000 kB\n",                    // no MemAvailable (kernel < 3.14)
		"MemTotal: 1000\nMemAvailable: 10 kB\n",  // no unit
		"MemTotal: x kB\nMemAvailable: 10 kB\n",  // not a number
		"MemTotal: 0 kB\nMemAvailable: 0 kB\n",   // nothing
		"MemTotalX: 1 kB\nMemAvailableX: 1 kB\n", // other keys
	} {
		if _, err := parseMeminfo([]byte(bad)); err == nil {
			t.Errorf("meminfo %q: no error", bad)
		}
	}

	if u, err := parseUptime([]byte("86423.47 341254.62\n")); err != nil || u != 86423.47 {
		t.Errorf("uptime %v %v", u, err)
	}
	for _, bad := range []string{"", "x 1\n", "-1 0\n"} {
		if _, err := parseUptime([]byte(bad)); err == nil {
			t.Errorf("uptime %q: no error", bad)
		}
	}
}
