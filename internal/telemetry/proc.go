package telemetry

import (
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// Load is the run-queue load average (proc/loadavg).
type Load struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// Memory is RAM from proc/meminfo, in bytes. Available is the kernel's
// estimate of what can be allocated without swapping (MemAvailable).
type Memory struct {
	TotalBytes     uint64  `json:"total_bytes"`
	AvailableBytes uint64  `json:"available_bytes"`
	UsedPercent    float64 `json:"used_percent"` // one decimal
}

// cpuSample is the all-CPU line of proc/stat, in clock ticks.
type cpuSample struct{ busy, total uint64 }

// parseProcStat reads the aggregate "cpu " line: user nice system idle
// iowait irq softirq steal [guest guest_nice]. guest time is already counted
// in user and nice, so only the first eight add up to the total; idle and
// iowait are the idle part.
func parseProcStat(b []byte) (cpuSample, error) {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "cpu ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 4 {
			break
		}
		var s cpuSample
		for i := 0; i < len(f) && i < 8; i++ {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return cpuSample{}, fmt.Errorf("telemetry: proc/stat: bad cpu field %s", clip(f[i]))
			}
			s.total += v
			if i != 3 && i != 4 { // idle, iowait
				s.busy += v
			}
		}
		return s, nil
	}
	return cpuSample{}, fmt.Errorf("telemetry: proc/stat: no cpu line")
}

// cpuPercent is the busy share of the ticks between two samples, or false
// when no time passed or the counters went back.
func cpuPercent(prev, cur cpuSample) (float64, bool) {
	if cur.total <= prev.total || cur.busy < prev.busy {
		return 0, false
	}
	p := float64(cur.busy-prev.busy) / float64(cur.total-prev.total) * 100
	return round1(min(p, 100)), true
}

// parseLoadavg reads "0.31 0.24 0.19 1/236 2154".
func parseLoadavg(b []byte) (*Load, error) {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil, fmt.Errorf("telemetry: proc/loadavg: short %s", clip(string(b)))
	}
	var v [3]float64
	for i := range v {
		x, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("telemetry: proc/loadavg: bad value %s", clip(f[i]))
		}
		v[i] = x
	}
	return &Load{Load1: v[0], Load5: v[1], Load15: v[2]}, nil
}

// parseMeminfo reads MemTotal and MemAvailable ("MemTotal:  3885264 kB").
func parseMeminfo(b []byte) (*Memory, error) {
	var total, avail uint64
	var haveTotal, haveAvail bool
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "MemTotal" && k != "MemAvailable") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return nil, fmt.Errorf("telemetry: proc/meminfo: bad %s line %s", k, clip(strings.TrimSpace(line)))
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("telemetry: proc/meminfo: bad %s value %s", k, clip(f[0]))
		}
		if k == "MemTotal" {
			total, haveTotal = n*1024, true
		} else {
			avail, haveAvail = n*1024, true
		}
	}
	if !haveTotal || !haveAvail || total == 0 {
		return nil, fmt.Errorf("telemetry: proc/meminfo: no MemTotal or MemAvailable")
	}
	used := float64(total-min(avail, total)) / float64(total) * 100
	return &Memory{TotalBytes: total, AvailableBytes: avail, UsedPercent: round1(used)}, nil
}

// parseUptime reads the first field of "86423.47 341254.62", seconds since
// boot.
func parseUptime(b []byte) (float64, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("telemetry: proc/uptime: empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("telemetry: proc/uptime: bad value %s", clip(f[0]))
	}
	return v, nil
}

// round1 rounds a percentage to one decimal.
func round1(p float64) float64 { return math.Round(p*10) / 10 }

// readProc reads name under root and parses it. A missing file is absent,
// not an error; a file that does not parse is reported through errs.
func readProc[T any](root fs.FS, name string, parse func([]byte) (T, error), errs *[]string) (T, bool) {
	var zero T
	b, err := fs.ReadFile(root, name)
	if err != nil {
		return zero, false
	}
	v, err := parse(b)
	if err != nil {
		*errs = append(*errs, err.Error())
		return zero, false
	}
	return v, true
}
