package agent

import (
	"context"
	"slices"
	"time"
)

// TelemetrySettings tune health and stream statistics.
type TelemetrySettings struct {
	// Health, when set, is read every Check (10 s) and published every
	// Every (30 s), and at once when its problems change.
	Health Health
	Every  time.Duration
	Check  time.Duration
	// Stats is how often stream statistics are published while a camera
	// runs (5 s).
	Stats time.Duration
}

// CameraStats is the retained JSON of a running camera.
type CameraStats struct {
	CaptureFPS float64 `json:"capture_fps"`
	EncoderFPS float64 `json:"encoder_fps"`
	Dropped    uint64  `json:"dropped_frames"`
	QueueLevel int     `json:"encoder_queue"`
}

// healthState is the device's health as last read and published.
type healthState struct {
	report   any // the last report published (sent again on reconnect)
	problems []string
	at       time.Time
}

// runHealth reads health every Check and hands it to the loop.
func (a *Agent) runHealth(ctx context.Context) {
	h := a.s.Telemetry.Health
	t := time.NewTicker(a.s.Telemetry.Check)
	defer t.Stop()
	for {
		report, problems := h.ReadHealth(ctx)
		select {
		case a.events <- healthRead{report, problems}:
		case <-ctx.Done():
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// healthRead takes a report when it is due or its problems changed.
func (a *Agent) healthRead(r healthRead) {
	h := &a.parts.health
	changed := !slices.Equal(r.problems, h.problems)
	// Half a check of slack, so that tick jitter does not skip a report.
	if !changed && time.Since(h.at) < a.s.Telemetry.Every-a.s.Telemetry.Check/2 {
		return
	}
	if changed {
		a.log.Warn("health problems changed", "problems", r.problems, "before", h.problems)
	}
	h.problems, h.at, h.report = r.problems, time.Now(), r.report
}
