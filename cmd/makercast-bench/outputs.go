package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// gstOutputsArgv is the agent's single-destination pipeline in gst-launch
// (x264 ultrafast, as in the agent for these rows), with one more branch of
// the kind of output measured, built the way the agent builds its sender
// ("" for none): the cost GStreamer's own elements have, in the same run.
func gstOutputsArgv(rtmpURL, extra string, srtPort int, dir string) []string {
	p := "videotestsrc is-live=true pattern=smpte horizontal-speed=4 " +
		"! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 " +
		"! queue leaky=downstream max-size-buffers=2 ! videoconvert " +
		"! x264enc tune=zerolatency speed-preset=ultrafast bitrate=2500 vbv-buf-capacity=1000 key-int-max=60 pass=cbr option-string=scenecut=0 " +
		"! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! video/x-h264,stream-format=avc,alignment=au ! tee name=vt " +
		"audiotestsrc is-live=true wave=sine freq=440 volume=0.1 ! queue ! audioconvert ! audioresample " +
		"! audio/x-raw,rate=44100,channels=2 ! avenc_aac bitrate=128000 ! aacparse ! tee name=at " +
		"vt. ! queue ! mux.video at. ! queue ! mux.audio flvmux name=mux streamable=true latency=100000000 ! rtmp2sink location=" + rtmpURL + "/gst-main "
	switch extra {
	case "rtmp":
		p += "vt. ! queue ! mux2.video at. ! queue ! mux2.audio flvmux name=mux2 streamable=true latency=100000000 ! rtmp2sink location=" + rtmpURL + "/gst-extra"
	case "srt":
		p += "vt. ! queue ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! ts. at. ! queue ! ts. " +
			fmt.Sprintf("mpegtsmux name=ts alignment=7 ! srtsink uri=srt://127.0.0.1:%d mode=caller latency=20 auto-reconnect=false", srtPort)
	case "rec":
		p += "vt. ! queue ! rec.video_0 at. ! queue ! rec.audio_0 mp4mux name=rec fragment-duration=1000 ! filesink buffer-mode=unbuffered location=" + filepath.Join(dir, "gst.mp4")
	}
	return append([]string{"gst-launch-1.0", "-q"}, strings.Fields(p)...)
}

// pairs is a with/without comparison over alternating windows.
type pairs struct{ with, without []float64 }

func (p *pairs) add(with, without float64) {
	p.with, p.without = append(p.with, with), append(p.without, without)
}

// cost is the median of the paired differences: a window the machine was
// busier in (this VM's CPU times wander by a few points) moves it less than
// the difference of the means.
func (p *pairs) cost() float64 {
	d := make([]float64, len(p.with))
	for i := range d {
		d[i] = p.with[i] - p.without[i]
	}
	return median(d)
}

// benchOutputs: (9) what each other kind of output costs on top of one RTMP
// destination, beside what the same GStreamer branch costs in gst-launch,
// and (10) MQTT ON until the first bytes reach an SRT peer.
func benchOutputs(tb *benchTB, cfg *config, rows []*row) {
	r := newRig(tb, cfg)
	const key = "outputs-main"
	srtPort := testenv.FreeUDPPort(tb)
	media := tb.TempDir()
	env := r.agentEnv(key)
	env["MAKERCAST_MEDIA_DIR"] = media
	// The encoder's run-to-run jitter (a point or two of a core with
	// veryfast) would drown a 2 % difference: ultrafast keeps the same
	// 720p30 at 2500 kbit/s for the outputs, at a third of the encoder's
	// cost.
	env["MAKERCAST_X264_PRESET"] = "ultrafast"
	env["MAKERCAST_RESUME"] = "false"
	env["MAKERCAST_DESTINATIONS"] = fmt.Sprintf("extra=%s/outputs-extra,srt=srt://127.0.0.1:%d?mode=caller&latency=20", r.rtmp.URL(), srtPort)
	// The SRT peer ends when its caller leaves: a new one when needed.
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
	window := func(p *proc) float64 {
		time.Sleep(cfg.warmup)
		u, err := measure(p.Pid(), cfg.outputWindow, cfg.hz, p.Alive, others()...)
		if err != nil {
			tb.Fatalf("%s: %v", p.name, err)
		}
		return u.CPUPct
	}

	outputs := []struct {
		name, topic, gst string
		before           func()
		live             func(mark int)
	}{
		{"a second RTMP destination", "/destination/extra/set", "rtmp", func() {}, func(int) { r.rtmp.WaitPublishing(tb, "outputs-extra", 20*time.Second) }},
		{"an SRT output", "/destination/srt/set", "srt", peer, func(mark int) {
			r.w.WaitFrom(mark, r.base+"/destination/srt/state", testenv.Contains(`"state":"live"`), 20*time.Second)
		}},
		{"a recording", "/camera/test/recording/set", "rec", func() {}, func(mark int) {
			r.w.WaitFrom(mark, r.base+"/camera/test/recording", testenv.Contains(`"status":"recording"`), 20*time.Second)
		}},
	}
	agentCost := make([]pairs, len(outputs))
	mark := r.w.Len()
	a := startProc(tb, "agent", []string{cfg.agent}, envList(env), syscall.SIGTERM, 15*time.Second)
	r.w.WaitFrom(mark, r.base+"/availability", testenv.Equals("online"), 20*time.Second)
	r.w.WaitFrom(mark, r.base+"/destination/srt/state", testenv.Contains(`"state":"idle"`), 10*time.Second)
	r.w.Publish(r.base+"/destination/main/set", []byte("ON"), false)
	r.rtmp.WaitPublishing(tb, key, 20*time.Second)
	set := func(topic, state string) { r.w.Publish(r.base+topic, []byte(state), false) }
	var base []float64
	for i, o := range outputs {
		for round := 1; round <= cfg.outputRounds; round++ {
			o.before()
			without := window(a)
			mark := r.w.Len()
			set(o.topic, "ON")
			o.live(mark)
			with := window(a)
			set(o.topic, "OFF")
			agentCost[i].add(with, without)
			base = append(base, without)
			tb.Logf("agent, %s, round %d: %.2f %% without, %.2f %% with", o.name, round, without, with)
			time.Sleep(time.Second)
		}
	}
	if !r.rtmp.Publishing(key) {
		tb.Fatalf("the main destination stopped during the measurement")
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
	r.stopAgent(a)
	if rcv != nil && rcv.Alive() {
		_ = rcv.Stop(syscall.SIGINT, 5*time.Second)
	}

	// The same branches in gst-launch, alternating with the plain pipeline.
	gstCost := make([]pairs, len(outputs))
	for i, o := range outputs {
		for round := 1; round <= cfg.outputRounds; round++ {
			var cpu [2]float64
			for j, extra := range []string{"", o.gst} {
				if extra == "srt" {
					peer()
				}
				g := startProc(tb, "gst-launch", gstOutputsArgv(r.rtmp.URL(), extra, srtPort, tb.TempDir()), nil, syscall.SIGINT, 5*time.Second)
				r.rtmp.WaitPublishing(tb, "gst-main", 20*time.Second)
				cpu[j] = window(g)
				if err := g.Stop(syscall.SIGINT, 5*time.Second); err != nil {
					note("gst-launch: %v", err)
				}
				r.rtmp.WaitGone(tb, "gst-main", 10*time.Second)
			}
			gstCost[i].add(cpu[1], cpu[0])
			tb.Logf("gst-launch, %s, round %d: %.2f %% without, %.2f %% with", o.name, round, cpu[0], cpu[1])
		}
	}
	if rcv != nil && rcv.Alive() {
		_ = rcv.Stop(syscall.SIGINT, 5*time.Second)
	}
	for i := range outputs {
		ac, gc := agentCost[i].cost(), gstCost[i].cost()
		rows[i].set(ac <= 2.0, "%+.2f %% of one core (gst-launch, the same branch: %+.2f %%; agent runs with %s vs without %s)",
			ac, gc, fmtPct(agentCost[i].with), fmtPct(agentCost[i].without))
	}
	note("outputs: the agent streaming 720p30 (x264 ultrafast) to one RTMP destination used %.1f %% of one core (mean of the %d windows without an extra output)", mean(base), len(base))
	med := median(first)
	rows[3].set(med <= 0.3, "median %.3f s, p90 %.3f s (n=%d: %s)", med, percentile(first, 90), len(first), fmtSecs(first))
}
