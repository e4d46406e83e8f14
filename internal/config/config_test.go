package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/agent"
)

// setEnv clears every MAKERCAST_ variable and sets the given ones. envconfig
// reads the process environment, so these tests do not run in parallel.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, Prefix+"_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func TestDefaults(t *testing.T) {
	setEnv(t, map[string]string{"MAKERCAST_CAMERAS": "test"})
	c, err := Load(os.LookupEnv, "Makerspace-Pi.local")
	if err != nil {
		t.Fatal(err)
	}
	if c.DeviceID != "makerspace-pi" || c.DeviceName != "makercast makerspace-pi" {
		t.Errorf("id %q name %q", c.DeviceID, c.DeviceName)
	}
	if c.MQTTURL != "tcp://127.0.0.1:1883" || c.TopicPrefix != "makercast" || !c.HADiscovery || c.HADiscoveryPref != "homeassistant" {
		t.Errorf("mqtt defaults: %+v", c.Spec)
	}
	if c.VideoWidth != 1280 || c.VideoHeight != 720 || c.VideoFPS != 30 || c.VideoBitrate != 2500 || c.KeyframeInterval != 2*time.Second {
		t.Errorf("video defaults: %+v", c.Spec)
	}
	if c.Audio != "auto" || len(c.DestinationList) != 0 || c.CameraStall != 2*time.Second || c.CameraH264 {
		t.Errorf("audio %q, destinations %v, stall %s, h264 %v", c.Audio, c.DestinationList, c.CameraStall, c.CameraH264)
	}
	cams := c.AgentCameras()
	if len(cams) != 1 || cams[0].Spec.Audio.Source != "test" || cams[0].Spec.Video.KeyframeSec != 2 || c.MaxOutputs != 6 {
		t.Errorf("agent cameras: %+v, max outputs %d", cams, c.MaxOutputs)
	}
	// The agent gives each capture its slots (a destination's each, and the
	// recording's).
	cams[0].Spec.Slots = c.MaxOutputs + 1
	if err := cams[0].Spec.Validate(); err != nil {
		t.Errorf("default capture spec invalid: %v", err)
	}
}

func TestDestinations(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("file-key-1\n"), 0o600)
	setEnv(t, map[string]string{
		"MAKERCAST_CAMERAS":                 "a=test,b=test",
		"MAKERCAST_STREAM_URL":              "rtmp://a.rtmp.youtube.com/live2",
		"MAKERCAST_STREAM_KEY_FILE":         keyFile,
		"MAKERCAST_DESTINATIONS":            "twitch=rtmp://live.twitch.tv/app/live_1_x, club=rtmps://club.example:8443/live, obs=srt://:9000?mode=listener, relay=srt://relay.example:7001?latency=1200",
		"MAKERCAST_DESTINATION_CLUB_KEY":    "hall",
		"MAKERCAST_DESTINATION_CLUB_CAMERA": "b",
		"MAKERCAST_DESTINATION_RELAY_KEY":   "relay-passphrase",
	})
	c, err := Load(os.LookupEnv, "pi")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range c.DestinationList {
		switch o := d.Output.(type) {
		case agent.RTMPOutput:
			got[d.Name] = d.Camera + " " + string(o.Scheme) + " " + o.Host + " " + o.Application + " " + o.Key.Reveal()
		case agent.SRTOutput:
			got[d.Name] = fmt.Sprintf("%s srt %s:%d %s %s %s", d.Camera, o.Host, o.Port, o.Mode, o.Latency, o.Passphrase.Reveal())
		}
	}
	want := map[string]string{
		"main":   "a rtmp a.rtmp.youtube.com live2 file-key-1",
		"twitch": "a rtmp live.twitch.tv app live_1_x",
		"club":   "b rtmps club.example live hall",
		"obs":    "a srt :9000 listener 500ms ",
		"relay":  "a srt relay.example:7001 caller 1.2s relay-passphrase",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"MAKERCAST_VIDEO_FPS": "0"}, "MAKERCAST_VIDEO_FPS"},
		{map[string]string{"MAKERCAST_VIDEO_FPS": "thirty"}, "MAKERCAST_VIDEO_FPS"},
		{map[string]string{"MAKERCAST_VIDEO_WIDTH": "641"}, "MAKERCAST_VIDEO_WIDTH"},
		{map[string]string{"MAKERCAST_KEYFRAME_INTERVAL": "1500ms"}, "MAKERCAST_KEYFRAME_INTERVAL"},
		{map[string]string{"MAKERCAST_MQTT_URL": "mqtt://x:1883"}, "MAKERCAST_MQTT_URL"},
		{map[string]string{"MAKERCAST_DEVICE_ID": "Big Pi"}, "MAKERCAST_DEVICE_ID"},
		{map[string]string{"MAKERCAST_TOPIC_PREFIX": "a/#"}, "MAKERCAST_TOPIC_PREFIX"},
		{map[string]string{"MAKERCAST_CAMERAS": "x=v4l2:/etc/passwd;rm"}, "MAKERCAST_CAMERAS"},
		{map[string]string{"MAKERCAST_CAMERAS": "x=webcam"}, "MAKERCAST_CAMERAS"},
		{map[string]string{"MAKERCAST_AUDIO": "pulse"}, "MAKERCAST_AUDIO"},
		{map[string]string{"MAKERCAST_X264_PRESET": "placebo"}, "MAKERCAST_X264_PRESET"},
		{map[string]string{"MAKERCAST_STREAM_URL": "http://x/live", "MAKERCAST_STREAM_KEY": "k"}, "MAKERCAST_STREAM_URL"},
		{map[string]string{"MAKERCAST_STREAM_KEY": "k"}, "MAKERCAST_STREAM_KEY"},
		{map[string]string{"MAKERCAST_STREAM_URL": "rtmp://x/live", "MAKERCAST_STREAM_KEY": "k", "MAKERCAST_STREAM_KEY_FILE": "/x"}, "MAKERCAST_STREAM_KEY"},
		{map[string]string{"MAKERCAST_DESTINATIONS": "a=rtmp://x/live/k,a=rtmp://y/live/k"}, "MAKERCAST_DESTINATIONS"},
		{map[string]string{"MAKERCAST_DESTINATIONS": "Twitch=rtmp://live.twitch.tv/app/live_123_secret"}, "MAKERCAST_DESTINATIONS"},
		{map[string]string{"MAKERCAST_MQTT_URL": "mqtt://user:hunter2pass@ha:1883"}, "MAKERCAST_MQTT_URL"},
		{map[string]string{"MAKERCAST_DESTINATIONS": "a=rtmp://x/live/k", "MAKERCAST_DESTINATION_A_CAMERA": "nope"}, "MAKERCAST_DESTINATION_A_CAMERA"},
		{map[string]string{"MAKERCAST_DESTINATIONS": "a=rtmp://x/l/1,b=rtmp://x/l/2", "MAKERCAST_MAX_OUTPUTS": "1"}, "MAKERCAST_MAX_OUTPUTS"},
		{map[string]string{"MAKERCAST_LOG_LEVEL": "loud"}, "MAKERCAST_LOG_LEVEL"},
		{map[string]string{"MAKERCAST_CAMERA_STALL_TIMEOUT": "100ms"}, "MAKERCAST_CAMERA_STALL_TIMEOUT"},
		{map[string]string{"MAKERCAST_CAMERAS": "x=v4l2:/dev/video0:yuv"}, "MAKERCAST_CAMERAS"},
		{map[string]string{"MAKERCAST_CAMERAS": "auto", "MAKERCAST_DESTINATIONS": "a=rtmp://x/live/k", "MAKERCAST_DESTINATION_A_CAMERA": "No Such"}, "MAKERCAST_DESTINATION_A_CAMERA"},
		// SRT: a bad mode, query key, passphrase or port is refused naming the variable.
		{map[string]string{"MAKERCAST_DESTINATIONS": "obs=srt://:9000?mode=server"}, "MAKERCAST_DESTINATIONS"},
		{map[string]string{"MAKERCAST_DESTINATIONS": "obs=srt://h:9000?maxbw=0"}, "MAKERCAST_DESTINATIONS"},
		{map[string]string{"MAKERCAST_DESTINATIONS": "obs=srt://h:99999"}, "MAKERCAST_DESTINATIONS"},
		{map[string]string{"MAKERCAST_DESTINATIONS": "obs=srt://h:9000", "MAKERCAST_DESTINATION_OBS_KEY": "live_123_secret"[:9]}, "MAKERCAST_DESTINATIONS"},
		{map[string]string{"MAKERCAST_STREAM_URL": "srt://h:9000", "MAKERCAST_STREAM_KEY": "hunter2pass" + strings.Repeat("x", 70)}, "MAKERCAST_STREAM_URL"},
		{map[string]string{"MAKERCAST_RECORD_SEGMENT": "1s"}, "MAKERCAST_RECORD_SEGMENT"},
		{map[string]string{"MAKERCAST_RECORD_SEGMENT": "3s", "MAKERCAST_KEYFRAME_INTERVAL": "4s"}, "MAKERCAST_RECORD_SEGMENT"},
		{map[string]string{"MAKERCAST_RECORD_MAX_AGE": "30s"}, "MAKERCAST_RECORD_MAX_AGE"},
		{map[string]string{"MAKERCAST_RECORD_MAX_MB": "0"}, "MAKERCAST_RECORD_MAX_MB"},
	}
	for _, c := range cases {
		env := map[string]string{"MAKERCAST_CAMERAS": "test"}
		for k, v := range c.env {
			env[k] = v
		}
		setEnv(t, env)
		_, err := Load(os.LookupEnv, "pi")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to name %s", c.env, err, c.want)
		}
		for _, secret := range []string{"live_123_secret", "hunter2pass"} {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error shows a secret: %v", err)
			}
		}
	}
}

// With auto, nothing is looked for at start-up (the agent finds cameras as
// they come): the config gives the template for the cameras found, and
// destinations without a camera wait for the first one.
func TestAutoCameras(t *testing.T) {
	setEnv(t, map[string]string{
		"MAKERCAST_STREAM_URL": "rtmp://x/live/k", "MAKERCAST_DESTINATIONS": "club=rtmp://y/live/k",
		"MAKERCAST_DESTINATION_CLUB_CAMERA": "hd_pro_webcam_c920", "MAKERCAST_CAMERA_H264": "true",
		"MAKERCAST_CAMERA_STALL_TIMEOUT": "3s",
	})
	c, err := Load(os.LookupEnv, "pi")
	if err != nil {
		t.Fatal(err)
	}
	if !c.AutoCameras || len(c.CameraList) != 0 || len(c.AgentCameras()) != 0 {
		t.Fatalf("auto: %v, cameras %v", c.AutoCameras, c.CameraList)
	}
	tmpl := c.AgentAutoCameras()
	if tmpl == nil || !tmpl.AutoMic || tmpl.Spec.Video.Source != "v4l2" || tmpl.Spec.Video.Input != "auto" ||
		!tmpl.Spec.Video.PreferH264 || tmpl.Spec.StallTimeout != 3*time.Second || tmpl.Spec.Audio.Source != "silence" {
		t.Errorf("template %+v", tmpl)
	}
	cams := map[string]string{}
	for _, d := range c.DestinationList {
		cams[d.Name] = d.Camera
	}
	if cams["main"] != "" || cams["club"] != "hd_pro_webcam_c920" {
		t.Errorf("destination cameras %v", cams)
	}
}

func TestCameraList(t *testing.T) {
	setEnv(t, map[string]string{
		"MAKERCAST_CAMERAS": "a=v4l2:/dev/video0,b=v4l2:/dev/v4l/by-path/platform-fd500000.pcie-usb-0:1.2:1.0-video-index0:mjpeg," +
			"c=v4l2:/dev/v4l/by-id/usb-046d_C270-video-index0,pi=libcamera,t=test",
		"MAKERCAST_AUDIO": "auto",
	})
	c, err := Load(os.LookupEnv, "pi")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cam := range c.AgentCameras() {
		got = append(got, fmt.Sprintf("%s=%s:%s:%s mic=%v audio=%s", cam.Name, cam.Spec.Video.Source, cam.Spec.Video.Device,
			cam.Spec.Video.Input, cam.AutoMic, cam.Spec.Audio.Source))
	}
	want := []string{
		"a=v4l2:/dev/video0:auto mic=true audio=silence",
		"b=v4l2:/dev/v4l/by-path/platform-fd500000.pcie-usb-0:1.2:1.0-video-index0:mjpeg mic=true audio=silence",
		"c=v4l2:/dev/v4l/by-id/usb-046d_C270-video-index0:auto mic=true audio=silence",
		"pi=libcamera:: mic=true audio=silence",
		"t=test:: mic=false audio=test",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("cameras\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.AgentAutoCameras() != nil {
		t.Error("a camera list gave an auto template")
	}
}

// The README's configuration table must list every variable with the
// code's default.
func TestReadmeTableMatchesCode(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(MAKERCAST_[A-Z0-9_]+)` \\| (`([^`]*)`)? ?\\|")
	readme := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		readme[m[1]] = m[3]
	}
	for _, v := range Vars() {
		def, ok := readme[v.Key]
		if !ok {
			t.Errorf("README lacks %s", v.Key)
			continue
		}
		if def != v.Default {
			t.Errorf("README says %s defaults to %q, the code says %q", v.Key, def, v.Default)
		}
		delete(readme, v.Key)
	}
	for k := range readme {
		t.Errorf("README documents %s, which the code does not have", k)
	}
	if len(Vars()) < 20 {
		t.Fatalf("only %d variables found: the parse is broken", len(Vars()))
	}
}

func TestHelpListsEverythingAndNoSecretValue(t *testing.T) {
	setEnv(t, map[string]string{"MAKERCAST_STREAM_KEY": "topsecret-1"})
	var b strings.Builder
	Help(&b)
	for _, v := range Vars() {
		if !strings.Contains(b.String(), v.Key) {
			t.Errorf("-help lacks %s", v.Key)
		}
	}
	if strings.Contains(b.String(), "topsecret-1") {
		t.Error("-help shows a secret")
	}
}
