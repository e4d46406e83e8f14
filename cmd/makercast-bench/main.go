// Command makercast-bench measures the agent binary against its goals: CPU
// and memory while streaming (compared with the same pipeline in
// gst-launch), idle cost, command-to-live latency, recovery after an RTMP
// server outage and A/V sync at the server. It starts its own Mosquitto and
// nginx-rtmp on loopback ports (internal/testenv) and prints a markdown
// table. Run it from the repository root after `make build`: `make bench`.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// config is what the flags chose.
type config struct {
	agent string
	quick bool
	keep  bool
	hz    int

	rounds       int           // A B rounds of the streaming comparison
	warmup       time.Duration // before a streaming window
	window       time.Duration // streaming CPU/RSS window
	idleSettle   time.Duration
	idleWindow   time.Duration
	onTrials     int
	shortOutages int  // 5 s outages
	long         bool // also the 60 s outage
	syncWindow   time.Duration
	syncAfter    time.Duration
	snapTrials   int
	outputWindow time.Duration // each window of the output-cost rows
	outputRounds int
}

var (
	notesMu sync.Mutex
	notes   []string
)

// note records an observation printed under the table.
func note(format string, args ...any) {
	notesMu.Lock()
	notes = append(notes, fmt.Sprintf(format, args...))
	notesMu.Unlock()
}

// section is one group of measurements that share servers and an agent.
type section struct {
	ids  []int // measurement numbers of the brief, for -only
	rows []*row
	run  func(tb *benchTB, cfg *config, rows []*row)
}

func main() {
	os.Exit(realMain())
}

func realMain() int {
	cfg := &config{}
	flag.StringVar(&cfg.agent, "agent", "bin/makercast-agent", "agent binary to measure (`make build` makes it)")
	flag.BoolVar(&cfg.quick, "quick", false, "short runs for development (numbers are noisier)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep temporary directories (server and agent logs)")
	only := flag.String("only", "", "comma-separated measurements to run (1-10); default all")
	flag.Parse()

	start := time.Now()
	handleInterrupt()
	cfg.hz = clockTicks()
	if cfg.quick {
		cfg.rounds, cfg.warmup, cfg.window = 1, 2*time.Second, 5*time.Second
		cfg.idleSettle, cfg.idleWindow = 2*time.Second, 5*time.Second
		cfg.onTrials, cfg.shortOutages, cfg.long = 3, 1, false
		cfg.syncWindow, cfg.syncAfter = 20*time.Second, 10*time.Second
		cfg.snapTrials = 10
		cfg.outputWindow, cfg.outputRounds = 5*time.Second, 2
	} else {
		cfg.rounds, cfg.warmup, cfg.window = 4, 3*time.Second, 20*time.Second
		cfg.idleSettle, cfg.idleWindow = 3*time.Second, 10*time.Second
		cfg.onTrials, cfg.shortOutages, cfg.long = 10, 3, true
		cfg.syncWindow, cfg.syncAfter = 60*time.Second, 20*time.Second
		cfg.snapTrials = 40
		cfg.outputWindow, cfg.outputRounds = 10*time.Second, 6
	}
	abs, err := filepath.Abs(cfg.agent)
	if err != nil {
		fmt.Fprintln(os.Stderr, "makercast-bench:", err)
		return 2
	}
	cfg.agent = abs
	if st, err := os.Stat(cfg.agent); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		fmt.Fprintf(os.Stderr, "makercast-bench: no agent binary at %s: run `make build` first (or pass -agent)\n", cfg.agent)
		return 2
	}
	for _, bin := range []string{"gst-launch-1.0", "getconf"} {
		if _, err := exec.LookPath(bin); err != nil {
			fmt.Fprintf(os.Stderr, "makercast-bench: %s is not installed (run `make deps`)\n", bin)
			return 2
		}
	}
	selected := map[int]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10 {
			fmt.Fprintf(os.Stderr, "makercast-bench: -only: %q is not a measurement number 1-10\n", s)
			return 2
		}
		selected[n] = true
	}

	sections := defineSections(cfg)
	var rows []*row
	failed := false
	for _, s := range sections {
		if len(selected) > 0 && !anySelected(s.ids, selected) {
			continue
		}
		rows = append(rows, s.rows...)
		name := fmt.Sprintf("bench %s", joinInts(s.ids))
		err := runSection(name, cfg.keep, func(tb *benchTB) { s.run(tb, cfg, s.rows) })
		if err != nil {
			failed = true
			for _, r := range s.rows {
				if r.verdict == "" {
					r.measured, r.verdict = "not measured: "+err.Error(), "FAIL"
				}
			}
		}
	}

	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	mode := "full"
	if cfg.quick {
		mode = "-quick"
	}
	fmt.Fprintf(out, "makercast benchmark, %s (%s run)\n\n", time.Now().Format("2006-01-02 15:04 MST"), mode)
	fmt.Fprintf(out, "Machine: %s; agent %s (%s)\n\n", machine(), cfg.agent, agentVersion(cfg.agent))
	printTable(out, rows)
	if len(notes) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintln(out, "Notes:")
		fmt.Fprintln(out)
		for _, n := range notes {
			fmt.Fprintf(out, "- %s\n", n)
		}
	}
	fmt.Fprintf(out, "\nTotal run time: %s\n", time.Since(start).Round(time.Second))
	if failed {
		return 1
	}
	return 0
}

func defineSections(cfg *config) []section {
	window := fmt.Sprintf("%s (after %s warm-up)", fmtDur(cfg.window), fmtDur(cfg.warmup))
	rounds := strings.Repeat("A B ", cfg.rounds)
	return []section{
		{ids: []int{1}, run: benchStreaming, rows: []*row{
			{metric: "CPU while streaming 720p30, agent / gst-launch", goal: "≤ 1.05",
				how: fmt.Sprintf("agent (MQTT ON) and `gst-launch-1.0 -q` with the equivalent single pipeline, each publishing to the same local nginx-rtmp (checked on /stat first); utime+stime delta from /proc/<pid>/stat over %s, CLK_TCK=%d; runs alternate %s; ratio of the means", window, cfg.hz, strings.TrimSpace(rounds))},
			{metric: "RSS overhead while streaming, agent − gst-launch", goal: "≤ 25 MB",
				how: "VmRSS from /proc/<pid>/status sampled every second in the same windows; difference of the mean per-run maxima (MB = MiB, /proc's kB are KiB)"},
		}},
		{ids: []int{2, 3}, run: benchIdleAndOn, rows: []*row{
			{metric: "idle agent RSS", goal: "≤ 30 MB",
				how: fmt.Sprintf("agent connected to MQTT, camera and destination idle, %s after it said online; VmRSS every second for %s", fmtDur(cfg.idleSettle), fmtDur(cfg.idleWindow))},
			{metric: "idle agent CPU", goal: "≈ 0 % (≤ 1 % of one core)",
				how: fmt.Sprintf("utime+stime delta over the same %s", fmtDur(cfg.idleWindow))},
			{metric: "MQTT ON → live at the server", goal: "median ≤ 0.3 s",
				how: fmt.Sprintf("same agent; clock starts before publishing ON (QoS 1) on makercast/%s/camera/test/stream/set, stops when nginx /stat (polled every 5 ms) shows the stream publishing with video metadata; then OFF, wait until gone, 1 s pause; %d trials, cold capture each time; p90 by nearest rank", device, cfg.onTrials)},
		}},
		{ids: []int{4}, run: benchOutage, rows: []*row{
			{metric: "live again after a 5 s RTMP server outage", goal: "≤ 0.5 s (each)",
				how: fmt.Sprintf("while streaming, nginx is killed (SIGKILL), 5 s later started on the same ports; time from the Start() call (so including nginx's own start-up) until /stat, polled every 5 ms, shows the stream publishing; %d trials", cfg.shortOutages)},
			{metric: "live again after a 60 s RTMP server outage", goal: "≤ 1 s",
				how: "the same with a 60 s outage (the agent's backoff has reached its long steps by then); 1 trial"},
		}},
		{ids: []int{5}, run: benchAVSync, rows: []*row{
			{metric: fmt.Sprintf("A/V sync at the server, %s of streaming", fmtDur(cfg.syncWindow)), goal: "within ±50 ms",
				how: "nginx-rtmp's <avsync> of the publishing client (audio minus video timestamp, ms) read from /stat once a second from the moment it publishes"},
			{metric: fmt.Sprintf("A/V sync at the server, %s after a reconnect", fmtDur(cfg.syncAfter)), goal: "within ±50 ms",
				how: "the publisher dropped with nginx's /control/drop/publisher; once the agent publishes again, the same sampling"},
		}},
		{ids: []int{6, 7}, run: benchSnapshots, rows: []*row{
			{metric: "snapshot command → JPEG at an MQTT subscriber, streaming 720p30", goal: "p50 ≤ 50 ms, p95 ≤ 100 ms",
				how: fmt.Sprintf("agent streaming to nginx; request/snapshot published (QoS 1), clock stops when a subscriber gets the image topic's JPEG (1280x720, q85); %d trials 300 ms apart", cfg.snapTrials)},
			{metric: "snapshot command → JPEG, camera idle", goal: "report",
				how: "stream OFF, capture closed; the same measurement: the camera is opened for the picture and closed again"},
			{metric: "CPU cost of the snapshot branch while streaming", goal: "≤ 2 % of one core",
				how: fmt.Sprintf("the gst-launch 720p30 pipeline of row 1 with and without the agent's raw tee + leaky one-frame queue + appsink, alternating, %s each", window)},
		}},
		{ids: []int{9, 10}, run: benchOutputs, rows: []*row{
			{metric: "CPU cost of a second RTMP destination, streaming 720p30", goal: "≤ 2 % of one core",
				how: fmt.Sprintf("one agent streaming 720p30 at 2500 kbit/s to nginx-rtmp (destination main; x264 ultrafast, whose run-to-run jitter is a third of veryfast's); utime+stime over %s (after %s) with and without a second RTMP destination to the same server, alternating, %d rounds; the median of the paired differences. Baseline: the same with gst-launch, the single pipeline with and without a second flvmux ! rtmp2sink branch", fmtDur(cfg.outputWindow), fmtDur(cfg.warmup), cfg.outputRounds)},
			{metric: "CPU cost of an SRT output", goal: "≤ 2 % of one core",
				how: "the same, with an SRT caller (latency 20 ms) to a GStreamer srtsrc listener on loopback (its CPU not counted); baseline branch h264parse ! mpegtsmux ! srtsink"},
			{metric: "CPU cost of a recording", goal: "≤ 2 % of one core",
				how: "the same, with the camera's recording on (fragmented MP4 segments of 60 s in a temporary media directory); baseline branch mp4mux fragment-duration=1000 ! filesink"},
			{metric: "MQTT ON → first bytes at the SRT receiver", goal: "median ≤ 0.3 s",
				how: fmt.Sprintf("same agent, camera already running for main; clock starts before publishing ON on destination/srt/set, stops when a fresh srtsrc listener (latency 20 ms, SRT's receive buffer delays delivery by it) has written its first byte (unbuffered filesink, polled every 5 ms); %d trials", cfg.onTrials)},
		}},
		{ids: []int{8}, run: benchTelemetry, rows: []*row{
			{metric: "telemetry cost", goal: "≤ 0.5 % of one core",
				how: fmt.Sprintf("idle agent with MAKERCAST_HEALTH_INTERVAL=1s (health read and published every second, 10× the default read rate, 30× the publish rate); utime+stime over %s. This machine has no vcgencmd: on a Pi each read also runs it (about 1 ms here for a stand-in script; not measured on a Pi)", fmtDur(cfg.idleWindow))},
		}},
	}
}

// fmtDur prints whole seconds as "20 s".
func fmtDur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return d.String()
}

func anySelected(ids []int, sel map[int]bool) bool {
	for _, id := range ids {
		if sel[id] {
			return true
		}
	}
	return false
}

func joinInts(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, "+")
}

// machine describes the host: CPUs, CPU model, kernel, GStreamer.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	gstv := "GStreamer ?"
	if out, err := exec.Command("gst-launch-1.0", "--version").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "GStreamer ") {
				gstv = strings.TrimSpace(line)
			}
		}
	}
	return fmt.Sprintf("%d CPUs (nproc), %s, Linux %s, %s, %s", runtime.NumCPU(), model, kernel, gstv, runtime.Version())
}

func agentVersion(bin string) string {
	out, err := exec.Command(bin, "-version").Output()
	if err != nil {
		return "version unknown"
	}
	return "version " + strings.TrimSpace(string(out))
}
