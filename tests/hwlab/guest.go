//go:build hwlab

package hwlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/makercast/makercast/internal/testenv"
)

// GuestEnv is set to 1 by guest-init.sh inside the lab VM. Guest tests skip
// without it (RequireGuest); the host driver skips with it.
const GuestEnv = "MAKERCAST_HWLAB_GUEST"

// Guest reports whether this process runs inside the lab VM.
func Guest() bool { return os.Getenv(GuestEnv) == "1" }

// RequireGuest skips t unless it runs inside the lab VM. Every guest test
// starts with it: outside the VM there are no emulated devices, and loading
// modules or unbinding drivers on the host would be wrong.
func RequireGuest(t testing.TB) {
	t.Helper()
	if !Guest() {
		t.Skipf("hwlab: runs inside the lab VM (make hwlab), where %s=1", GuestEnv)
	}
}

// cmdTimeout bounds every command a helper runs to completion.
const cmdTimeout = 2 * time.Minute

// Try runs a command to completion (at most two minutes) and returns its
// combined output.
func Try(name string, args ...string) (string, error) {
	return tryWithin(cmdTimeout, name, args...)
}

func tryWithin(d time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("hwlab: %s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// Run is Try that fails the test, with the command's output, when the
// command fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Try(name, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// Modprobe loads a kernel module with parameters, one per argument, as
// modprobe takes them: Modprobe(t, "v4l2loopback", "devices=2",
// "card_label=Fake C270,Fake C920"). It waits for udev to settle, and
// unloads the module when the test ends (best effort), so tests sharing a
// VM start from the same kernel.
func Modprobe(t testing.TB, module string, params ...string) {
	t.Helper()
	Run(t, "modprobe", append([]string{module}, params...)...)
	t.Cleanup(func() {
		if out, err := Try("modprobe", "-r", module); err != nil {
			t.Logf("hwlab: unloading %s: %v: %s", module, err, strings.TrimSpace(out))
		}
	})
	Settle(t)
}

// Unbind detaches a platform device from its driver, as pulling it out
// would: its nodes vanish, open readers fail, udev sends remove events.
// Unbind(t, "vivid", "vivid.0"), Unbind(t, "snd_aloop", "snd_aloop.0").
func Unbind(t testing.TB, driver, device string) {
	t.Helper()
	writeSys(t, filepath.Join("/sys/bus/platform/drivers", driver, "unbind"), device)
}

// Bind attaches the device again, as plugging it back in would.
func Bind(t testing.TB, driver, device string) {
	t.Helper()
	writeSys(t, filepath.Join("/sys/bus/platform/drivers", driver, "bind"), device)
}

func writeSys(t testing.TB, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0o200); err != nil {
		t.Fatalf("hwlab: write %q to %s: %v", value, path, err)
	}
}

// Settle waits until udev has handled every event so far (device nodes,
// /dev/v4l/by-* links, permissions).
func Settle(t testing.TB) {
	t.Helper()
	Run(t, "udevadm", "settle", "-t", "30")
}

// WaitFor polls cond every 20 ms until it holds and returns how long that
// took; the test fails, naming what, after within.
func WaitFor(t testing.TB, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("hwlab: %s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Exists reports whether path exists.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// V4L2 device capabilities (linux/videodev2.h).
const (
	CapVideoCapture uint32 = 0x00000001
	CapVideoOutput  uint32 = 0x00000002
	CapStreaming    uint32 = 0x04000000
)

// DeviceCaps returns the capabilities of a V4L2 node (VIDIOC_QUERYCAP's
// device_caps).
func DeviceCaps(dev string) (uint32, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, fmt.Errorf("hwlab: %w", err)
	}
	defer f.Close()
	// struct v4l2_capability: driver[16] card[32] bus_info[32] version
	// capabilities device_caps reserved[3]
	var c [104]byte
	const vidiocQuerycap = 0x80685600
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), vidiocQuerycap, uintptr(unsafe.Pointer(&c[0]))); e != 0 {
		return 0, fmt.Errorf("hwlab: VIDIOC_QUERYCAP %s: %w", dev, e)
	}
	le := func(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 }
	return le(c[88:92]), nil
}

// CanCapture reports whether dev is a V4L2 capture node right now
// (a v4l2loopback node with exclusive_caps=1 is one only while written to).
func CanCapture(dev string) bool {
	caps, err := DeviceCaps(dev)
	return err == nil && caps&CapVideoCapture != 0
}

// GstLaunch runs a gst-launch-1.0 pipeline to its end (give the source
// num-buffers) and fails the test with GStreamer's output when it fails:
// GstLaunch(t, "v4l2src device=/dev/video0 num-buffers=10 !
// video/x-raw,width=640,height=360 ! fakesink"). The pipeline is split on
// white space (no quoting). It gives up after a minute: a source that
// delivers nothing blocks.
func GstLaunch(t testing.TB, pipeline string) {
	t.Helper()
	if out, err := tryWithin(time.Minute, "gst-launch-1.0", append([]string{"-q"}, strings.Fields(pipeline)...)...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// Proc is a helper process a guest test keeps running (a loopback writer,
// a tone): killed when the test ends, its output logged if the test failed.
// Kill and Start again to restart it.
type Proc struct {
	t    testing.TB
	name string
	argv []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// StartProc starts argv as a helper process named name.
func StartProc(t testing.TB, name string, argv ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, name: name, argv: argv}
	t.Cleanup(func() {
		p.Kill()
		p.mu.Lock()
		defer p.mu.Unlock()
		if t.Failed() && p.out != nil {
			t.Logf("hwlab: %s output:\n%s", p.name, Tail(p.out.String(), 40))
		}
	})
	p.Start()
	return p
}

// Start starts the process (again); it fails the test if it is running.
func (p *Proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			p.t.Fatalf("hwlab: %s is already running", p.name)
		}
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("hwlab: start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done, p.out = cmd, done, out
}

// Kill kills the process (and its children) and waits for it.
func (p *Proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Output is what the process (its latest start) has printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

// Writer feeds a v4l2loopback node, making it a camera with compressed
// output (MJPEG like a Logitech C270, H.264 like a C920). Kill it to stall
// the camera: readers then get no frames and no error. Start restarts it.
type Writer struct {
	*Proc
	Dev  string
	Kind string // "mjpeg" or "h264"
	W, H int
	FPS  int
}

// StartLoopbackWriter starts feeding dev (a v4l2loopback node loaded with
// exclusive_caps=1) with a test pattern of kind "mjpeg" or "h264" at
// w x h @ fps, and returns once dev offers capture at that rate.
func StartLoopbackWriter(t testing.TB, dev, kind string, w, h, fps int) *Writer {
	t.Helper()
	raw := fmt.Sprintf("video/x-raw,width=%d,height=%d,framerate=%d/1", w, h, fps)
	// v4l2sink only takes caps that are a subset of what it probes:
	// parsed=true from the parsers, and v4l2loopback's sRGB colorimetry.
	var enc []string
	switch kind {
	case "mjpeg":
		enc = []string{"jpegenc", "!", "jpegparse", "!", "capssetter", "caps=image/jpeg,colorimetry=(string)2:4:7:1"}
	case "h264":
		enc = []string{"x264enc", "tune=zerolatency", "speed-preset=ultrafast", fmt.Sprintf("key-int-max=%d", fps),
			"!", "video/x-h264,profile=constrained-baseline", "!", "h264parse", "config-interval=-1",
			"!", "video/x-h264,stream-format=byte-stream,alignment=au",
			"!", "capssetter", "caps=video/x-h264,colorimetry=(string)2:4:7:1"}
	default:
		t.Fatalf("hwlab: loopback writer kind %q: want mjpeg or h264", kind)
	}
	argv := append([]string{"gst-launch-1.0", "-q", "videotestsrc", "is-live=true", "!", raw, "!"}, enc...)
	argv = append(argv, "!", "v4l2sink", "device="+dev)
	wr := &Writer{Proc: &Proc{t: t, name: "writer " + dev, argv: argv}, Dev: dev, Kind: kind, W: w, H: h, FPS: fps}
	t.Cleanup(func() {
		wr.Kill()
		if t.Failed() {
			t.Logf("hwlab: writer %s output:\n%s", dev, Tail(wr.Output(), 40))
		}
	})
	wr.Start()
	return wr
}

// Start starts the writer (again) and waits until the node captures; then
// it sets the capture frame rate, which v4l2loopback otherwise leaves at 30.
func (w *Writer) Start() {
	w.t.Helper()
	w.Proc.Start()
	WaitFor(w.t, "writer on "+w.Dev+" streaming", 30*time.Second, func() bool {
		if !w.Running() {
			w.t.Fatalf("hwlab: writer on %s exited:\n%s", w.Dev, w.Output())
		}
		return CanCapture(w.Dev)
	})
	Run(w.t, "v4l2-ctl", "-d", w.Dev, "-p", strconv.Itoa(w.FPS))
}

// PlayTone plays a 440 Hz sine at half scale into an ALSA playback device
// until the test ends. Into snd-aloop's hw:Loopback,0,N it comes out of the
// capture device hw:Loopback,1,N: a microphone that hears something. The
// tone is 44.1 kHz stereo, and converted to whatever the loopback's other
// side already runs at.
func PlayTone(t testing.TB, device string) *Proc {
	t.Helper()
	p := StartProc(t, "tone "+device, "gst-launch-1.0", "-q", "audiotestsrc", "is-live=true", "wave=sine", "freq=440", "volume=0.5",
		"!", "audio/x-raw,rate=44100,channels=2", "!", "audioconvert", "!", "audioresample", "!", "alsasink", "device="+device)
	time.Sleep(300 * time.Millisecond)
	if !p.Running() {
		t.Fatalf("hwlab: tone into %s exited:\n%s", device, p.Output())
	}
	return p
}

// SilenceDB is the mean volume ffmpeg reports for digital silence.
const SilenceDB = -91.0

var meanVolumeRe = regexp.MustCompile(`mean_volume: (-?[0-9.]+|-inf) dB`)

// MeanVolume records about d of audio from url (an RTMP stream, a file) with
// ffmpeg and returns its mean volume in dB (volumedetect): SilenceDB for
// digital silence, about -9 for PlayTone's tone.
func MeanVolume(t testing.TB, url string, d time.Duration) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+45*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostats", "-rw_timeout", "20000000",
		"-i", url, "-t", fmt.Sprintf("%.1f", d.Seconds()), "-vn", "-af", "volumedetect", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("hwlab: ffmpeg volumedetect %s: %v\n%s", url, err, Tail(string(out), 20))
	}
	m := meanVolumeRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("hwlab: no mean_volume in ffmpeg's output:\n%s", Tail(string(out), 20))
	}
	if m[1] == "-inf" {
		return SilenceDB
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("hwlab: mean_volume %q: %v", m[1], err)
	}
	return v
}

// Probe is testenv.FFProbe with room for emulation: ffprobe alone takes
// seconds to start under TCG, so it gets a minute instead of 20 s.
func Probe(t testing.TB, url string) testenv.Probe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rw_timeout", "30000000", "-show_streams", "-of", "json", url)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hwlab: ffprobe %s: %v: %s", url, err, stderr.String())
	}
	var p testenv.Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("hwlab: ffprobe output: %v", err)
	}
	return p
}

// BenchPrefix starts the lines Bench prints; the host driver collects them
// from every guest's output into one table.
const BenchPrefix = "HWLAB-BENCH"

// Bench reports one measurement: name ("unplug → error on MQTT"), its goal
// ("≤ 1 s"), what was measured (a time.Duration, printed in seconds, or any
// value) and a note. It prints a HWLAB-BENCH line on stdout.
func Bench(name, goal string, measured any, note string) {
	var m string
	switch v := measured.(type) {
	case time.Duration:
		m = fmt.Sprintf("%.2f s", v.Seconds())
	default:
		m = fmt.Sprint(v)
	}
	clean := strings.NewReplacer("\t", " ", "\n", " ").Replace
	fmt.Printf("%s\t%s\t%s\t%s\t%s\n", BenchPrefix, clean(name), clean(goal), clean(m), clean(note))
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[… %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

type syncBuffer = testenv.SyncBuffer
