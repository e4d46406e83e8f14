package telemetry

import (
	"context"
	"io/fs"
	"sync"
	"time"
)

// Health is one snapshot of the device's health. A nil field is a source
// this machine lacks (or that failed, see Errors); JSON omits it, so absent
// never reads as zero.
type Health struct {
	Time    time.Time `json:"time,omitzero"`
	Version string    `json:"version,omitempty"` // the agent's
	Board   *Board    `json:"board,omitempty"`

	// CPUTempC is the main sensor of Temps: the SoC on a Pi, the CPU
	// package on a PC.
	CPUTempC   *float64    `json:"cpu_temp_c,omitempty"`
	Temps      []Temp      `json:"temps,omitempty"`
	Throttling *Throttling `json:"throttling,omitempty"`

	// CPUPercent is the busy share of all CPUs since the previous Read, to
	// one decimal.
	CPUPercent *float64 `json:"cpu_percent,omitempty"`
	Load       *Load    `json:"load,omitempty"`
	Memory     *Memory  `json:"memory,omitempty"`
	Disk       *Disk    `json:"disk,omitempty"`
	WiFi       *WiFi    `json:"wifi,omitempty"`
	UptimeS    *float64 `json:"uptime_s,omitempty"`

	// Errors lists sources that exist but could not be read or parsed.
	Errors []string `json:"errors,omitempty"`
}

// Disk is the file system holding the media directory, in bytes. Free is
// what an unprivileged process can still write.
type Disk struct {
	Path       string `json:"path"`
	FreeBytes  uint64 `json:"free_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
}

// Reader reads health from a root file system. Its fields are the outside
// world; NewDeviceReader fills them for the machine it runs on. A Reader
// keeps the previous CPU sample between Reads, so it must not be copied
// after first use. It is safe for concurrent use.
type Reader struct {
	Root fs.FS // os.DirFS("/") on a device: proc, sys
	// Vcgencmd runs the Raspberry Pi firmware's vcgencmd with args and
	// returns its standard output; nil when vcgencmd is not installed.
	Vcgencmd func(ctx context.Context, args ...string) (string, error)
	// StatFS returns the free and total bytes of the file system holding
	// path; nil leaves Disk absent.
	StatFS   func(path string) (free, total uint64, err error)
	MediaDir string
	Version  string
	Now      func() time.Time // nil: time.Now

	mu        sync.Mutex
	prev      cpuSample
	havePrev  bool
	board     *Board
	haveBoard bool
}

// Read takes one snapshot. It never fails as a whole: each source that is
// missing leaves its field nil.
func (r *Reader) Read(ctx context.Context) Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	h := Health{Time: now(), Version: r.Version}
	errs := &h.Errors

	// The board does not change while the agent runs.
	if !r.haveBoard {
		r.board, r.haveBoard = ReadBoard(r.Root), true
	}
	h.Board = r.board

	h.Temps = readTemps(r.Root)
	h.CPUTempC = mainTemp(h.Temps)
	h.Throttling = r.throttling(ctx, h.Board, errs)

	if cur, ok := readProc(r.Root, "proc/stat", parseProcStat, errs); ok {
		if p, ok := cpuPercent(r.prev, cur); ok && r.havePrev {
			h.CPUPercent = &p
		}
		r.prev, r.havePrev = cur, true
	}
	h.Load, _ = readProc(r.Root, "proc/loadavg", parseLoadavg, errs)
	h.Memory, _ = readProc(r.Root, "proc/meminfo", parseMeminfo, errs)
	if up, ok := readProc(r.Root, "proc/uptime", parseUptime, errs); ok {
		h.UptimeS = &up
	}
	h.WiFi, _ = readProc(r.Root, "proc/net/wireless", parseWireless, errs)

	if r.StatFS != nil && r.MediaDir != "" {
		if free, total, err := r.StatFS(r.MediaDir); err != nil {
			*errs = append(*errs, errText(err))
		} else {
			h.Disk = &Disk{Path: r.MediaDir, FreeBytes: free, TotalBytes: total}
		}
	}
	return h
}

// Problems names the firmware conditions active now, in a fixed order:
// "under_voltage", "freq_capped", "throttled", "soft_temp_limit". A
// condition the board cannot detect is not a problem. The agent publishes
// at once when the set changes.
func (h Health) Problems() []string {
	var out []string
	if h.Throttling == nil {
		return out
	}
	c := h.Throttling.Now
	for _, f := range [...]struct {
		name string
		v    *bool
	}{
		{"under_voltage", c.UnderVoltage},
		{"freq_capped", c.FreqCapped},
		{"throttled", c.Throttled},
		{"soft_temp_limit", c.SoftTempLimit},
	} {
		if f.v != nil && *f.v {
			out = append(out, f.name)
		}
	}
	return out
}

// ReadHealth is Read for the agent: the report and its active problems.
func (r *Reader) ReadHealth(ctx context.Context) (any, []string) {
	h := r.Read(ctx)
	return h, h.Problems()
}
