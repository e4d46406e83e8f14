//go:build hwlab

package hwlab

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// The scenarios of the issue "Real cameras and microphones", each against
// the five faults the first lab run found:
//
//  1. auto assumed MJPEG for every camera (a raw webcam never started):
//     TestGuestAutoRawCamera;
//  2. the exact configured mode was asked for (a C270 never started at
//     720p30): TestGuestC270ClosestMode;
//  3. output-only nodes were taken for cameras: TestGuestDetection;
//  4. a stalled camera stayed "live" at 0 fps: TestGuestStall;
//  5. cameras plugged in later never appeared, and a renumbered microphone
//     was not followed: TestGuestHotplug, TestGuestMicRenumbered.
//
// Cameras here are found with MAKERCAST_CAMERAS=auto, as a new user's Pi
// would, and named after their card: vivid is "vivid", the loopback fakes
// "fake_c270" and "fake_c920".

// camState is the agent's retained camera state.
type camState struct {
	Stream    string `json:"stream"`
	Capture   string `json:"capture"`
	Encoder   string `json:"encoder"`
	LastError string `json:"last_error"`
	PluggedIn bool   `json:"plugged_in"`
	Device    string `json:"device"`
	Mode      string `json:"mode"`
	Mic       string `json:"mic"`
}

func parseCam(t *testing.T, payload string) camState {
	t.Helper()
	var s camState
	if err := json.Unmarshal([]byte(payload), &s); err != nil {
		t.Fatalf("camera state %q: %v", payload, err)
	}
	return s
}

// autoAgent starts nginx-rtmp and the agent with MAKERCAST_CAMERAS=auto
// and one destination (bound to the first camera found), plus env.
func autoAgent(t *testing.T, env map[string]string) (*Agent, *testenv.RTMPServer) {
	t.Helper()
	rtmp := testenv.StartRTMP(t)
	full := map[string]string{
		"MAKERCAST_CAMERAS":    "auto",
		"MAKERCAST_STREAM_URL": rtmp.URL(),
		"MAKERCAST_STREAM_KEY": streamKey,
	}
	for k, v := range env {
		full[k] = v
	}
	a := StartAgent(t, full)
	a.WaitOnline(30 * time.Second)
	return a, rtmp
}

// goLive switches camera cam on and waits for the server to have the stream.
func goLive(t *testing.T, a *Agent, rtmp *testenv.RTMPServer, cam string) time.Duration {
	t.Helper()
	a.Publish("camera/"+cam+"/stream/set", "ON")
	a.MQTT.Wait(a.Topic("response/stream"), testenv.Contains(`"status":"ok"`), 10*time.Second)
	return rtmp.WaitPublishing(t, streamKey, 90*time.Second)
}

// Fault 1: a raw-only webcam (vivid) found by auto detection goes live;
// the agent picks a raw mode vivid offers at the configured rate.
func TestGuestAutoRawCamera(t *testing.T) {
	RequireGuest(t)
	Modprobe(t, "vivid", "n_devs=1", "node_types=0x1")
	a, rtmp := autoAgent(t, map[string]string{"MAKERCAST_AUDIO": "none"})
	m := a.MQTT.Wait(a.Topic("camera/vivid/state"), testenv.Contains(`"plugged_in":true`), 20*time.Second)
	if s := parseCam(t, m.Payload); s.Device != "/dev/video0" {
		t.Errorf("vivid found as %+v", s)
	}
	d := goLive(t, a, rtmp, "vivid")
	Bench("stream ON → live at the server (vivid found by auto)", "—", d, "640x360@15")
	m = a.MQTT.Wait(a.Topic("camera/vivid/state"), testenv.Contains(`"capture":"running"`), 30*time.Second)
	s := parseCam(t, m.Payload)
	if !strings.HasPrefix(s.Mode, "raw 640x360@15") {
		t.Errorf("mode %q, want vivid's raw 640x360 at 15 fps", s.Mode)
	}
	if v, ok := Probe(t, rtmp.URL()+"/"+streamKey).Video(); !ok || v.Width != 640 || v.Height != 360 || v.CodecName != "h264" {
		t.Errorf("video at the server %+v (found %v)", v, ok)
	}

	// Asked for something vivid cannot do (its H.264), the camera says
	// what it offers instead.
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	b := StartAgent(t, map[string]string{"MAKERCAST_CAMERAS": "cam=v4l2:/dev/video0:h264", "MAKERCAST_AUDIO": "none",
		"MAKERCAST_STREAM_URL": rtmp.URL(), "MAKERCAST_STREAM_KEY": streamKey})
	b.WaitOnline(30 * time.Second)
	b.Publish("camera/cam/stream/set", "ON")
	m = b.MQTT.Wait(b.Topic("camera/cam/state"), testenv.Contains(`"capture":"error"`), 30*time.Second)
	if s := parseCam(t, m.Payload); !strings.Contains(s.LastError, "offers no H.264") || !strings.Contains(s.LastError, "YUYV 640x360") {
		t.Errorf("impossible request answered with %q; want it to say what vivid offers", s.LastError)
	}
}

// Fault 2: a C270-like camera (MJPEG 640x480 at 15 fps only) with the
// agent asking for 1280x720 at 30: opened in its only mode, scaled and
// rate-adapted, so the server gets 1280x720 at 30.
func TestGuestC270ClosestMode(t *testing.T) {
	RequireGuest(t)
	Modprobe(t, "v4l2loopback", "devices=1", "video_nr=10", "exclusive_caps=1", "card_label=Fake C270")
	StartLoopbackWriter(t, "/dev/video10", "mjpeg", 640, 480, 15)
	a, rtmp := autoAgent(t, map[string]string{
		"MAKERCAST_VIDEO_WIDTH": "1280", "MAKERCAST_VIDEO_HEIGHT": "720", "MAKERCAST_VIDEO_FPS": "30",
		"MAKERCAST_VIDEO_BITRATE": "1500", "MAKERCAST_AUDIO": "none",
	})
	a.MQTT.Wait(a.Topic("camera/fake_c270/state"), testenv.Contains(`"plugged_in":true`), 20*time.Second)
	goLive(t, a, rtmp, "fake_c270")
	m := a.MQTT.Wait(a.Topic("camera/fake_c270/state"), testenv.Contains(`"capture":"running"`), 30*time.Second)
	if s := parseCam(t, m.Payload); s.Mode != "mjpeg 640x480@15 → 1280x720@30" {
		t.Errorf("mode %q, want mjpeg 640x480@15 → 1280x720@30", s.Mode)
	}
	v, ok := Probe(t, rtmp.URL()+"/"+streamKey).Video()
	if !ok || v.Width != 1280 || v.Height != 720 || v.AvgFrameRate != "30/1" && v.RFrameRate != "30/1" {
		t.Errorf("video at the server %+v (found %v), want 1280x720 at 30", v, ok)
	}
	if !strings.Contains(a.Logs(), "mjpeg 640x480@15") {
		t.Errorf("the chosen mode is not in the log")
	}
}

// A C920-like camera with its own H.264, with MAKERCAST_CAMERA_H264: sent
// as it comes, no encoder in the agent.
func TestGuestC920Passthrough(t *testing.T) {
	RequireGuest(t)
	Modprobe(t, "v4l2loopback", "devices=1", "video_nr=11", "exclusive_caps=1", "card_label=Fake C920")
	StartLoopbackWriter(t, "/dev/video11", "h264", 640, 480, 15)
	a, rtmp := autoAgent(t, map[string]string{"MAKERCAST_CAMERA_H264": "true", "MAKERCAST_AUDIO": "none"})
	a.MQTT.Wait(a.Topic("camera/fake_c920/state"), testenv.Contains(`"plugged_in":true`), 20*time.Second)
	goLive(t, a, rtmp, "fake_c920")
	m := a.MQTT.Wait(a.Topic("camera/fake_c920/state"), testenv.Contains(`"capture":"running"`), 30*time.Second)
	s := parseCam(t, m.Payload)
	if s.Encoder != "camera" || !strings.HasPrefix(s.Mode, "h264 640x480") {
		t.Errorf("camera state %+v, want the camera's own H.264 (encoder camera, mode h264 640x480)", s)
	}
	// No encoder to ask for a keyframe: a player sees the video from the
	// camera's next one (a second here), so it may take a second probe.
	var v testenv.ProbeStream
	ok := false
	for try := 0; try < 3 && !ok; try++ {
		v, ok = Probe(t, rtmp.URL()+"/"+streamKey).Video()
	}
	if !ok || v.CodecName != "h264" || v.Width != 640 || v.Height != 480 {
		t.Errorf("video at the server %+v (found %v), want the camera's 640x480 H.264", v, ok)
	}
}

// Fault 3 and detection: vivid, a loopback with a writer (a camera), one
// without (an output-only "OBS Virtual Camera": not a camera) and one
// labelled like the Pi's camera receiver (unicam: the Pi camera, driven by
// libcamera); two microphones (two snd-dummy cards). Every camera appears
// on MQTT and in Home Assistant discovery, the output-only node nowhere,
// and each camera without a microphone of its own gets a different one.
// (Cameras and microphones on the same USB device are paired by bus; the
// lab has no USB webcam, so that rule is tested with a Pi's sysfs layout in
// internal/devices and agent.)
func TestGuestDetection(t *testing.T) {
	RequireGuest(t)
	Modprobe(t, "vivid", "n_devs=1", "node_types=0x1")
	Modprobe(t, "v4l2loopback", "devices=3", "video_nr=10,11,12", "exclusive_caps=1,1,1",
		"card_label=Fake C270,OBS Virtual Camera,unicam")
	Modprobe(t, "snd-dummy", "enable=1,1", "id=MicA,MicB")
	StartLoopbackWriter(t, "/dev/video10", "mjpeg", 640, 480, 15)
	a, _ := autoAgent(t, nil)
	disc := testenv.Watch(t, a.Env["MAKERCAST_MQTT_URL"], "homeassistant/#")

	states := map[string]camState{}
	for _, cam := range []string{"vivid", "fake_c270", "picam"} {
		m := a.MQTT.Wait(a.Topic("camera/"+cam+"/state"), testenv.Contains(`"plugged_in":true`), 20*time.Second)
		states[cam] = parseCam(t, m.Payload)
		disc.Wait("homeassistant/switch/makercast_lab/"+cam+"_stream/config", testenv.Contains(`"command_topic"`), 10*time.Second)
	}
	t.Logf("cameras: %+v", states)
	for _, m := range append(a.MQTT.Messages(), disc.Messages()...) {
		if strings.Contains(m.Topic, "obs_virtual") || strings.Contains(m.Payload, "/dev/video11") {
			t.Errorf("the output-only loopback was taken for a camera: %s %s", m.Topic, m.Payload)
		}
	}
	if states["vivid"].Device != "/dev/video0" || states["fake_c270"].Device != "/dev/video10" || states["picam"].Device != "libcamera" {
		t.Errorf("devices: %+v", states)
	}
	// Three cameras, two microphones: one each for the first two (picam
	// first, then by bus), silence for the third.
	mics := map[string]bool{}
	for _, cam := range []string{"picam", "fake_c270", "vivid"} {
		mics[states[cam].Mic] = true
	}
	if states["picam"].Mic != "plughw:CARD=MicA,DEV=0" || states["fake_c270"].Mic != "plughw:CARD=MicB,DEV=0" || states["vivid"].Mic != "" {
		t.Errorf("microphones: picam %q, fake_c270 %q, vivid %q; want MicA, MicB, none", states["picam"].Mic, states["fake_c270"].Mic, states["vivid"].Mic)
	}
}

// Fault 4: the camera stalls (its writer dies: frames stop, no error). The
// camera reports it within the stall timeout, its destination follows, and
// when frames come back it is live again by itself. The camera is
// configured by its node here, so that only the stall watchdog can notice
// (a found camera whose loopback node turns output-only would also be seen
// going away by the device watcher).
func TestGuestStall(t *testing.T) {
	RequireGuest(t)
	Modprobe(t, "v4l2loopback", "devices=1", "video_nr=10", "exclusive_caps=1", "card_label=Fake C270")
	w := StartLoopbackWriter(t, "/dev/video10", "mjpeg", 640, 480, 15)
	a, rtmp := autoAgent(t, map[string]string{"MAKERCAST_CAMERAS": "cam=v4l2:/dev/video10", "MAKERCAST_AUDIO": "none"})
	goLive(t, a, rtmp, "cam")
	a.MQTT.Wait(a.Topic("destination/main/state"), testenv.Contains(`"state":"live"`), 30*time.Second)

	from := a.MQTT.Len()
	stall := time.Now()
	w.Kill()
	m, _ := a.MQTT.WaitFrom(from, a.Topic("camera/cam/state"), testenv.Contains(`"capture":"error"`, `stalled`), 15*time.Second)
	Bench("stall → reported on MQTT", "≤ 2.5 s", m.At.Sub(stall), "loopback writer killed; stall timeout 2 s")
	a.MQTT.WaitFrom(from, a.Topic("destination/main/state"), testenv.Contains(`"state":"retrying"`), 10*time.Second)
	if d := m.At.Sub(stall); d > 5*time.Second {
		t.Errorf("stall reported %s after the frames stopped", d)
	}

	from = a.MQTT.Len()
	back := time.Now()
	w.Start()
	rtmp.WaitPublishing(t, streamKey, 60*time.Second)
	a.MQTT.WaitFrom(from, a.Topic("destination/main/state"), testenv.Contains(`"state":"live"`), 60*time.Second)
	Bench("frames back → live again", "—", time.Since(back), "writer restarted")
}

// Fault 5 and hot-plug: the agent starts with no camera at all; vivid is
// loaded (a camera plugged in) and appears on MQTT and in Home Assistant;
// its destination (waiting for the first camera) goes live with the
// microphone it found; unplugged while live it reports at once, and
// plugged back in it is live again within seconds.
func TestGuestHotplug(t *testing.T) {
	RequireGuest(t)
	Modprobe(t, "snd-aloop")
	tone := PlayTone(t, "hw:Loopback,1,0") // heard on Loopback device 0
	a, rtmp := autoAgent(t, nil)
	disc := testenv.Watch(t, a.Env["MAKERCAST_MQTT_URL"], "homeassistant/#")

	plug := time.Now()
	Modprobe(t, "vivid", "n_devs=1", "node_types=0x1")
	m := a.MQTT.Wait(a.Topic("camera/vivid/state"), testenv.Contains(`"plugged_in":true`), 20*time.Second)
	Bench("camera plugged in → on MQTT", "a few seconds", m.At.Sub(plug), "modprobe vivid; kernel uevent")
	disc.Wait("homeassistant/switch/makercast_lab/vivid_stream/config", testenv.Contains(`"command_topic"`), 10*time.Second)
	if s := parseCam(t, m.Payload); s.Mic != "plughw:CARD=Loopback,DEV=0" {
		t.Errorf("microphone %q, want the loopback (by card name)", s.Mic)
	}
	a.MQTT.Wait(a.Topic("destination/main/state"), testenv.Contains(`"camera":"vivid"`), 10*time.Second)
	goLive(t, a, rtmp, "vivid")
	url := rtmp.URL() + "/" + streamKey
	if db := MeanVolume(t, url, 2*time.Second); db < -30 {
		t.Errorf("audio at the server %.1f dB, want the tone", db)
	}

	from := a.MQTT.Len()
	unplug := time.Now()
	Unbind(t, "vivid", "vivid.0")
	m, _ = a.MQTT.WaitFrom(from, a.Topic("camera/vivid/state"), testenv.Contains(`"capture":"error"`), 15*time.Second)
	Bench("unplug → error on MQTT", "≤ 1 s", m.At.Sub(unplug), "auto camera, vivid.0 unbound while live")
	a.MQTT.WaitFrom(from, a.Topic("camera/vivid/state"), testenv.Contains(`"plugged_in":false`, `camera unplugged`), 10*time.Second)
	a.MQTT.WaitFrom(from, a.Topic("destination/main/state"), testenv.Contains(`"state":"retrying"`, `unplugged`), 10*time.Second)
	// While it is away nothing is retried (no error storm in the log).
	tries := strings.Count(a.Logs(), "camera failed")
	time.Sleep(3 * time.Second)
	if n := strings.Count(a.Logs(), "camera failed") - tries; n > 0 {
		t.Errorf("an unplugged camera was retried %d times in 3 s", n)
	}

	replug := time.Now()
	Bind(t, "vivid", "vivid.0")
	rtmp.WaitPublishing(t, streamKey, 60*time.Second)
	Bench("replug → live at the server", "≤ 3 s", time.Since(replug), "auto camera; uevent, no backoff")
	if db := MeanVolume(t, url, 2*time.Second); db < -30 {
		t.Errorf("audio after replug %.1f dB, want the tone", db)
	}
	_ = tone
}

// Fault 5, the microphone: a camera's microphone is addressed by card name,
// and the camera keeps it: pulled out while live, another card taking its
// number, plugged back in (now card 1), it is the one heard again.
func TestGuestMicRenumbered(t *testing.T) {
	RequireGuest(t)
	Modprobe(t, "vivid", "n_devs=1", "node_types=0x1")
	Modprobe(t, "snd-aloop") // card 0
	tone := PlayTone(t, "hw:Loopback,1,0")
	a, rtmp := autoAgent(t, nil)
	m := a.MQTT.Wait(a.Topic("camera/vivid/state"), testenv.Contains(`"mic":"plughw:CARD=Loopback,DEV=0"`), 20*time.Second)
	t.Logf("before: %s", m.Payload)
	goLive(t, a, rtmp, "vivid")
	url := rtmp.URL() + "/" + streamKey
	if db := MeanVolume(t, url, 2*time.Second); db < -30 {
		t.Fatalf("audio at the server %.1f dB, want the tone", db)
	}

	from := a.MQTT.Len()
	Unbind(t, "snd_aloop", "snd_aloop.0")
	Modprobe(t, "snd-dummy") // takes card 0
	Bind(t, "snd_aloop", "snd_aloop.0")
	cards := Run(t, "cat", "/proc/asound/cards")
	if !strings.Contains(cards, " 0 [Dummy") || !strings.Contains(cards, " 1 [Loopback") {
		t.Fatalf("the cards were not renumbered:\n%s", cards)
	}
	tone.Kill() // it failed with the card
	tone.Start()
	a.MQTT.WaitFrom(from, a.Topic("camera/vivid/state"), testenv.Contains(`"capture":"running"`, `"mic":"plughw:CARD=Loopback,DEV=0"`), 60*time.Second)
	rtmp.WaitPublishing(t, streamKey, 60*time.Second)
	var db float64
	WaitFor(t, "the tone at the server again", 60*time.Second, func() bool {
		db = MeanVolume(t, url, 2*time.Second)
		return db > -30
	})
	t.Logf("after renumbering: %s", fmt.Sprintf("%.1f dB", db))
}
