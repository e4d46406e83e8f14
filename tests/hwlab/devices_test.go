//go:build hwlab

package hwlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGuestDevices proves the lab itself: the emulated devices load, look
// like the cameras and microphones they stand for, and GStreamer captures
// from each with explicit caps.
func TestGuestDevices(t *testing.T) {
	RequireGuest(t)
	Modprobe(t, "vivid", "n_devs=1", "node_types=0x1")
	Modprobe(t, "v4l2loopback", "devices=2", "video_nr=10,11", "exclusive_caps=1,1", "card_label=Fake C270,Fake C920")
	Modprobe(t, "snd-aloop")
	Modprobe(t, "snd-dummy")

	// What auto-detection reads: names and capture capability.
	for node, want := range map[string]string{"video0": "vivid", "video10": "Fake C270", "video11": "Fake C920"} {
		b, err := os.ReadFile(filepath.Join("/sys/class/video4linux", node, "name"))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s name = %q (%v), want it to contain %q", node, b, err, want)
		}
	}
	if !CanCapture("/dev/video0") {
		t.Errorf("vivid /dev/video0 is not a capture node")
	}
	if CanCapture("/dev/video10") {
		t.Errorf("/dev/video10 captures with no writer; exclusive_caps=1 should make it output-only")
	}
	cards, err := os.ReadFile("/proc/asound/cards")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"Loopback", "Dummy"} {
		if !strings.Contains(string(cards), c) {
			t.Errorf("no %s card in /proc/asound/cards:\n%s", c, cards)
		}
	}

	// Each writer runs only in its subtest: under TCG an x264 writer takes
	// much of a vCPU, and starved readers would measure the emulator.
	t.Run("raw vivid", func(t *testing.T) {
		GstLaunch(t, "v4l2src device=/dev/video0 num-buffers=25 ! video/x-raw,format=YUY2,width=640,height=480,framerate=25/1 ! fakesink")
	})
	t.Run("mjpeg loopback", func(t *testing.T) {
		w := StartLoopbackWriter(t, "/dev/video10", "mjpeg", 640, 480, 15)
		GstLaunch(t, "v4l2src device=/dev/video10 num-buffers=30 ! image/jpeg,width=640,height=480,framerate=15/1 ! jpegdec ! fakesink")
		// a stalled camera: no writer, no capture; then it comes back
		w.Kill()
		WaitFor(t, "/dev/video10 output-only again", 10*time.Second, func() bool { return !CanCapture("/dev/video10") })
		w.Start()
		GstLaunch(t, "v4l2src device=/dev/video10 num-buffers=5 ! image/jpeg,width=640,height=480,framerate=15/1 ! fakesink")
	})
	t.Run("h264 loopback", func(t *testing.T) {
		StartLoopbackWriter(t, "/dev/video11", "h264", 320, 240, 15)
		GstLaunch(t, "v4l2src device=/dev/video11 num-buffers=30 ! video/x-h264,width=320,height=240,framerate=15/1 ! h264parse ! avdec_h264 ! fakesink")
	})
	t.Run("loopback microphone hears the tone", func(t *testing.T) {
		PlayTone(t, "hw:Loopback,0,0")
		wav := filepath.Join(t.TempDir(), "mic.wav")
		GstLaunch(t, "alsasrc device=hw:Loopback,1,0 num-buffers=100 ! audioconvert ! wavenc ! filesink location="+wav)
		if db := MeanVolume(t, wav, 2*time.Second); db < -30 {
			t.Errorf("mean volume captured from hw:Loopback,1,0 = %.1f dB, want the tone (about -9 dB)", db)
		}
	})
	t.Run("dummy microphone", func(t *testing.T) {
		GstLaunch(t, "alsasrc device=hw:Dummy num-buffers=100 ! fakesink")
	})
	t.Run("device monitor", func(t *testing.T) {
		// the loopback nodes are sources only while written to
		StartLoopbackWriter(t, "/dev/video10", "mjpeg", 640, 480, 15)
		StartLoopbackWriter(t, "/dev/video11", "h264", 320, 240, 15)
		out := Run(t, "gst-device-monitor-1.0", "Video/Source", "Audio/Source")
		for _, want := range []string{"vivid", "Fake C270", "Fake C920", "Loopback", "Dummy"} {
			if !strings.Contains(out, want) {
				t.Errorf("gst-device-monitor-1.0 does not list %q as a source:\n%s", want, out)
			}
		}
	})
}
