package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"github.com/go-gst/go-gst/gst"

	"github.com/makercast/makercast/agent"
	. "github.com/makercast/makercast/internal/media/graph"
	"github.com/makercast/makercast/internal/testenv"
	"github.com/makercast/makercast/internal/v4l2"
)

// stopCamera blocks the source's output: frames stop, with no error and
// no EOS, as with a frozen webcam or a killed loopback writer. Setting the
// pipeline to NULL releases the block.
func stopCamera(t *testing.T, c *Capture) {
	t.Helper()
	c.p.els["src"].GetStaticPad("src").AddProbe(gst.PadProbeTypeBlock|gst.PadProbeTypeBuffer,
		func(*gst.Pad, *gst.PadProbeInfo) gst.PadProbeReturn { return gst.PadProbeOK })
}

// waitStall waits for the capture to fail with a stall and checks it does
// so within the stall timeout plus half a second of blocking the camera.
func waitStall(t *testing.T, c *Capture, stall time.Duration) {
	t.Helper()
	stopped := time.Now()
	stopCamera(t, c)
	select {
	case <-c.Done():
	case <-time.After(stall + 500*time.Millisecond):
		t.Fatalf("capture still running %s after the camera stopped (stall timeout %s)", time.Since(stopped), stall)
	}
	took := time.Since(stopped)
	want := fmt.Sprintf("media: camera stalled: no frame for %s", stall)
	if err := c.Err(); err == nil || err.Error() != want {
		t.Fatalf("Err() = %v, want %q", err, want)
	}
	if took < stall-100*time.Millisecond {
		t.Errorf("stall reported after %s, before the %s timeout", took, stall)
	}
	t.Logf("stall reported %s after the camera stopped", took)
}

// closeWithin closes c and fails when that takes longer than d.
func closeWithin(t *testing.T, c *Capture, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
		t.Logf("Close took %s", time.Since(start))
	case <-time.After(d):
		t.Fatalf("Close blocked for more than %s with the source blocked", d)
	}
}

func TestStalledCameraEndsCapture(t *testing.T) {
	e := newEngine(t)
	s := testSpec()
	s.StallTimeout = time.Second
	c, err := e.Open(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Ready():
	case <-c.Done():
		t.Fatalf("capture ended before its first frame: %v", c.Err())
	}
	time.Sleep(1500 * time.Millisecond) // longer than the timeout: a healthy camera is not stalled
	select {
	case <-c.Done():
		t.Fatalf("a running camera counted as stalled: %v", c.Err())
	default:
	}
	waitStall(t, c, time.Second)
	closeWithin(t, c, 2*time.Second)
}

// Without a watchdog, a capture whose source blocks still closes at once.
func TestCloseWhileCameraBlocked(t *testing.T) {
	e := newEngine(t)
	s := testSpec()
	s.StallTimeout = 0
	c, err := e.Open(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	<-c.Ready()
	stopCamera(t, c)
	time.Sleep(2500 * time.Millisecond)
	select {
	case <-c.Done():
		t.Fatalf("capture ended without a watchdog: %v", c.Err())
	default:
	}
	closeWithin(t, c, 2*time.Second)
}

func TestStallAfter(t *testing.T) {
	s := testSpec()
	s.StallTimeout = 500 * time.Millisecond
	if d := stallAfter(s, nil); d != 500*time.Millisecond {
		t.Errorf("30 fps: %s", d)
	}
	if d := stallAfter(s, &Choice{Rate: v4l2.Rate{Num: 1, Den: 1}}); d != 3*time.Second {
		t.Errorf("1 fps camera: %s, want 3 frame intervals", d)
	}
	s.StallTimeout = 0
	if d := stallAfter(s, &Choice{Rate: v4l2.Rate{Num: 1, Den: 1}}); d != 0 {
		t.Errorf("watchdog off: %s", d)
	}
}

// fakeCamera puts a live test pattern where the graph has v4l2src, coded
// the way the chosen mode says the camera delivers it, so that the rest of
// the V4L2 graph (decoder, rate adapter, scaler) runs for real.
func fakeCamera(t *testing.T, g Graph, cam *Choice) Graph {
	t.Helper()
	video := g.Chains[0]
	if video.Elems[0].Factory != "v4l2src" {
		t.Fatalf("graph does not start with v4l2src: %s", g)
	}
	size := fmt.Sprintf("width=%d,height=%d,framerate=%d/%d", cam.Width, cam.Height, cam.Rate.Num, cam.Rate.Den)
	src := []Elem{{Factory: "videotestsrc", Name: "src", Props: []Prop{{Name: "is-live", Value: "true"}, {Name: "pattern", Value: "smpte"}}}}
	switch cam.Format {
	case v4l2.MJPEG:
		src = append(src,
			Elem{Factory: "capsfilter", Name: "camraw", Props: []Prop{{Name: "caps", Value: "video/x-raw,format=I420," + size}}},
			Elem{Factory: "jpegenc", Name: "camenc"})
	case v4l2.H264:
		src = append(src,
			Elem{Factory: "capsfilter", Name: "camraw", Props: []Prop{{Name: "caps", Value: "video/x-raw,format=I420," + size}}},
			Elem{Factory: "x264enc", Name: "camenc", Props: []Prop{{Name: "tune", Value: "zerolatency"}, {Name: "speed-preset", Value: "ultrafast"}, {Name: "key-int-max", Value: "30"}}},
			// UVC cameras (a C920) and v4l2loopback deliver Annex B byte-stream.
			Elem{Factory: "h264parse", Name: "camparse"},
			Elem{Factory: "capsfilter", Name: "camh264", Props: []Prop{{Name: "caps", Value: "video/x-h264,stream-format=byte-stream,alignment=au"}}})
	}
	chains := append([]Chain(nil), g.Chains...)
	chains[0].Elems = append(src, video.Elems[1:]...)
	return Graph{Chains: chains}
}

// openFakeCamera opens a V4L2 capture whose camera offers modes, with the
// source replaced by fakeCamera.
func openFakeCamera(t *testing.T, e *Engine, s agent.CaptureSpec, modes []v4l2.Mode) *Capture {
	t.Helper()
	e.ProbeModes = func(dev string) ([]v4l2.Mode, bool, error) {
		if dev != s.Video.Device {
			t.Errorf("probed %s, want %s", dev, s.Video.Device)
		}
		return modes, true, nil
	}
	g, res, cam, err := e.captureGraph(s)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.start(s, fakeCamera(t, g, cam), res, cam)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	select {
	case <-c.Ready():
	case <-c.Done():
		t.Fatalf("capture failed: %v", c.Err())
	case <-time.After(10 * time.Second):
		t.Fatal("no first frame")
	}
	return c
}

func v4l2TestSpec(w, h, fps int) agent.CaptureSpec {
	s := testSpec()
	s.Video.Source, s.Video.Device, s.Video.Input = agent.VideoV4L2, "/dev/video7", agent.InputAuto
	s.Video.Width, s.Video.Height, s.Video.FPS = w, h, fps
	return s
}

// rates measures camera and encoder frame rates over d.
func rates(c *Capture, d time.Duration) (camera, encoded float64) {
	s0 := c.Stats()
	time.Sleep(d)
	s1 := c.Stats()
	return float64(s1.Frames-s0.Frames) / d.Seconds(), float64(s1.Encoded-s0.Encoded) / d.Seconds()
}

func luma(img image.Image, x, y int) uint8 {
	if yc, ok := img.(*image.YCbCr); ok {
		return yc.Y[yc.YOffset(x, y)]
	}
	r, g, b, _ := img.At(x, y).RGBA()
	return uint8((299*r + 587*g + 114*b) / 1000 >> 8)
}

// A C270-like camera (MJPEG 640x480 at 15 fps only) streamed as 16:9 at
// 30 fps: decoded, frames doubled, pillar-boxed; then it stalls.
func TestMJPEGCameraAdaptedToOutput(t *testing.T) {
	e := newEngine(t)
	s := v4l2TestSpec(640, 360, 30)
	c := openFakeCamera(t, e, s, []v4l2.Mode{{Format: v4l2.MJPEG, FourCC: "MJPG", Width: 640, Height: 480, Rates: []v4l2.Rate{{Num: 15, Den: 1}}}})
	if m := c.Resolved().Mode; m != "mjpeg 640x480@15 → 640x360@30" {
		t.Errorf("mode %q", m)
	}
	time.Sleep(500 * time.Millisecond) // past the start-up burst
	camera, encoded := rates(c, 2*time.Second)
	if camera < 13 || camera > 17 || encoded < 27 || encoded > 33 {
		t.Errorf("camera %.1f fps, encoded %.1f fps; want about 15 and 30", camera, encoded)
	}
	pic, err := c.Snapshot(agent.SnapshotOptions{Quality: 90})
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(pic.JPEG))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 360 {
		t.Fatalf("snapshot %v, want 640x360", b)
	}
	// 4:3 in 16:9: the picture is 480 wide, centred, black bars of 80.
	for _, x := range []int{10, 70, 570, 630} {
		if l := luma(img, x, 180); l > 30 {
			t.Errorf("x=%d: luma %d, want a black pillar-box bar", x, l)
		}
	}
	if l := luma(img, 100, 60); l < 100 {
		t.Errorf("x=100: luma %d, want the pattern's white bar (not stretched over the border)", l)
	}
	waitStall(t, c, 2*time.Second)
}

// Raw 720p at 60 fps scaled down to 360p at 30: half the frames dropped,
// same aspect ratio, no borders.
func TestRawCameraScaledAndDropped(t *testing.T) {
	e := newEngine(t)
	s := v4l2TestSpec(640, 360, 30)
	c := openFakeCamera(t, e, s, []v4l2.Mode{
		{Format: v4l2.Raw, FourCC: "YUYV", Width: 1280, Height: 720, Rates: []v4l2.Rate{{Num: 60, Den: 1}}},
		{Format: v4l2.Raw, FourCC: "YUYV", Width: 320, Height: 180, Rates: []v4l2.Rate{{Num: 60, Den: 1}}},
	})
	if m := c.Resolved().Mode; m != "raw 1280x720@60 → 640x360@30" {
		t.Errorf("mode %q", m)
	}
	time.Sleep(500 * time.Millisecond)
	camera, encoded := rates(c, 2*time.Second)
	if camera < 54 || camera > 66 || encoded < 27 || encoded > 33 {
		t.Errorf("camera %.1f fps, encoded %.1f fps; want about 60 and 30", camera, encoded)
	}
	pic, err := c.Snapshot(agent.SnapshotOptions{Quality: 90})
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(pic.JPEG))
	if err != nil {
		t.Fatal(err)
	}
	if l := luma(img, 4, 60); l < 100 {
		t.Errorf("left edge luma %d: the 16:9 picture should fill the 16:9 frame", l)
	}
}

// The camera's own H.264 (byte-stream, as a C920 gives it) goes out as it
// is: no encoder, no snapshots, and an RTMP server gets the camera's size.
func TestH264CameraPassedThrough(t *testing.T) {
	srv := testenv.StartRTMP(t)
	e := newEngine(t)
	s := v4l2TestSpec(1280, 720, 30)
	s.Video.PreferH264 = true
	c := openFakeCamera(t, e, s, []v4l2.Mode{
		{Format: v4l2.MJPEG, FourCC: "MJPG", Width: 1280, Height: 720, Rates: []v4l2.Rate{{Num: 30, Den: 1}}},
		{Format: v4l2.H264, FourCC: "H264", Width: 640, Height: 480, Rates: []v4l2.Rate{{Num: 30, Den: 1}}},
	})
	res := c.Resolved()
	if res.Mode != "h264 640x480@30" || res.Encoder != "camera" || res.Snapshots {
		t.Errorf("resolved %+v", res)
	}
	if _, err := c.Snapshot(agent.SnapshotOptions{Quality: 80}); !errors.Is(err, ErrNoSnapshots) {
		t.Errorf("snapshot of a passed-through camera: %v", err)
	}
	if _, encoded := rates(c, time.Second); encoded < 25 {
		t.Errorf("%.1f frames/s out of the parser", encoded)
	}
	stop := runSend(t.Context(), c, target(srv, "cam"), agent.OutputHooks{})
	srv.WaitPublishing(t, "cam", 10*time.Second)
	if v, ok := testenv.FFProbe(t, srv.URL()+"/cam").Video(); !ok || v.CodecName != "h264" || v.Width != 640 || v.Height != 480 {
		t.Errorf("video at the server %+v (found %v), want the camera's 640x480 H.264", v, ok)
	}
	if err := stop(); err != nil {
		t.Errorf("send: %v", err)
	}
}

func TestOpenCaptureProbeErrors(t *testing.T) {
	e := newEngine(t)
	s := v4l2TestSpec(1280, 720, 30)
	e.ProbeModes = func(string) ([]v4l2.Mode, bool, error) {
		return nil, false, errors.New("v4l2: /dev/video7: open: no such file or directory")
	}
	if _, err := e.Open(t.Context(), s); err == nil || err.Error() != "media: camera modes: v4l2: /dev/video7: open: no such file or directory" {
		t.Errorf("probe failure: %v", err)
	}
	e.ProbeModes = func(string) ([]v4l2.Mode, bool, error) {
		return []v4l2.Mode{{Format: v4l2.MJPEG, FourCC: "MJPG", Width: 640, Height: 480, Rates: []v4l2.Rate{{Num: 15, Den: 1}}}}, true, nil
	}
	s.Video.Input = agent.InputH264
	_, err := e.Open(t.Context(), s)
	if err == nil || err.Error() != "graph: /dev/video7 offers no H.264; it offers MJPEG 640x480@15" {
		t.Errorf("impossible request: %v", err)
	}
	// A real device path that is not a camera goes through the ioctls.
	e.ProbeModes = nil
	s.Video.Device, s.Video.Input = "/dev/null", agent.InputAuto
	if _, err := e.Open(t.Context(), s); err == nil || !strings.Contains(err.Error(), "media: camera modes: v4l2: /dev/null: VIDIOC_QUERYCAP: inappropriate ioctl for device") {
		t.Errorf("/dev/null as a camera: %v", err)
	}
}
