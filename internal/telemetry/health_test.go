package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"testing/fstest"
	"time"
)

func TestReadBoards(t *testing.T) {
	no, yes := ptr(false), ptr(true)
	cases := []struct {
		board       string
		model       string
		serial      string
		revision    string
		cpuTemp     float64
		temps       int
		source      string // "" = no throttling source
		raw         string
		now         Conditions
		since       Conditions
		problems    []string
		load1       float64
		memTotal    uint64
		memAvail    uint64
		uptime      float64
		wifi        *WiFi
		absentKeys  []string // JSON keys that must be absent, not zero
		presentKeys []string
	}{
		{
			board: "pi3", model: "Raspberry Pi 3 Model B Rev 1.2", serial: "00000000a3f1c2d4", revision: "a02082",
			cpuTemp: 51.54, temps: 1,
			source: "sysfs", raw: "0x50000",
			now:   Conditions{no, no, no, no},
			since: Conditions{yes, no, yes, no},
			load1: 0.08, memTotal: 914700 << 10, memAvail: 718396 << 10, uptime: 423981.34,
			wifi:        &WiFi{Interface: "wlan0"},
			absentKeys:  []string{"cpu_percent", "link_quality", "signal_dbm"},
			presentKeys: []string{"throttling", "wifi", "disk"},
		},
		{
			board: "pi0w", model: "Raspberry Pi Zero W Rev 1.1", serial: "000000005e7a19c3", revision: "9000c1",
			cpuTemp: 39.704, temps: 1,
			source: "vcgencmd", raw: "0x0",
			now:   Conditions{nil, no, no, no},
			since: Conditions{nil, no, no, no},
			load1: 0.74, memTotal: 439592 << 10, memAvail: 325404 << 10, uptime: 27494.71,
			wifi:       &WiFi{Interface: "wlan0", Connected: true, LinkQuality: ptr(39), SignalDBm: ptr(-71)},
			absentKeys: []string{"cpu_percent"},
		},
		{
			board: "pi4", model: "Raspberry Pi 4 Model B Rev 1.4", serial: "10000000b3c5d2e1", revision: "c03114",
			cpuTemp: 61.835, temps: 1,
			source: "vcgencmd", raw: "0x50005",
			now:      Conditions{yes, no, yes, no},
			since:    Conditions{yes, no, yes, no},
			problems: []string{"under_voltage", "throttled"},
			load1:    1.42, memTotal: 3885264 << 10, memAvail: 3353196 << 10, uptime: 86423.47,
			wifi: &WiFi{Interface: "wlan0", Connected: true, LinkQuality: ptr(56), SignalDBm: ptr(-54)},
		},
		{
			board: "pi5", model: "Raspberry Pi 5 Model B Rev 1.0", serial: "6c1f8a2e9d3b4057", revision: "d04170",
			cpuTemp: 57.35, temps: 2, // cpu-thermal and the RP1's rp1_adc
			source: "vcgencmd", raw: "0x80000",
			now:   Conditions{no, no, no, no},
			since: Conditions{no, no, no, yes},
			load1: 0.55, memTotal: 8245616 << 10, memAvail: 7580160 << 10, uptime: 53118.9,
			wifi: &WiFi{Interface: "wlan0", Connected: true, LinkQuality: ptr(62), SignalDBm: ptr(-48)},
		},
		{
			board: "x86", model: "OptiPlex 7050",
			cpuTemp: 38, temps: 9, // 3 zones, nvme, 5 coretemp; the acpitz hwmon copies are left out
			load1: 0.27, memTotal: 16227684 << 10, memAvail: 13460812 << 10, uptime: 318242.08,
			absentKeys: []string{"throttling", "wifi", "cpu_percent", "serial", "revision", "errors"},
		},
	}
	for _, c := range cases {
		t.Run(c.board, func(t *testing.T) {
			r := treeReader(t, c.board)
			h := r.Read(context.Background())
			if len(h.Errors) > 0 {
				t.Errorf("errors: %q", h.Errors)
			}
			if h.Board == nil || h.Board.Model != c.model || h.Board.Serial != c.serial || h.Board.Revision != c.revision {
				t.Errorf("board %+v, want %q %q %q", h.Board, c.model, c.serial, c.revision)
			}
			if h.CPUTempC == nil || *h.CPUTempC != c.cpuTemp {
				t.Errorf("cpu temp %v, want %v", fmtPtr(h.CPUTempC), c.cpuTemp)
			}
			if len(h.Temps) != c.temps {
				t.Errorf("%d temps, want %d: %+v", len(h.Temps), c.temps, h.Temps)
			}
			if c.source == "" {
				if h.Throttling != nil {
					t.Errorf("throttling %+v, want absent", h.Throttling)
				}
			} else if th := h.Throttling; th == nil || th.Source != c.source || th.Raw != c.raw ||
				!sameConditions(th.Now, c.now) || th.SinceBoot == nil || !sameConditions(*th.SinceBoot, c.since) {
				t.Errorf("throttling %s, want %s %s now %s since %s", jsonOf(th), c.source, c.raw, jsonOf(c.now), jsonOf(c.since))
			}
			if p := h.Problems(); !slices.Equal(p, c.problems) {
				t.Errorf("problems %q, want %q", p, c.problems)
			}
			if h.CPUPercent != nil {
				t.Errorf("cpu percent %v on the first read, want absent", *h.CPUPercent)
			}
			if h.Load == nil || h.Load.Load1 != c.load1 {
				t.Errorf("load %+v, want load1 %v", h.Load, c.load1)
			}
			if m := h.Memory; m == nil || m.TotalBytes != c.memTotal || m.AvailableBytes != c.memAvail {
				t.Errorf("memory %+v, want %d/%d", m, c.memAvail, c.memTotal)
			}
			if h.UptimeS == nil || *h.UptimeS != c.uptime {
				t.Errorf("uptime %v, want %v", fmtPtr(h.UptimeS), c.uptime)
			}
			if jsonOf(h.WiFi) != jsonOf(c.wifi) {
				t.Errorf("wifi %s, want %s", jsonOf(h.WiFi), jsonOf(c.wifi))
			}
			if d := h.Disk; d == nil || d.FreeBytes != 12<<30 || d.TotalBytes != 29<<30 || d.Path != r.MediaDir {
				t.Errorf("disk %+v", d)
			}
			if h.Version != "1.2.3" || h.Time.IsZero() {
				t.Errorf("version %q time %v", h.Version, h.Time)
			}
			keys := jsonKeys(t, h)
			for _, k := range c.absentKeys {
				if keys[k] {
					t.Errorf("JSON has %q, want it absent: %s", k, jsonOf(h))
				}
			}
			for _, k := range c.presentKeys {
				if !keys[k] {
					t.Errorf("JSON lacks %q: %s", k, jsonOf(h))
				}
			}
		})
	}
}

// The Pi Zero W's under-voltage must read as unknown (null), not OK.
func TestZeroUnderVoltageIsNull(t *testing.T) {
	h := treeReader(t, "pi0w").Read(context.Background())
	var doc struct {
		Throttling struct {
			Now       map[string]any `json:"now"`
			SinceBoot map[string]any `json:"since_boot"`
		} `json:"throttling"`
	}
	if err := json.Unmarshal([]byte(jsonOf(h)), &doc); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]map[string]any{"now": doc.Throttling.Now, "since_boot": doc.Throttling.SinceBoot} {
		if v, ok := m["under_voltage"]; !ok || v != nil {
			t.Errorf("%s.under_voltage = %v (present %v), want null", name, v, ok)
		}
		if v := m["throttled"]; v != false {
			t.Errorf("%s.throttled = %v, want false", name, v)
		}
	}
}

func TestCPUPercentOverTwoSamples(t *testing.T) {
	stat := func(s string) fstest.MapFS {
		return fstest.MapFS{"proc/stat": {Data: []byte(s + "\ncpu0 0 0 0 0 0 0 0 0 0 0\nctxt 1\n")}}
	}
	cases := []struct {
		name string
		stat string
		want *float64
	}{
		{"first read has no previous sample", "cpu  100 0 100 800 0 0 0 0 0 0", nil},
		// 300-200 busy of 1200-1000 ticks; iowait counts as idle.
		{"second read", "cpu  150 0 150 880 20 0 0 0 0 0", ptr(50.0)},
		{"no time passed", "cpu  150 0 150 880 20 0 0 0 0 0", nil},
		// guest and guest_nice are already in user and nice.
		{"all busy", "cpu  250 0 250 880 20 0 0 0 999 999", ptr(100.0)},
		{"counters went back", "cpu  10 0 10 10 0 0 0 0 0 0", nil},
		{"after the reset", "cpu  20 0 20 30 0 0 0 0 0 0", ptr(50.0)},
	}
	r := &Reader{}
	for _, c := range cases {
		r.Root = stat(c.stat)
		h := r.Read(context.Background())
		if fmtPtr(h.CPUPercent) != fmtPtr(c.want) {
			t.Errorf("%s: %v, want %v", c.name, fmtPtr(h.CPUPercent), fmtPtr(c.want))
		}
	}
}

func TestProblems(t *testing.T) {
	cases := []struct {
		name string
		t    *Throttling
		want []string
	}{
		{"no source", nil, nil},
		{"all clear", &Throttling{Now: Conditions{ptr(false), ptr(false), ptr(false), ptr(false)}}, nil},
		{"unknown is no problem", &Throttling{Now: Conditions{}}, nil},
		{"all", &Throttling{Now: Conditions{ptr(true), ptr(true), ptr(true), ptr(true)}},
			[]string{"under_voltage", "freq_capped", "throttled", "soft_temp_limit"}},
		{"since boot only", func() *Throttling { t := decodeThrottled(0xf0000); return &t }(), nil},
		{"0x50005", func() *Throttling { t := decodeThrottled(0x50005); return &t }(), []string{"under_voltage", "throttled"}},
		{"0x80008", func() *Throttling { t := decodeThrottled(0x80008); return &t }(), []string{"soft_temp_limit"}},
		{"hwmon", &Throttling{Source: "hwmon", Now: Conditions{UnderVoltage: ptr(true)}}, []string{"under_voltage"}},
	}
	for _, c := range cases {
		if got := (Health{Throttling: c.t}).Problems(); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestReadEmptyRoot(t *testing.T) {
	r := &Reader{Root: fstest.MapFS{}, Now: func() time.Time { return time.Unix(1, 0) }}
	h := r.Read(context.Background())
	if got := jsonOf(h); got != `{"time":"1970-01-01T00:00:01Z"}` {
		t.Errorf("empty root: %s", got)
	}
}

func TestReadErrors(t *testing.T) {
	r := &Reader{
		Root: fstest.MapFS{
			"proc/loadavg":      {Data: []byte("zero\n")},
			"proc/meminfo":      {Data: []byte("MemTotal: lots kB\n")},
			throttledSysfs:      {Data: []byte("50000\n")},
			"proc/uptime":       {Data: []byte("12.5 40.0\n")},
			"proc/stat":         {Data: []byte("intr 1\n")},
			"proc/net/wireless": {Data: []byte("h1\nh2\n wlan0 0000 1 2 3\n")},
		},
		Vcgencmd: func(context.Context, ...string) (string, error) {
			return "", errors.New("vcgencmd get_throttled: exit status 255: \"VCHI initialization failed\"")
		},
		StatFS: func(string) (uint64, uint64, error) {
			return 0, 0, errors.New("telemetry: statfs /media: no such file or directory")
		},
		MediaDir: "/media",
	}
	h := r.Read(context.Background())
	if h.Throttling == nil || h.Throttling.Source != "sysfs" {
		t.Errorf("throttling %s, want the sysfs fallback", jsonOf(h.Throttling))
	}
	if h.Load != nil || h.Memory != nil || h.Disk != nil || h.WiFi != nil || h.UptimeS == nil {
		t.Errorf("health %s", jsonOf(h))
	}
	if len(h.Errors) != 6 {
		t.Errorf("%d errors, want 6: %q", len(h.Errors), h.Errors)
	}
	for _, e := range h.Errors {
		if len(e) < 11 || e[:11] != "telemetry: " {
			t.Errorf("error %q lacks the package prefix", e)
		}
	}
}

// The example in the report: one Read of the Pi 4 tree.
func TestPi4JSON(t *testing.T) {
	r := treeReader(t, "pi4")
	r.Now = func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }
	r.Read(context.Background())
	// 300 more busy ticks and 900 more idle ones than testdata/pi4.
	r.Root.(fstest.MapFS)["proc/stat"] = &fstest.MapFile{Data: []byte("cpu  718836 1291 235168 32891399 13910 0 18724 0 0 0\n")}
	h := r.Read(context.Background())
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", b)
	if h.CPUPercent == nil || *h.CPUPercent != 25 {
		t.Errorf("cpu percent %v, want 25", fmtPtr(h.CPUPercent))
	}
}

func sameConditions(a, b Conditions) bool { return jsonOf(a) == jsonOf(b) }

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// jsonKeys collects every object key in v's JSON, at any depth.
func jsonKeys(t *testing.T, v any) map[string]bool {
	var doc any
	if err := json.Unmarshal([]byte(jsonOf(v)), &doc); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, v := range x {
				keys[k] = true
				walk(v)
			}
		case []any:
			for _, v := range x {
				walk(v)
			}
		}
	}
	walk(doc)
	return keys
}

func fmtPtr(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
