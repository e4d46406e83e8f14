package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

const device = "bench"

// rig is a broker, an RTMP server and a watcher on the device's topics.
type rig struct {
	tb     *benchTB
	cfg    *config
	broker *testenv.Mosquitto
	rtmp   *testenv.RTMPServer
	w      *testenv.Watcher
	base   string
}

func newRig(tb *benchTB, cfg *config) *rig {
	r := &rig{tb: tb, cfg: cfg, base: "makercast/" + device}
	r.broker = testenv.StartMosquitto(tb)
	r.rtmp = testenv.StartRTMP(tb)
	r.w = testenv.Watch(tb, r.broker.URL, r.base+"/#")
	return r
}

// agentEnv is startAgent's environment in cmd/makercast-agent/main_test.go,
// at the production defaults: 1280x720 30 fps, x264 veryfast, 2500 kbit/s,
// keyframe every 2 s, a test tone as audio.
func (r *rig) agentEnv(key string) map[string]string {
	return map[string]string{
		"MAKERCAST_DEVICE_ID":         device,
		"MAKERCAST_MQTT_URL":          r.broker.URL,
		"MAKERCAST_STREAM_URL":        r.rtmp.URL(),
		"MAKERCAST_STREAM_KEY":        key,
		"MAKERCAST_CAMERAS":           "test",
		"MAKERCAST_VIDEO_WIDTH":       "1280",
		"MAKERCAST_VIDEO_HEIGHT":      "720",
		"MAKERCAST_VIDEO_FPS":         "30",
		"MAKERCAST_VIDEO_BITRATE":     "2500",
		"MAKERCAST_KEYFRAME_INTERVAL": "2s",
		"MAKERCAST_VIDEO_ENCODER":     "x264",
		"MAKERCAST_X264_PRESET":       "veryfast",
		"MAKERCAST_AUDIO":             "test",
		"MAKERCAST_AUDIO_BITRATE":     "128",
		"MAKERCAST_LOG_LEVEL":         "info",
		// A media directory of the run's own: the default is the machine's
		// (/var/lib/makercast), and with it the switches an earlier agent
		// saved for Resume; switched on again, "idle" would never come.
		"MAKERCAST_MEDIA_DIR": r.tb.TempDir(),
		"MAKERCAST_RESUME":    "false",
	}
}

// startAgent runs the agent binary and waits until it is online on MQTT
// with its destination idle.
func (r *rig) startAgent(key string) *proc {
	mark := r.w.Len()
	p := startProc(r.tb, "agent", []string{r.cfg.agent}, envList(r.agentEnv(key)), syscall.SIGTERM, 15*time.Second)
	r.w.WaitFrom(mark, r.base+"/availability", testenv.Equals("online"), 20*time.Second)
	r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"state":"idle"`), 10*time.Second)
	return p
}

// companions are the processes the benchmark runs beside the measured one.
func (r *rig) companions() []int {
	return []int{os.Getpid(), r.rtmp.Pid(), r.broker.Pid()}
}

func (r *rig) stopAgent(p *proc) {
	if err := p.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		note("agent: %v (SIGTERM while streaming)", err)
	}
}

func (r *rig) command(state string) {
	r.w.Publish(r.base+"/camera/test/stream/set", []byte(state), false)
}

// pollPublishing polls /stat every 5 ms until key is published with video
// metadata; false when within passes first.
func (r *rig) pollPublishing(key string, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < within {
		if r.rtmp.Publishing(key) {
			return time.Since(start), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return within, false
}

// pollGone polls /stat every 5 ms until nothing publishes key.
func (r *rig) pollGone(key string, within time.Duration) bool {
	start := time.Now()
	for time.Since(start) < within {
		if st, err := r.rtmp.Stats(); err == nil {
			if v, ok := st[key]; !ok || v.Publishing == nil {
				return true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func (r *rig) bytesIn(key string) int64 {
	st, err := r.rtmp.Stats()
	if err != nil {
		r.tb.Fatalf("stat: %v", err)
	}
	return st[key].BytesIn
}

// gstArgv is the single-pipeline equivalent of what the agent runs.
func gstArgv(url string) []string {
	pipeline := "videotestsrc is-live=true pattern=smpte horizontal-speed=4 " +
		"! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 " +
		"! queue leaky=downstream max-size-buffers=2 ! videoconvert " +
		"! x264enc tune=zerolatency speed-preset=veryfast bitrate=2500 vbv-buf-capacity=1000 key-int-max=60 pass=cbr option-string=scenecut=0 " +
		"! video/x-h264,profile=main ! h264parse config-interval=-1 ! queue ! mux.video " +
		"audiotestsrc is-live=true wave=sine freq=440 volume=0.1 ! queue ! audioconvert ! audioresample " +
		"! audio/x-raw,rate=44100,channels=2 ! avenc_aac bitrate=128000 ! aacparse ! queue ! mux.audio " +
		"flvmux name=mux streamable=true latency=100000000 ! rtmp2sink location=" + url
	return append([]string{"gst-launch-1.0", "-q"}, strings.Fields(pipeline)...)
}

// run is one measured streaming run.
type run struct {
	u    usage
	kbps float64
}

// window waits out the warm-up, then measures p for the window, checking
// that key is still published at the end.
func (r *rig) window(p *proc, key string) run {
	time.Sleep(r.cfg.warmup)
	b0 := r.bytesIn(key)
	u, err := measure(p.Pid(), r.cfg.window, r.cfg.hz, p.Alive, r.companions()...)
	if err != nil {
		r.tb.Fatalf("%s: measure: %v", p.name, err)
	}
	b1 := r.bytesIn(key)
	if !r.rtmp.Publishing(key) {
		r.tb.Fatalf("%s: stream %s stopped during the measurement", p.name, key)
	}
	return run{u: u, kbps: float64(b1-b0) * 8 / 1000 / u.Wall.Seconds()}
}

// benchStreaming: (1) CPU and RSS of the agent against gst-launch, A B A B.
func benchStreaming(tb *benchTB, cfg *config, rows []*row) {
	r := newRig(tb, cfg)
	var agentRuns, gstRuns []run
	for round := 1; round <= cfg.rounds; round++ {
		key := fmt.Sprintf("cpu-agent-%d", round)
		a := r.startAgent(key)
		r.command("ON")
		r.rtmp.WaitPublishing(tb, key, 20*time.Second)
		ar := r.window(a, key)
		tb.Logf("agent round %d: CPU %.1f %% (other load %.1f %%), RSS max %.1f mean %.1f MiB, %.0f kbit/s at the server", round, ar.u.CPUPct, ar.u.OtherPct, ar.u.RSSMax, ar.u.RSSMean, ar.kbps)
		agentRuns = append(agentRuns, ar)
		r.stopAgent(a)
		r.rtmp.WaitGone(tb, key, 10*time.Second)

		key = fmt.Sprintf("cpu-gst-%d", round)
		g := startProc(tb, "gst-launch", gstArgv(r.rtmp.URL()+"/"+key), nil, syscall.SIGINT, 5*time.Second)
		r.rtmp.WaitPublishing(tb, key, 20*time.Second)
		gr := r.window(g, key)
		tb.Logf("gst-launch round %d: CPU %.1f %% (other load %.1f %%), RSS max %.1f mean %.1f MiB, %.0f kbit/s at the server", round, gr.u.CPUPct, gr.u.OtherPct, gr.u.RSSMax, gr.u.RSSMean, gr.kbps)
		gstRuns = append(gstRuns, gr)
		if err := g.Stop(syscall.SIGINT, 5*time.Second); err != nil {
			note("gst-launch: %v", err)
		}
		r.rtmp.WaitGone(tb, key, 10*time.Second)
	}
	field := func(rs []run, f func(run) float64) []float64 {
		out := make([]float64, len(rs))
		for i, x := range rs {
			out[i] = f(x)
		}
		return out
	}
	cpu := func(x run) float64 { return x.u.CPUPct }
	rssMax := func(x run) float64 { return x.u.RSSMax }
	rssMean := func(x run) float64 { return x.u.RSSMean }
	kbps := func(x run) float64 { return x.kbps }
	list := func(xs []float64) string {
		parts := make([]string, len(xs))
		for i, x := range xs {
			parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
		}
		return strings.Join(parts, "/")
	}

	ac, gc := field(agentRuns, cpu), field(gstRuns, cpu)
	ratio := mean(ac) / mean(gc)
	rows[0].set(ratio <= 1.05, "%.3f (agent %.1f %%, gst-launch %.1f %% of one core; runs %s vs %s)",
		ratio, mean(ac), mean(gc), list(ac), list(gc))

	am, gm := field(agentRuns, rssMax), field(gstRuns, rssMax)
	aa, ga := field(agentRuns, rssMean), field(gstRuns, rssMean)
	over := mean(am) - mean(gm)
	rows[1].set(over <= 25, "+%.1f MB (max: agent %.1f, gst-launch %.1f; mean: agent %.1f, gst-launch %.1f MB)",
		over, mean(am), mean(gm), mean(aa), mean(ga))
	note("streaming runs: bitrate at the server %s kbit/s (agent) vs %s kbit/s (gst-launch)",
		list(field(agentRuns, kbps)), list(field(gstRuns, kbps)))
	other := func(x run) float64 { return x.u.OtherPct }
	note("streaming runs: other load on the machine (busy time minus the measured process, nginx, mosquitto and the benchmark) %s %% of one core in the agent windows, %s %% in the gst-launch windows",
		list(field(agentRuns, other)), list(field(gstRuns, other)))
}

// benchIdleAndOn: (2) the idle agent, then (3) MQTT ON until live at the
// server, on the same agent.
func benchIdleAndOn(tb *benchTB, cfg *config, rows []*row) {
	r := newRig(tb, cfg)
	const key = "on-off"
	a := r.startAgent(key)
	time.Sleep(cfg.idleSettle)
	u, err := measure(a.Pid(), cfg.idleWindow, cfg.hz, a.Alive, r.companions()...)
	if err != nil {
		tb.Fatalf("idle: %v", err)
	}
	rows[0].set(u.RSSMax <= 30, "%.1f MB max, %.1f MB mean", u.RSSMax, u.RSSMean)
	rows[1].set(u.CPUPct <= 1.0, "%.2f %% of one core", u.CPUPct)
	note("idle window: other load on the machine %.1f %% of one core", u.OtherPct)

	var live, reported []float64
	for i := 0; i < cfg.onTrials; i++ {
		mark := r.w.Len()
		start := time.Now()
		r.command("ON")
		d, ok := r.pollPublishing(key, 20*time.Second)
		if !ok {
			tb.Fatalf("trial %d: not live within 20 s of ON", i+1)
		}
		live = append(live, secs(d))
		m, _ := r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"state":"live"`), 10*time.Second)
		reported = append(reported, secs(m.At.Sub(start)))
		tb.Logf("ON trial %d: live at the server after %.3f s, reported live on MQTT after %.3f s", i+1, secs(d), secs(m.At.Sub(start)))
		r.command("OFF")
		if !r.pollGone(key, 10*time.Second) {
			tb.Fatalf("trial %d: still published 10 s after OFF", i+1)
		}
		time.Sleep(time.Second)
	}
	med, p90 := median(live), percentile(live, 90)
	rows[2].set(med <= 0.3, "median %.3f s, p90 %.3f s (n=%d: %s)", med, p90, len(live), fmtSecs(live))
	note("ON → the agent's MQTT state said live after median %.3f s, p90 %.3f s", median(reported), percentile(reported, 90))
}

// benchOutage: (4) the RTMP server dies and comes back; time until live.
func benchOutage(tb *benchTB, cfg *config, rows []*row) {
	r := newRig(tb, cfg)
	const key = "outage"
	r.startAgent(key)
	r.command("ON")
	r.rtmp.WaitPublishing(tb, key, 20*time.Second)
	time.Sleep(2 * time.Second)

	trial := func(outage time.Duration) (back, startup float64) {
		r.rtmp.Stop()
		time.Sleep(outage)
		t0 := time.Now()
		r.rtmp.Start()
		up := time.Now()
		if _, ok := r.pollPublishing(key, 60*time.Second); !ok {
			tb.Fatalf("%s outage: stream not back within 60 s of the server", outage)
		}
		back, startup = secs(time.Since(t0)), secs(up.Sub(t0))
		tb.Logf("%s outage: live again %.3f s after Start() (nginx itself took %.3f s to accept)", outage, back, startup)
		time.Sleep(2 * time.Second)
		return back, startup
	}
	var short, starts []float64
	for i := 0; i < cfg.shortOutages; i++ {
		b, s := trial(5 * time.Second)
		short = append(short, b)
		starts = append(starts, s)
	}
	_, hi := minMax(short)
	med := median(short)
	rows[0].set(hi <= 0.5, "median %.3f s, max %.3f s (n=%d: %s)", med, hi, len(short), fmtSecs(short))
	if !cfg.long {
		rows[1].measured, rows[1].verdict = "skipped (-quick)", "—"
	} else {
		b, s := trial(60 * time.Second)
		starts = append(starts, s)
		rows[1].set(b <= 1.0, "%.3f s", b)
	}
	lo, hi := minMax(starts)
	note("outages: nginx's own start-up (Start() until both its ports accept) took %.3f–%.3f s of the times above", lo, hi)
}

// benchAVSync: (5) avsync of the publisher at nginx, over a minute and
// after a forced reconnect.
func benchAVSync(tb *benchTB, cfg *config, rows []*row) {
	r := newRig(tb, cfg)
	const key = "avsync"
	r.startAgent(key)
	r.command("ON")
	r.rtmp.WaitPublishing(tb, key, 20*time.Second)

	sample := func(d time.Duration) []float64 {
		var out []float64
		missing := 0
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n := int(d / time.Second); n > 0; n-- {
			<-tick.C
			st, err := r.rtmp.Stats()
			if err != nil {
				missing++
				continue
			}
			v, ok := st[key].AVSync()
			if !ok {
				missing++
				continue
			}
			out = append(out, float64(v))
		}
		if missing > 0 {
			note("avsync: %d of %d samples had no publisher", missing, int(d/time.Second))
		}
		if len(out) == 0 {
			tb.Fatalf("avsync: no samples")
		}
		return out
	}
	judge := func(rw *row, xs []float64) {
		lo, hi := minMax(xs)
		rw.set(math.Abs(lo) <= 50 && math.Abs(hi) <= 50, "min %.0f / median %.0f / max %.0f ms (n=%d)", lo, median(xs), hi, len(xs))
	}
	judge(rows[0], sample(cfg.syncWindow))

	if err := r.rtmp.DropPublisher(key); err != nil {
		tb.Fatalf("drop publisher: %v", err)
	}
	t0 := time.Now()
	if !r.pollGone(key, 5*time.Second) {
		note("avsync: nginx still listed the publisher 5 s after the drop")
	}
	if _, ok := r.pollPublishing(key, 30*time.Second); !ok {
		tb.Fatalf("not back within 30 s of the drop")
	}
	note("after the forced drop the agent was publishing again in %.3f s", secs(time.Since(t0)))
	judge(rows[1], sample(cfg.syncAfter))
}
