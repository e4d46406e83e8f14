package telemetry

import (
	"fmt"
	"strconv"
	"strings"
)

// WiFi is the wireless link from proc/net/wireless.
type WiFi struct {
	Interface string `json:"interface"`
	// Connected is false for an interface that is not associated; the
	// kernel then prints zeros, which are not a reading.
	Connected bool `json:"connected"`
	// LinkQuality is the driver's link quality. cfg80211 drivers (the
	// Pi's brcmfmac, iwlwifi) derive it from the signal clamped to
	// -110..-40 dBm, plus 110: 0 to 70.
	LinkQuality *int `json:"link_quality,omitempty"`
	// SignalDBm is the received signal level.
	SignalDBm *int `json:"signal_dbm,omitempty"`
}

// parseWireless reads proc/net/wireless (net/wireless/wext-proc.c): two
// header lines, then one line per wireless interface:
//
//	wlan0: 0000   56.  -54.  -256        0      0      0      0      0        0
//
// It returns the first associated interface, else the first one, else nil.
func parseWireless(b []byte) (*WiFi, error) {
	var first *WiFi
	n := 0
	for line := range strings.Lines(string(b)) {
		if n++; n <= 2 {
			continue // headers
		}
		name, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || len(f) < 4 {
			return nil, fmt.Errorf("telemetry: proc/net/wireless: bad line %s", clip(strings.TrimSpace(line)))
		}
		qual, err1 := strconv.Atoi(strings.TrimSuffix(f[1], "."))
		level, err2 := strconv.Atoi(strings.TrimSuffix(f[2], "."))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("telemetry: proc/net/wireless: bad line %s", clip(strings.TrimSpace(line)))
		}
		w := &WiFi{Interface: strings.TrimSpace(name)}
		// An interface that is not associated has no statistics, and the
		// kernel prints zeros for it.
		if qual != 0 || level != 0 {
			w.Connected = true
			w.LinkQuality = &qual
			if level < 0 { // dBm; positive levels are driver units
				w.SignalDBm = &level
			}
			return w, nil
		}
		if first == nil {
			first = w
		}
	}
	return first, nil
}
