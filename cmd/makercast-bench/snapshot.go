package main

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// benchSnapshots: (6) snapshot command → JPEG at an MQTT subscriber, camera
// warm (streaming) and idle; (7) CPU cost of the snapshot branch.
func benchSnapshots(tb *benchTB, cfg *config, rows []*row) {
	r := newRig(tb, cfg)
	const key = "snap"
	r.startAgent(key)
	r.command("ON")
	r.rtmp.WaitPublishing(tb, key, 20*time.Second)
	time.Sleep(cfg.warmup)
	shot := func(i int) float64 {
		mark := r.w.Len()
		start := time.Now()
		r.w.Publish(r.base+"/request/snapshot", []byte(fmt.Sprintf(`{"transaction":"b%d"}`, i)), false)
		m, _ := r.w.WaitFrom(mark, r.base+"/camera/test/image", nil, 10*time.Second)
		return secs(m.At.Sub(start))
	}
	var warm []float64
	for i := 0; i < cfg.snapTrials; i++ {
		warm = append(warm, shot(i))
		time.Sleep(300 * time.Millisecond) // past the 250 ms pacing
	}
	p50, p95 := median(warm), percentile(warm, 95)
	rows[0].set(p50 <= 0.05 && p95 <= 0.1, "p50 %.1f ms, p95 %.1f ms (n=%d)", p50*1000, p95*1000, len(warm))

	r.command("OFF")
	r.rtmp.WaitGone(tb, key, 10*time.Second)
	r.w.Wait(r.base+"/camera/test/state", testenv.Contains(`"capture":"idle"`), 10*time.Second)
	var idle []float64
	for i := 0; i < 5; i++ {
		time.Sleep(time.Second)
		idle = append(idle, shot(100+i))
	}
	rows[1].set(true, "median %.0f ms, max %.0f ms (n=%d; the test camera needs no warm-up, a USB camera adds MAKERCAST_SNAPSHOT_WARMUP, 1 s)", median(idle)*1000, sorted(idle)[len(idle)-1]*1000, len(idle))

	// The branch's cost: the same 720p30 x264 pipeline in gst-launch with
	// and without the raw tee + leaky queue + appsink the agent adds.
	var with, without []float64
	for round := 1; round <= cfg.rounds; round++ {
		for _, branch := range []bool{false, true} {
			k := fmt.Sprintf("branch-%v-%d", branch, round)
			g := startProc(tb, "gst-launch", gstBranchArgv(r.rtmp.URL()+"/"+k, branch), nil, syscall.SIGINT, 5*time.Second)
			r.rtmp.WaitPublishing(tb, k, 20*time.Second)
			run := r.window(g, k)
			if branch {
				with = append(with, run.u.CPUPct)
			} else {
				without = append(without, run.u.CPUPct)
			}
			if err := g.Stop(syscall.SIGINT, 5*time.Second); err != nil {
				note("gst-launch: %v", err)
			}
			r.rtmp.WaitGone(tb, k, 10*time.Second)
		}
	}
	cost := mean(with) - mean(without)
	rows[2].set(cost <= 2, "%+.2f %% of one core (with %.1f %%, without %.1f %%; runs %s vs %s)", cost, mean(with), mean(without), fmtPct(with), fmtPct(without))
}

func fmtPct(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, "/")
}

// gstBranchArgv is gstArgv with, optionally, the agent's snapshot branch.
func gstBranchArgv(url string, branch bool) []string {
	argv := gstArgv(url)
	if !branch {
		return argv
	}
	var out []string
	for _, a := range argv {
		if a == "x264enc" {
			out = append(out, "tee", "name=rt", "!", "queue", "max-size-buffers=2", "max-size-bytes=0", "max-size-time=0", "!")
		}
		out = append(out, a)
	}
	return append(out, "rt.", "!", "queue", "leaky=downstream", "max-size-buffers=1", "max-size-bytes=0", "max-size-time=0",
		"!", "appsink", "max-buffers=1", "drop=true", "sync=false", "async=false", "enable-last-sample=false")
}

// benchTelemetry: (8) the CPU the health telemetry costs: an idle agent
// reading health every second (ten times the default check rate) and
// publishing it each time.
func benchTelemetry(tb *benchTB, cfg *config, rows []*row) {
	r := newRig(tb, cfg)
	env := r.agentEnv("telemetry")
	env["MAKERCAST_HEALTH_INTERVAL"] = "1s"
	mark := r.w.Len()
	p := startProc(tb, "agent", []string{cfg.agent}, envList(env), syscall.SIGTERM, 15*time.Second)
	r.w.WaitFrom(mark, r.base+"/availability", testenv.Equals("online"), 20*time.Second)
	time.Sleep(cfg.idleSettle)
	mark = r.w.Len()
	u, err := measure(p.Pid(), cfg.idleWindow, cfg.hz, p.Alive, r.companions()...)
	if err != nil {
		tb.Fatalf("telemetry: %v", err)
	}
	n := 0
	for _, m := range r.w.Messages()[mark:] {
		if m.Topic == r.base+"/health" {
			n++
		}
	}
	if n == 0 {
		tb.Fatalf("telemetry: no health published in %s", cfg.idleWindow)
	}
	rows[0].set(u.CPUPct <= 0.5, "%.2f %% of one core for the whole idle agent, %d health reports in %s (1 s interval)", u.CPUPct, n, fmtDur(cfg.idleWindow))
}
