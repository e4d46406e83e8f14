//go:build hwlab

package media

// Guest-side tests for the QEMU hardware lab (tests/hwlab), like those of
// internal/v4l2: real drivers (vivid, v4l2loopback) through the real
// probe, mode choice and v4l2src. They run only in the lab VM, as root,
// with MAKERCAST_HWLAB_GUEST=1:
//
//	go test -c -tags hwlab -o .hwlab/lab/media.test ./internal/media
//	MAKERCAST_HWLAB_GUEST=1 /lab/media.test -test.v -test.run HWLab
//
// Sizes and x264's ultrafast preset are kept small: the VM is emulated.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/v4l2"
)

func guestOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("MAKERCAST_HWLAB_GUEST") != "1" {
		t.Skip("hardware lab guest only (MAKERCAST_HWLAB_GUEST=1)")
	}
}

func modprobe(t *testing.T, module string, args ...string) {
	t.Helper()
	if _, err := os.Stat("/sys/module/" + module); err == nil {
		return
	}
	if out, err := exec.Command("modprobe", append([]string{module}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("modprobe %s %v: %v\n%s", module, args, err, out)
	}
}

func videoNode(t *testing.T, match func(name string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		dirs, _ := filepath.Glob("/sys/class/video4linux/video*")
		for _, d := range dirs {
			if name, err := os.ReadFile(filepath.Join(d, "name")); err == nil && match(strings.TrimSpace(string(name))) {
				if dev := "/dev/" + filepath.Base(d); fileExists(dev) {
					return dev
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching video4linux node after 10 s (have %v)", dirs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func labSpec(dev string, w, h, fps int) agent.CaptureSpec {
	s := testSpec()
	s.Video.Source, s.Video.Device, s.Video.Input = agent.VideoV4L2, dev, agent.InputAuto
	s.Video.Width, s.Video.Height, s.Video.FPS = w, h, fps
	s.Audio.Source = agent.AudioSilence
	return s
}

func waitReady(t *testing.T, c *Capture) {
	t.Helper()
	select {
	case <-c.Ready():
	case <-c.Done():
		t.Fatalf("capture failed before its first frame: %v", c.Err())
	}
}

// vivid is raw only and cannot do 640x480 at 30 fps (25 at most): auto
// picks a raw mode that meets 30 fps and the graph scales it.
func TestHWLabVividCapture(t *testing.T) {
	guestOnly(t)
	modprobe(t, "vivid", "n_devs=1", "node_types=0x1")
	dev := videoNode(t, func(n string) bool { return strings.HasPrefix(n, "vivid-") && strings.HasSuffix(n, "-vid-cap") })
	e := newEngine(t)
	e.FirstFrameTimeout = time.Minute
	c, err := e.Open(context.Background(), labSpec(dev, 640, 480, 30))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	res := c.Resolved()
	t.Logf("resolved %+v", res)
	if !strings.HasPrefix(res.Mode, "raw 640x360@30 → 640x480@30") {
		t.Errorf("mode %q, want raw 640x360@30 scaled to 640x480@30", res.Mode)
	}
	waitReady(t, c)
	s0 := c.Stats()
	time.Sleep(3 * time.Second)
	s1 := c.Stats()
	t.Logf("3 s: %d camera frames, %d encoded, %d dropped", s1.Frames-s0.Frames, s1.Encoded-s0.Encoded, s1.Dropped-s0.Dropped)
	if s1.Frames == s0.Frames || s1.Encoded == s0.Encoded {
		t.Errorf("no frames flowing: %+v -> %+v", s0, s1)
	}
	pic, err := c.Snapshot(agent.SnapshotOptions{Quality: 80})
	if err != nil || pic.Width != 640 || pic.Height != 480 {
		t.Errorf("snapshot %dx%d: %v", pic.Width, pic.Height, err)
	}
}

// The lab's finding 4: a v4l2loopback camera whose writer dies leaves
// v4l2src blocked with no error. The watchdog must end the capture, and
// Close must still return.
func TestHWLabLoopbackWriterDies(t *testing.T) {
	guestOnly(t)
	modprobe(t, "v4l2loopback", "devices=1", "video_nr=12", "exclusive_caps=1", "card_label=OBS Virtual Camera")
	dev := videoNode(t, func(n string) bool { return n == "OBS Virtual Camera" })
	writer := exec.Command("gst-launch-1.0", "-q",
		"videotestsrc", "is-live=true", "!", "video/x-raw,width=640,height=480,framerate=15/1",
		"!", "jpegenc", "!", "jpegparse", "!", "capssetter", "caps=image/jpeg,colorimetry=(string)2:4:7:1",
		"!", "v4l2sink", "device="+dev)
	var out strings.Builder
	writer.Stdout, writer.Stderr = &out, &out
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = writer.Process.Kill()
			_ = writer.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := v4l2.QueryCap(dev); err == nil && c.CanCapture() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not a camera 30 s after the writer started; writer: %s", dev, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// v4l2loopback advertises 30 fps until told the writer's rate.
	if o, err := exec.Command("v4l2-ctl", "-d", dev, "-p", "15").CombinedOutput(); err != nil {
		t.Logf("v4l2-ctl -p 15: %v %s (the camera then claims 30 fps)", err, o)
	}

	e := newEngine(t)
	e.FirstFrameTimeout = time.Minute
	s := labSpec(dev, 640, 480, 15)
	s.StallTimeout = 2 * time.Second
	c, err := e.Open(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resolved %+v", c.Resolved())
	if m := c.Resolved().Mode; !strings.HasPrefix(m, "mjpeg 640x480@") {
		t.Errorf("mode %q, want the writer's MJPEG 640x480", m)
	}
	waitReady(t, c)
	time.Sleep(3 * time.Second)
	select {
	case <-c.Done():
		t.Fatalf("capture ended while the writer runs: %v", c.Err())
	default:
	}

	_ = writer.Process.Kill()
	_ = writer.Wait()
	killed = true
	stopped := time.Now()
	select {
	case <-c.Done():
	case <-time.After(s.StallTimeout + 3*time.Second): // the VM is emulated: generous
		t.Fatalf("capture still running %s after the writer died", time.Since(stopped))
	}
	t.Logf("ended %s after the writer died: %v", time.Since(stopped), c.Err())
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "camera stalled") {
		t.Errorf("Err() = %v, want a stall", err)
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked with v4l2src waiting on a dead loopback")
	}
}
