package telemetry

import "testing"

func TestParseWireless(t *testing.T) {
	const head = "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n" +
		" face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
	cases := []struct {
		name string
		in   string
		want string // JSON
		err  bool
	}{
		{"no wireless interface", head, "null", false},
		{"file without headers", "", "null", false},
		{"associated", head + " wlan0: 0000   56.  -54.  -256        0      0      0      0      0        0\n",
			`{"interface":"wlan0","connected":true,"link_quality":56,"signal_dbm":-54}`, false},
		// The '.' update markers are cleared after each read on some drivers.
		{"no update markers", head + " wlan0: 0000   70   -30   -256        0      0      0      0      0        0\n",
			`{"interface":"wlan0","connected":true,"link_quality":70,"signal_dbm":-30}`, false},
		{"not associated: zeros are no reading", head + " wlan0: 0000    0     0     0        0      0      0      0      0        0\n",
			`{"interface":"wlan0","connected":false}`, false},
		{"driver units, not dBm", head + "  ath0: 0000   45.   60.    0        0      0      0      0      0        0\n",
			`{"interface":"ath0","connected":true,"link_quality":45}`, false},
		{"the associated one of two", head +
			" wlan0: 0000    0     0     0        0      0      0      0      0        0\n" +
			" wlan1: 0000   40.  -70.  -256        0      0      0      0      0        0\n",
			`{"interface":"wlan1","connected":true,"link_quality":40,"signal_dbm":-70}`, false},
		{"garbage", head + "wlan0 something\n", "", true},
		{"bad number", head + " wlan0: 0000   x.  -54.  -256        0      0      0      0      0        0\n", "", true},
	}
	for _, c := range cases {
		w, err := parseWireless([]byte(c.in))
		if c.err {
			if err == nil {
				t.Errorf("%s: no error", c.name)
			}
			continue
		}
		if err != nil || jsonOf(w) != c.want {
			t.Errorf("%s: %s, %v; want %s", c.name, jsonOf(w), err, c.want)
		}
	}
}
