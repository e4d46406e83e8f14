// Package testenv starts the real servers the tests and the benchmark talk
// to (Mosquitto, nginx-rtmp) on free loopback ports, and probes streams with
// ffprobe. Every server is stopped by t.Cleanup.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TB is the part of testing.TB this package needs; the benchmark command
// passes its own implementation.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

var _ TB = (testing.TB)(nil)

// RepoRoot finds the module root (the directory holding go.mod).
func RepoRoot(t TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testenv: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitPort waits until something accepts on 127.0.0.1:port.
func WaitPort(t TB, port int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("testenv: nothing listening on port %d after %s", port, within)
}

func need(t TB, bin string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/", "/sbin/"} {
		if p, err := exec.LookPath(dir + bin); err == nil {
			return p
		}
	}
	t.Fatalf("testenv: %s is not installed (run `make deps`)", bin)
	return ""
}

// process is a server started by a test, restartable on the same port.
type process struct {
	t    TB
	name string
	argv []string
	port int
	logf *os.File

	mu  sync.Mutex
	cmd *exec.Cmd
}

func (p *process) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = p.logf, p.logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("testenv: start %s: %v", p.name, err)
	}
	p.cmd = cmd
	WaitPort(p.t, p.port, 10*time.Second)
}

func (p *process) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// Pid is the server's process id (0 when stopped).
func (p *process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Mosquitto is a broker on a free loopback port.
type Mosquitto struct {
	*process
	Port int
	URL  string // tcp://127.0.0.1:port
}

// StartMosquitto starts a broker with the project's broker-config/ plain
// config (anonymous, loopback only).
func StartMosquitto(t TB) *Mosquitto {
	t.Helper()
	bin := need(t, "mosquitto")
	dir := t.TempDir()
	port := FreePort(t)
	tmpl, err := os.ReadFile(filepath.Join(RepoRoot(t), "broker-config", "mosquitto-dev.conf"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	conf := strings.ReplaceAll(string(tmpl), "listener 1883 127.0.0.1", fmt.Sprintf("listener %d 127.0.0.1", port))
	cf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	logf, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	m := &Mosquitto{process: &process{t: t, name: "mosquitto", argv: []string{bin, "-c", cf}, port: port, logf: logf},
		Port: port, URL: fmt.Sprintf("tcp://127.0.0.1:%d", port)}
	m.start()
	t.Cleanup(func() { m.stop(); logf.Close() })
	return m
}

// Stop kills the broker (as a crash would).
func (m *Mosquitto) Stop() { m.stop() }

// Start starts it again on the same port.
func (m *Mosquitto) Start() { m.start() }

// RTMPServer is nginx with the RTMP module on free loopback ports.
type RTMPServer struct {
	*process
	Port     int
	HTTPPort int
	Prefix   string
}

// StartRTMP starts nginx-rtmp from examples/nginx-rtmp/nginx.conf.tmpl.
func StartRTMP(t TB) *RTMPServer {
	t.Helper()
	return startRTMP(t, FreePort(t))
}

func startRTMP(t TB, port int) *RTMPServer {
	t.Helper()
	bin := need(t, "nginx")
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_rtmp_module.so"); err != nil {
		t.Fatalf("testenv: libnginx-mod-rtmp is not installed (run `make deps`)")
	}
	prefix := t.TempDir()
	httpPort := FreePort(t)
	conf, err := RenderNginxConf(RepoRoot(t), prefix, port, httpPort)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, conf, 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	logf, err := os.Create(filepath.Join(prefix, "stdout.log"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s := &RTMPServer{process: &process{t: t, name: "nginx", argv: []string{bin, "-p", prefix, "-c", cf}, port: port, logf: logf},
		Port: port, HTTPPort: httpPort, Prefix: prefix}
	s.start()
	WaitPort(t, httpPort, 5*time.Second)
	t.Cleanup(func() { s.stop(); logf.Close() })
	return s
}

// RenderNginxConf fills the nginx-rtmp template from examples/.
func RenderNginxConf(root, prefix string, rtmpPort, httpPort int) ([]byte, error) {
	tmpl, err := os.ReadFile(filepath.Join(root, "examples", "nginx-rtmp", "nginx.conf.tmpl"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		return nil, err
	}
	r := strings.NewReplacer("__PREFIX__", prefix, "__RTMP_PORT__", strconv.Itoa(rtmpPort), "__HTTP_PORT__", strconv.Itoa(httpPort))
	return []byte(r.Replace(string(tmpl))), nil
}

// Stop kills nginx (the server vanishes, as in a crash or outage).
func (s *RTMPServer) Stop() { s.stop() }

// Start starts it again on the same ports.
func (s *RTMPServer) Start() {
	s.start()
	WaitPort(s.t, s.HTTPPort, 5*time.Second)
}

// URL is the server's base RTMP URL for the "live" application.
func (s *RTMPServer) URL() string { return fmt.Sprintf("rtmp://127.0.0.1:%d/live", s.Port) }

// StreamStat is one stream in nginx-rtmp's statistics.
type StreamStat struct {
	Name       string    `xml:"name"`
	BytesIn    int64     `xml:"bytes_in"`
	Publishing *struct{} `xml:"publishing"`
	Clients    []struct {
		Publishing *struct{} `xml:"publishing"`
		AVSync     int64     `xml:"avsync"`
		Dropped    int64     `xml:"dropped"`
	} `xml:"client"`
	Meta struct {
		Video struct {
			Width     int    `xml:"width"`
			Height    int    `xml:"height"`
			FrameRate int    `xml:"frame_rate"`
			Codec     string `xml:"codec"`
			Profile   string `xml:"profile"`
		} `xml:"video"`
		Audio struct {
			Codec string `xml:"codec"`
		} `xml:"audio"`
	} `xml:"meta"`
}

// AVSync is the publisher's audio/video sync in milliseconds, as nginx-rtmp
// measures it (audio timestamp minus video timestamp).
func (s StreamStat) AVSync() (int64, bool) {
	for _, c := range s.Clients {
		if c.Publishing != nil {
			return c.AVSync, true
		}
	}
	return 0, false
}

// Stats fetches /stat and returns the live application's streams by name.
func (s *RTMPServer) Stats() (map[string]StreamStat, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/stat", s.HTTPPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Streams []StreamStat `xml:"server>application>live>stream"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	out := map[string]StreamStat{}
	for _, st := range doc.Streams {
		out[st.Name] = st
	}
	return out, nil
}

// Publishing reports whether stream name is being published with video.
func (s *RTMPServer) Publishing(name string) bool {
	st, err := s.Stats()
	if err != nil {
		return false
	}
	v, ok := st[name]
	return ok && v.Publishing != nil && v.Meta.Video.Codec != ""
}

// WaitPublishing waits until name is published (with video metadata) and
// returns how long that took.
func (s *RTMPServer) WaitPublishing(t TB, name string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if s.Publishing(name) {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("testenv: stream %q not published within %s", name, within)
	return 0
}

// WaitGone waits until nothing publishes name.
func (s *RTMPServer) WaitGone(t TB, name string, within time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		st, err := s.Stats()
		if err == nil {
			if v, ok := st[name]; !ok || v.Publishing == nil {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("testenv: stream %q still published after %s", name, within)
}

// DropPublisher makes nginx drop the publisher of name (a mid-stream failure).
func (s *RTMPServer) DropPublisher(name string) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/control/drop/publisher?app=live&name=%s", s.HTTPPort, name))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ProbeStream is one stream as ffprobe reports it.
type ProbeStream struct {
	CodecType    string `json:"codec_type"`
	CodecName    string `json:"codec_name"`
	Profile      string `json:"profile"`
	PixFmt       string `json:"pix_fmt"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	AvgFrameRate string `json:"avg_frame_rate"`
	RFrameRate   string `json:"r_frame_rate"`
	SampleRate   string `json:"sample_rate"`
	Channels     int    `json:"channels"`
}

// Probe is what ffprobe saw of a stream.
type Probe struct {
	Streams []ProbeStream `json:"streams"`
}

// Video returns the first video stream.
func (p Probe) Video() (ProbeStream, bool) { return p.first("video") }

// Audio returns the first audio stream.
func (p Probe) Audio() (ProbeStream, bool) { return p.first("audio") }

func (p Probe) first(kind string) (ProbeStream, bool) {
	for _, s := range p.Streams {
		if s.CodecType == kind {
			return s, true
		}
	}
	return ProbeStream{}, false
}

// FFProbe runs ffprobe on url (a stream or a file).
func FFProbe(t TB, url string) Probe {
	t.Helper()
	bin := need(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-v", "error", "-show_streams", "-of", "json", url)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testenv: ffprobe %s: %v: %s", url, err, stderr.String())
	}
	var p Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("testenv: ffprobe output: %v", err)
	}
	return p
}

// StartRTMPOnPort starts nginx-rtmp on a given RTMP port (one a test kept
// free, to bring a "dead" destination to life).
func StartRTMPOnPort(t TB, port int) *RTMPServer {
	t.Helper()
	return startRTMP(t, port)
}

// KeyframeTimes reads about seconds of video from url with ffprobe and
// returns the presentation times of its keyframes.
func KeyframeTimes(t TB, url string, seconds int) []float64 {
	t.Helper()
	bin := need(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+20)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "frame=key_frame,pts_time", "-read_intervals", fmt.Sprintf("%%+%d", seconds),
		"-of", "csv=p=0", url).Output()
	if err != nil {
		t.Fatalf("testenv: ffprobe frames of %s: %v", url, err)
	}
	var keys []float64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		key, pts, ok := strings.Cut(line, ",")
		if !ok || key != "1" {
			continue
		}
		if v, err := strconv.ParseFloat(pts, 64); err == nil {
			keys = append(keys, v)
		}
	}
	return keys
}
