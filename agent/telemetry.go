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

type healthResult struct {
	report   any
	problems []string
}

// runHealth reads health every Check and hands it to the loop.
func (a *Agent) runHealth(ctx context.Context) {
	h := a.s.Telemetry.Health
	t := time.NewTicker(a.s.Telemetry.Check)
	defer t.Stop()
	for {
		report, problems := h.ReadHealth(ctx)
		select {
		case a.healthc <- healthResult{report, problems}:
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

// gotHealth publishes health when it is due or its problems changed.
func (a *Agent) gotHealth(ctx context.Context, h healthResult) {
	changed := !slices.Equal(h.problems, a.problems)
	// Half a check of slack, so that tick jitter does not skip a report.
	if !changed && time.Since(a.healthAt) < a.s.Telemetry.Every-a.s.Telemetry.Check/2 {
		return
	}
	if changed {
		a.log.Warn("health problems changed", "problems", h.problems, "before", a.problems)
	}
	a.problems, a.healthAt, a.health = h.problems, time.Now(), h.report
	a.publishJSON(ctx, a.s.Topics.Health(), h.report, true)
}

// statsTick publishes stream statistics: each destination's measured
// bitrate (from the byte counts and the times they were read) and time
// live.
func (a *Agent) statsTick(ctx context.Context) {
	for _, n := range a.order {
		d := a.dests[n]
		if !d.on || d.state != StateLive {
			d.kbps = 0
			continue
		}
		if !d.prevAt.IsZero() && d.bytesAt.After(d.prevAt) && d.bytes >= d.prevBytes {
			d.kbps = float64(d.bytes-d.prevBytes) * 8 / 1000 / d.bytesAt.Sub(d.prevAt).Seconds()
		}
		d.prevBytes, d.prevAt = d.bytes, d.bytesAt
		a.publishDest(ctx, d)
	}
}
