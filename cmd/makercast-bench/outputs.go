package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// srtReceiver is a GStreamer SRT listener that keeps what it receives in a
// file, unbuffered, so the moment bytes arrive is the moment they show.
func srtReceiver(tb *benchTB, port int, out string) *proc {
	argv := []string{"gst-launch-1.0", "-q", "srtsrc", fmt.Sprintf("uri=srt://:%d", port), "mode=listener", "latency=20",
		"!", "filesink", "location=" + out, "buffer-mode=unbuffered"}
	p := startProc(tb, "srtsrc", argv, nil, syscall.SIGINT, 5*time.Second)
	// Listening once the UDP port is bound.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if udpBound(port) {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("srtsrc is not listening on UDP port %d", port)
	return nil
}

// udpBound reports whether something listens on UDP port (/proc/net/udp).
func udpBound(port int) bool {
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if containsPort(string(b), port) {
			return true
		}
	}
	return false
}

func containsPort(table string, port int) bool {
	want := fmt.Sprintf(":%04X ", port)
	for i := 0; i+len(want) <= len(table); i++ {
		if table[i:i+len(want)] == want {
			return true
		}
	}
	return false
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// benchOutputs: (9) what each other kind of output costs on top of one RTMP
// destination, and (10) MQTT ON until the first bytes reach an SRT peer.
func benchOutputs(tb *benchTB, cfg *config, rows []*row) {
	r := newRig(tb, cfg)
	const key = "outputs-main"
	srtPort := testenv.FreeUDPPort(tb)
	media := tb.TempDir()
	env := r.agentEnv(key)
	env["MAKERCAST_MEDIA_DIR"] = media
	env["MAKERCAST_DESTINATIONS"] = fmt.Sprintf("extra=%s/outputs-extra,srt=srt://127.0.0.1:%d?mode=caller&latency=20", r.rtmp.URL(), srtPort)
	mark := r.w.Len()
	a := startProc(tb, "agent", []string{cfg.agent}, envList(env), syscall.SIGTERM, 15*time.Second)
	r.w.WaitFrom(mark, r.base+"/availability", testenv.Equals("online"), 20*time.Second)
	r.w.WaitFrom(mark, r.base+"/destination/srt/state", testenv.Contains(`"state":"idle"`), 10*time.Second)
	// The SRT peer ends when its caller leaves: one for each round.
	var rcv *proc
	peer := func() {
		if rcv != nil && rcv.Alive() {
			return
		}
		rcv = srtReceiver(tb, srtPort, filepath.Join(tb.TempDir(), "srt.ts"))
	}
	others := func() []int {
		pids := r.companions()
		if rcv != nil && rcv.Alive() {
			pids = append(pids, rcv.Pid())
		}
		return pids
	}

	r.w.Publish(r.base+"/destination/main/set", []byte("ON"), false)
	r.rtmp.WaitPublishing(tb, key, 20*time.Second)
	set := func(topic, state string) { r.w.Publish(r.base+topic, []byte(state), false) }
	outputs := []struct {
		name, topic string
		before      func()
		live        func(mark int)
	}{
		{"a second RTMP destination", "/destination/extra/set", func() {}, func(int) { r.rtmp.WaitPublishing(tb, "outputs-extra", 20*time.Second) }},
		{"an SRT output (caller, to a GStreamer srtsrc listener)", "/destination/srt/set", peer, func(mark int) {
			r.w.WaitFrom(mark, r.base+"/destination/srt/state", testenv.Contains(`"state":"live"`), 20*time.Second)
		}},
		{"a recording (60 s segments)", "/camera/test/recording/set", func() {}, func(mark int) {
			r.w.WaitFrom(mark, r.base+"/camera/test/recording", testenv.Contains(`"status":"recording"`), 20*time.Second)
		}},
	}
	var base []float64
	for i, o := range outputs {
		var without, with []float64
		for round := 1; round <= cfg.rounds; round++ {
			o.before()
			time.Sleep(cfg.warmup)
			u, err := measure(a.Pid(), cfg.outputWindow, cfg.hz, a.Alive, others()...)
			if err != nil {
				tb.Fatalf("%s: %v", o.name, err)
			}
			without = append(without, u.CPUPct)
			mark := r.w.Len()
			set(o.topic, "ON")
			o.live(mark)
			time.Sleep(cfg.warmup)
			u, err = measure(a.Pid(), cfg.outputWindow, cfg.hz, a.Alive, others()...)
			if err != nil {
				tb.Fatalf("%s: %v", o.name, err)
			}
			with = append(with, u.CPUPct)
			set(o.topic, "OFF")
			tb.Logf("%s, round %d: %.2f %% without, %.2f %% with", o.name, round, without[len(without)-1], with[len(with)-1])
			time.Sleep(time.Second)
		}
		if !r.rtmp.Publishing(key) {
			tb.Fatalf("the main destination stopped during the measurement")
		}
		base = append(base, without...)
		cost := mean(with) - mean(without)
		rows[i].set(cost <= 2.0, "%+.2f %% of one core (with %.2f %%, without %.2f %%; runs %s vs %s)",
			cost, mean(with), mean(without), fmtPct(with), fmtPct(without))
	}
	note("outputs: the agent streaming 720p30 to one RTMP destination used %.1f %% of one core (mean of the %d windows without the extra output)", mean(base), len(base))
	if rcv != nil && rcv.Alive() {
		_ = rcv.Stop(syscall.SIGINT, 5*time.Second)
	}

	// ON until the first bytes at the SRT peer: a fresh listener each time.
	var first []float64
	for i := 0; i < cfg.onTrials; i++ {
		out := filepath.Join(tb.TempDir(), fmt.Sprintf("srt-on-%d.ts", i))
		p := srtReceiver(tb, srtPort, out)
		start := time.Now()
		set("/destination/srt/set", "ON")
		for fileSize(out) == 0 {
			if time.Since(start) > 20*time.Second {
				tb.Fatalf("trial %d: nothing at the SRT listener within 20 s of ON", i+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
		first = append(first, secs(time.Since(start)))
		mark := r.w.Len()
		set("/destination/srt/set", "OFF")
		r.w.WaitFrom(mark, r.base+"/destination/srt/state", testenv.Contains(`"switch":"OFF"`), 10*time.Second)
		if p.Alive() {
			_ = p.Stop(syscall.SIGINT, 5*time.Second)
		}
		time.Sleep(500 * time.Millisecond)
	}
	med := median(first)
	rows[3].set(med <= 0.3, "median %.3f s, p90 %.3f s (n=%d: %s)", med, percentile(first, 90), len(first), fmtSecs(first))
	r.stopAgent(a)
}
