//go:build hwlab

package v4l2

// Guest-side tests for the QEMU hardware lab (tests/hwlab): they run inside
// the lab VM, as root, with MAKERCAST_HWLAB_GUEST=1, and ask real drivers
// through the real ioctls:
//
//	go test -c -tags hwlab -o .hwlab/lab/v4l2.test ./internal/v4l2
//	# in the guest:
//	MAKERCAST_HWLAB_GUEST=1 /lab/v4l2.test -test.v -test.run HWLab
//
// They load the modules they need (vivid, v4l2loopback) when not loaded
// yet and leave them loaded. Everywhere else they skip.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func guestOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("MAKERCAST_HWLAB_GUEST") != "1" {
		t.Skip("hardware lab guest only (MAKERCAST_HWLAB_GUEST=1)")
	}
}

// load runs modprobe with args unless the module is loaded already; it
// reports whether it loaded it.
func load(t *testing.T, module string, args ...string) bool {
	t.Helper()
	if _, err := os.Stat("/sys/module/" + module); err == nil {
		t.Logf("%s already loaded", module)
		return false
	}
	out, err := exec.Command("modprobe", append([]string{module}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("modprobe %s %v: %v\n%s", module, args, err, out)
	}
	return true
}

// node waits for the video4linux node whose sysfs name matches and returns
// its /dev path.
func node(t *testing.T, match func(name string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		dirs, _ := filepath.Glob("/sys/class/video4linux/video*")
		for _, d := range dirs {
			name, err := os.ReadFile(filepath.Join(d, "name"))
			if err != nil || !match(strings.TrimSpace(string(name))) {
				continue
			}
			dev := "/dev/" + filepath.Base(d)
			if _, err := os.Stat(dev); err == nil {
				return dev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching video4linux node after 10 s (have %v)", dirs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHWLabVivid(t *testing.T) {
	guestOnly(t)
	load(t, "vivid", "n_devs=1", "node_types=0x1")
	dev := node(t, func(n string) bool { return strings.HasPrefix(n, "vivid-") && strings.HasSuffix(n, "-vid-cap") })
	if dev != "/dev/video0" {
		t.Errorf("vivid's capture node is %s, the lab expects /dev/video0", dev)
	}

	c, err := QueryCap(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %+v", dev, c)
	if c.Card != "vivid" || c.Driver != "vivid" || !c.CanCapture() || c.USB() {
		t.Errorf("vivid: %+v (capture %v, usb %v), want card and driver vivid, capture, not USB", c, c.CanCapture(), c.USB())
	}

	modes, err := Modes(dev)
	if err != nil {
		t.Fatal(err)
	}
	ceiling := map[[2]int]Rate{} // YUYV size -> fastest rate
	for _, m := range modes {
		t.Logf("%-6s %-5s %4dx%-4d %v", m.Format, m.FourCC, m.Width, m.Height, m.Rates)
		if m.Format != Raw {
			t.Errorf("vivid offers raw formats only, got %+v", m)
		}
		if m.FourCC == "YUYV" {
			ceiling[[2]int{m.Width, m.Height}] = m.MaxRate()
		}
	}
	if r, ok := ceiling[[2]int{640, 360}]; !ok || r.FPS() < 30 {
		t.Errorf("YUYV 640x360: fastest %v (listed %v), want >= 30 fps", r, ok)
	}
	found := false
	for _, m := range modes {
		if m.FourCC == "YUYV" && m.Width == 1280 && m.Height == 720 {
			for _, r := range m.Rates {
				found = found || r == (Rate{25, 2})
			}
		}
	}
	if !found {
		t.Error("YUYV 1280x720 at 12.5 fps (25/2) not listed")
	}

	// The ceilings the lab measured with v4l2-ctl (research/hardware-lab.md
	// §4): checked separately so that a difference is easy to tell from a
	// broken ioctl path.
	t.Run("lab ceilings", func(t *testing.T) {
		for size, want := range map[[2]int]Rate{{640, 360}: {40, 1}, {640, 480}: {25, 1}, {1280, 720}: {25, 2}, {1920, 1080}: {5, 1}} {
			if got := ceiling[size]; got.Cmp(want) != 0 {
				t.Errorf("YUYV %dx%d: fastest %v fps, the lab measured %v", size[0], size[1], got, want)
			}
		}
	})
}

const loopbackLabel = "OBS Virtual Camera"

func loadLoopback(t *testing.T) string {
	t.Helper()
	load(t, "v4l2loopback", "devices=1", "video_nr=12", "exclusive_caps=1", "card_label="+loopbackLabel)
	dev := node(t, func(n string) bool { return n == loopbackLabel })
	if dev != "/dev/video12" {
		t.Fatalf("%q is %s; v4l2loopback was loaded with other options than video_nr=12", loopbackLabel, dev)
	}
	return dev
}

// An output-only node (v4l2loopback, exclusive_caps=1, nobody writing) is
// not a camera: auto-detection must not pick it.
func TestHWLabLoopbackWithoutWriter(t *testing.T) {
	guestOnly(t)
	dev := loadLoopback(t)
	c, err := QueryCap(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %+v", dev, c)
	if c.Card != loopbackLabel || c.CanCapture() || c.Caps()&CapVideoOutput == 0 {
		t.Errorf("%s without a writer: %+v (capture %v), want card %q, output only", dev, c, c.CanCapture(), loopbackLabel)
	}
	if _, err := Modes(dev); err == nil || !strings.Contains(err.Error(), "is not a video capture device") {
		t.Errorf("Modes on an output-only node: %v", err)
	}
}

// With a writer streaming MJPEG into it (the lab's "C270" recipe), the
// same node becomes a capture device offering JPEG.
func TestHWLabLoopbackWithWriter(t *testing.T) {
	guestOnly(t)
	dev := loadLoopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	writer := exec.CommandContext(ctx, "gst-launch-1.0", "-q",
		"videotestsrc", "is-live=true", "!", "video/x-raw,width=640,height=480,framerate=15/1",
		"!", "jpegenc", "!", "jpegparse", "!", "capssetter", "caps=image/jpeg,colorimetry=(string)2:4:7:1",
		"!", "v4l2sink", "device="+dev)
	var out strings.Builder
	writer.Stdout, writer.Stderr = &out, &out
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = writer.Wait()
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := QueryCap(dev)
		if err == nil && c.CanCapture() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not capture-capable 30 s after the writer started: %+v %v\nwriter: %s", dev, c, err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	modes, err := Modes(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("modes with a writer: %v", modes)
	if len(modes) == 0 || modes[0].Format != MJPEG || modes[0].Width != 640 || modes[0].Height != 480 {
		t.Errorf("modes %v, want MJPEG 640x480", modes)
	}
}
