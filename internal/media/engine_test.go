package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/secret"
	"github.com/makercast/makercast/internal/testenv"
)

func testSpec() agent.CaptureSpec {
	return agent.CaptureSpec{
		Video: agent.VideoSpec{Source: agent.VideoTest, Width: 640, Height: 360, FPS: 30, BitrateKbps: 800, KeyframeSec: 2, Encoder: agent.EncoderX264, Preset: "ultrafast"},
		Audio: agent.AudioSpec{Source: agent.AudioTest, BitrateKbps: 128},
		Slots: 3,
		// The production default: every test runs under the stall watchdog.
		StallTimeout: 2 * time.Second,
	}
}

func newEngine(t *testing.T) *Engine {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return NewEngine(log)
}

func target(srv *testenv.RTMPServer, key string) agent.RTMPOutput {
	return agent.RTMPOutput{Scheme: agent.RTMP, Host: "127.0.0.1", Port: srv.Port, Application: "live", Key: secret.Secret(key)}
}

// runSend runs Send in a goroutine and returns a stop function that waits.
func runSend(ctx context.Context, c *Capture, tg agent.RTMPOutput, hooks agent.OutputHooks) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- c.Attach(ctx, tg, hooks) }()
	return func() error { cancel(); return <-errc }
}

func TestCaptureSendsPlayableStream(t *testing.T) {
	srv := testenv.StartRTMP(t)
	e := newEngine(t)
	ctx := context.Background()
	c := openCapture(t, e, testSpec())
	var live atomic.Bool
	stop := runSend(ctx, c, target(srv, "k1"), agent.OutputHooks{Live: func(now bool, _ string) { live.Store(now) }})
	srv.WaitPublishing(t, "k1", 10*time.Second)
	pr := testenv.FFProbe(t, srv.URL()+"/k1")
	v, ok := pr.Video()
	if !ok {
		t.Fatalf("no video stream in %+v", pr)
	}
	if v.CodecName != "h264" || v.PixFmt != "yuv420p" || v.Width != 640 || v.Height != 360 || v.Profile != "Constrained Baseline" {
		t.Errorf("video = %+v", v)
	}
	if v.AvgFrameRate != "30/1" && v.RFrameRate != "30/1" {
		t.Errorf("frame rate = %s / %s, want 30/1", v.AvgFrameRate, v.RFrameRate)
	}
	a, ok := pr.Audio()
	if !ok || a.CodecName != "aac" || a.Profile != "LC" || a.SampleRate != "44100" {
		t.Errorf("audio = %+v (present %v)", a, ok)
	}
	if !live.Load() {
		t.Error("Live hook was not called although the server receives the stream")
	}
	if err := stop(); err != nil {
		t.Errorf("Send after cancel = %v, want nil", err)
	}
	srv.WaitGone(t, "k1", 5*time.Second)
}

func TestOneDeadDestinationDoesNotDisturbTheOther(t *testing.T) {
	srv := testenv.StartRTMP(t)
	e := newEngine(t)
	ctx := context.Background()
	c := openCapture(t, e, testSpec())
	stop := runSend(ctx, c, target(srv, "good"), agent.OutputHooks{})
	defer stop()
	srv.WaitPublishing(t, "good", 10*time.Second)

	dead := agent.RTMPOutput{Scheme: agent.RTMP, Host: "127.0.0.1", Port: testenv.FreePort(t), Application: "live", Key: "secretkey123"}
	for i := 0; i < 3; i++ {
		err := c.Attach(ctx, dead, agent.OutputHooks{})
		if err == nil {
			t.Fatal("Send to a closed port returned nil")
		}
		if strings.Contains(err.Error(), "secretkey123") {
			t.Fatalf("error leaks the stream key: %v", err)
		}
	}
	before, _ := srv.Stats()
	time.Sleep(1500 * time.Millisecond)
	after, _ := srv.Stats()
	if after["good"].BytesIn <= before["good"].BytesIn {
		t.Fatalf("healthy destination stopped receiving: %d -> %d bytes", before["good"].BytesIn, after["good"].BytesIn)
	}
	if !srv.Publishing("good") {
		t.Fatal("healthy destination no longer published")
	}
}

func TestReattachOnSameSlotPlays(t *testing.T) {
	srv := testenv.StartRTMP(t)
	e := newEngine(t)
	ctx := context.Background()
	spec := testSpec()
	spec.Slots = 1
	c := openCapture(t, e, spec)
	for i := 0; i < 3; i++ {
		key := fmt.Sprintf("re%d", i)
		stop := runSend(ctx, c, target(srv, key), agent.OutputHooks{})
		srv.WaitPublishing(t, key, 10*time.Second)
		pr := testenv.FFProbe(t, srv.URL()+"/"+key)
		if v, ok := pr.Video(); !ok || v.Width != 640 {
			t.Fatalf("attach %d: video = %+v", i, pr)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	// The only slot is free again; a second concurrent sender gets ErrNoSlot.
	stop := runSend(ctx, c, target(srv, "x"), agent.OutputHooks{})
	defer stop()
	srv.WaitPublishing(t, "x", 10*time.Second)
	if err := c.Attach(ctx, target(srv, "y"), agent.OutputHooks{}); !errors.Is(err, ErrNoSlot) {
		t.Fatalf("second sender on a full capture: %v, want ErrNoSlot", err)
	}
}

func TestSnapshotWhileStreaming(t *testing.T) {
	srv := testenv.StartRTMP(t)
	e := newEngine(t)
	ctx := context.Background()
	c := openCapture(t, e, testSpec())
	stop := runSend(ctx, c, target(srv, "snap"), agent.OutputHooks{})
	defer stop()
	srv.WaitPublishing(t, "snap", 10*time.Second)
	before, _ := srv.Stats()
	for _, o := range []agent.SnapshotOptions{{Quality: 85}, {Width: 320, Quality: 50}, {Width: 160, Height: 160, Quality: 90}} {
		pic, err := c.Snapshot(o)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(pic.JPEG))
		if err != nil {
			t.Fatalf("%+v: not a JPEG: %v", o, err)
		}
		want := map[agent.SnapshotOptions][2]int{{Quality: 85}: {640, 360}, {Width: 320, Quality: 50}: {320, 180}, {Width: 160, Height: 160, Quality: 90}: {160, 160}}[o]
		if b := img.Bounds(); b.Dx() != want[0] || b.Dy() != want[1] || pic.Width != want[0] {
			t.Errorf("%+v: %dx%d (reported %dx%d), want %v", o, b.Dx(), b.Dy(), pic.Width, pic.Height, want)
		}
	}
	if _, err := c.Snapshot(agent.SnapshotOptions{Width: 99999, Quality: 85}); err == nil {
		t.Error("absurd width accepted")
	}
	time.Sleep(time.Second)
	after, _ := srv.Stats()
	if !srv.Publishing("snap") || after["snap"].BytesIn <= before["snap"].BytesIn {
		t.Fatal("the stream suffered from snapshots")
	}
}

func TestAssembleTimelapse(t *testing.T) {
	e := newEngine(t)
	c, err := e.Open(context.Background(), testSpec())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const n = 12
	for i := 0; i < n; i++ {
		pic, err := c.Snapshot(agent.SnapshotOptions{Quality: 80})
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(fmt.Sprintf("%s/frame-%06d.jpg", dir, i), pic.JPEG, 0o644)
	}
	c.Close()
	out := dir + "/tl.mp4"
	if err := e.AssembleTimelapse(context.Background(), dir+"/frame-%06d.jpg", 6, out); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames,codec_name,width,height", "-of", "csv=p=0", out)
	res, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res)); got != fmt.Sprintf("h264,640,360,%d", n) {
		t.Fatalf("ffprobe: %s, want h264,640,360,%d", got, n)
	}
	if _, err := os.Stat(out + ".part"); err == nil {
		t.Error("part file left")
	}
	// No frames: an error, and no file left behind.
	if err := e.AssembleTimelapse(context.Background(), t.TempDir()+"/frame-%06d.jpg", 6, dir+"/empty.mp4"); err == nil {
		t.Error("assembling nothing succeeded")
	}
	if _, err := os.Stat(dir + "/empty.mp4.part"); err == nil {
		t.Error("part file left after a failure")
	}
}

func TestCaptureStats(t *testing.T) {
	e := newEngine(t)
	c := openCapture(t, e, testSpec())
	<-c.Ready()
	s0 := c.Stats()
	time.Sleep(2 * time.Second)
	s1 := c.Stats()
	fps := float64(s1.Frames-s0.Frames) / 2
	enc := float64(s1.Encoded-s0.Encoded) / 2
	if fps < 27 || fps > 33 || enc < 27 || enc > 33 {
		t.Fatalf("capture %.1f fps, encoder %.1f fps, want about 30 (%+v -> %+v)", fps, enc, s0, s1)
	}
	if s1.Dropped > 2 || s1.QueueLevel > 2 {
		t.Errorf("dropped %d, queue %d on an idle machine", s1.Dropped, s1.QueueLevel)
	}
}

// An encoder that cannot keep up (4K60 x264 on two cores) drops frames in
// the leaky capture queue, and they are counted.
func TestDroppedFramesAreCounted(t *testing.T) {
	e := newEngine(t)
	s := testSpec()
	s.Video.Width, s.Video.Height, s.Video.FPS, s.Video.Preset, s.Video.BitrateKbps = 3840, 2160, 60, "fast", 20000
	c := openCapture(t, e, s)
	time.Sleep(3 * time.Second)
	st := c.Stats()
	if st.Dropped == 0 || st.Encoded == 0 || st.Frames != st.Encoded+st.Dropped {
		t.Fatalf("stats %+v: want drops counted", st)
	}
}

// openCapture opens a capture that is closed when the test ends.
func openCapture(t *testing.T, e *Engine, spec agent.CaptureSpec) *Capture {
	t.Helper()
	c, err := e.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
