package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

type tlEvent struct {
	Event     string  `json:"event"`
	Path      string  `json:"path"`
	Frames    int     `json:"frames"`
	DurationS float64 `json:"duration_s"`
	Error     string  `json:"error"`
}

func countFrames(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// A 3D printer's layer changes drive the frames (manual mode), while the
// camera also streams; stopping makes an MP4 with exactly those frames.
func TestTimelapseOneFramePerCommand(t *testing.T) {
	r := newRig(t)
	media := t.TempDir()
	startAgent(t, r.env(map[string]string{"MAKERCAST_MEDIA_DIR": media, "MAKERCAST_SNAPSHOT_MIN_INTERVAL": "50ms"}))
	r.online(t)
	r.goLive(t)

	r.w.Publish(r.base+"/camera/test/timelapse/set", []byte(`{"state":"ON","mode":"manual"}`), false)
	r.w.Wait(r.base+"/camera/test/timelapse", testenv.Contains(`"state":"ON"`, `"mode":"manual"`), 5*time.Second)
	const n = 8
	for i := 1; i <= n; i++ {
		r.w.Publish(r.base+"/camera/test/timelapse/frame", []byte("layer"), false)
		r.w.Wait(r.base+"/camera/test/timelapse", testenv.Contains(fmt.Sprintf(`"frames":%d`, i)), 5*time.Second)
	}
	mark := r.w.Len()
	r.w.Publish(r.base+"/camera/test/timelapse/set", []byte("OFF"), false)
	m, _ := r.w.WaitFrom(mark, r.base+"/camera/test/timelapse/event", nil, 30*time.Second)
	var ev tlEvent
	json.Unmarshal([]byte(m.Payload), &ev)
	if ev.Event != "done" || ev.Frames != n || ev.DurationS != float64(n)/25 {
		t.Fatalf("event %s", m.Payload)
	}
	if got := countFrames(t, ev.Path); got != fmt.Sprintf("h264,%d", n) {
		t.Fatalf("video has %s, want h264,%d", got, n)
	}
	if !strings.HasPrefix(ev.Path, media) {
		t.Errorf("video outside the media directory: %s", ev.Path)
	}
	// Only the video is left: no frames, no part files (state/ is the
	// agent's own, MAKERCAST_RESUME).
	filepath.Walk(media, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && p != ev.Path && p != filepath.Join(media, "state", "resume.json") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	if !r.rtmp.Publishing("s3cretKEY-42") {
		t.Error("the stream stopped during the timelapse")
	}
}

// Interval mode from an idle camera: frames come by themselves.
func TestTimelapseInterval(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(nil))
	r.online(t)
	r.w.Publish(r.base+"/request/timelapse", []byte(`{"state":"ON","interval":1,"transaction":"tl"}`), false)
	r.w.Wait(r.base+"/response/timelapse", testenv.Contains(`"status":"ok"`, `"transaction":"tl"`), 5*time.Second)
	r.w.Wait(r.base+"/camera/test/timelapse", testenv.Contains(`"frames":3`), 15*time.Second)
	mark := r.w.Len()
	r.w.Publish(r.base+"/camera/test/timelapse/set", []byte("OFF"), false)
	m, _ := r.w.WaitFrom(mark, r.base+"/camera/test/timelapse/event", nil, 30*time.Second)
	var ev tlEvent
	json.Unmarshal([]byte(m.Payload), &ev)
	if ev.Event != "done" || ev.Frames < 3 {
		t.Fatalf("event %s", m.Payload)
	}
	if got := countFrames(t, ev.Path); got != fmt.Sprintf("h264,%d", ev.Frames) {
		t.Fatalf("video has %s, want %d frames", got, ev.Frames)
	}
}

func TestTimelapseDiskLimitAndBadInput(t *testing.T) {
	r := newRig(t)
	media := t.TempDir()
	startAgent(t, r.env(map[string]string{"MAKERCAST_MEDIA_DIR": media, "MAKERCAST_MEDIA_MAX_MB": "1", "MAKERCAST_SNAPSHOT_MIN_INTERVAL": "50ms",
		"MAKERCAST_SNAPSHOT_KEEP_WARM": "true", "MAKERCAST_VIDEO_WIDTH": "1280", "MAKERCAST_VIDEO_HEIGHT": "720"}))
	r.online(t)
	for _, c := range []struct{ topic, payload, code string }{
		{"/request/timelapse", `{"state":"ON","interval":0}`, "bad_value"},
		{"/request/timelapse", `{"state":"ON","interval":-3}`, "bad_value"},
		{"/request/timelapse", `{"state":"ON","mode":"sometimes"}`, "bad_value"},
		{"/request/timelapse", `{"state":"ON","mode":"manual","interval":5}`, "bad_value"},
		{"/request/timelapse", `{"camera":"nope","state":"ON"}`, "unknown_camera"},
		{"/camera/test/timelapse/frame", `x`, "conflict"},
	} {
		mark := r.w.Len()
		r.w.Publish(r.base+c.topic, []byte(c.payload), false)
		name := "timelapse"
		if strings.HasSuffix(c.topic, "frame") {
			name = "timelapse_frame"
		}
		m, _ := r.w.WaitFrom(mark, r.base+"/response/"+name, testenv.Contains(`"status":"error"`), 5*time.Second)
		if !strings.Contains(m.Payload, `"code":"`+c.code+`"`) {
			t.Errorf("%s: %s, want %s", c.payload, m.Payload, c.code)
		}
	}
	// 720p frames of the test pattern at quality 90 are ~100 kB: 1 MiB
	// fills up within a dozen frames.
	r.w.Publish(r.base+"/camera/test/timelapse/set", []byte(`{"state":"ON","mode":"manual"}`), false)
	r.w.Wait(r.base+"/camera/test/timelapse", testenv.Contains(`"state":"ON"`), 5*time.Second)
	mark := r.w.Len()
	for i := 0; i < 80; i++ {
		r.w.Publish(r.base+"/camera/test/timelapse/frame", nil, false)
		time.Sleep(60 * time.Millisecond)
	}
	m, _ := r.w.WaitFrom(mark, r.base+"/camera/test/timelapse/event", testenv.Contains(`"event":"error"`), 10*time.Second)
	if !strings.Contains(m.Payload, "size limit") {
		t.Errorf("error event does not say why: %s", m.Payload)
	}
	// What was taken is still made into a video; no part file is left.
	m, _ = r.w.WaitFrom(mark, r.base+"/camera/test/timelapse/event", testenv.Contains(`"event":"done"`), 30*time.Second)
	var ev tlEvent
	json.Unmarshal([]byte(m.Payload), &ev)
	if got := countFrames(t, ev.Path); got != fmt.Sprintf("h264,%d", ev.Frames) || ev.Frames < 5 {
		t.Fatalf("video %s, event %s", got, m.Payload)
	}
	filepath.Walk(media, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".part") {
			t.Errorf("half-written file left: %s", p)
		}
		return nil
	})
}

// The agent stops (an update, a power cut) in the middle of a timelapse:
// when it starts again it makes the video of the frames it had.
func TestInterruptedTimelapseIsFinishedOnRestart(t *testing.T) {
	r := newRig(t)
	media := t.TempDir()
	env := r.env(map[string]string{"MAKERCAST_MEDIA_DIR": media, "MAKERCAST_SNAPSHOT_MIN_INTERVAL": "50ms"})
	a := startAgent(t, env)
	r.online(t)
	r.w.Publish(r.base+"/camera/test/timelapse/set", []byte(`{"state":"ON","mode":"manual"}`), false)
	for i := 1; i <= 3; i++ {
		r.w.Publish(r.base+"/camera/test/timelapse/frame", nil, false)
		r.w.Wait(r.base+"/camera/test/timelapse", testenv.Contains(fmt.Sprintf(`"frames":%d`, i)), 5*time.Second)
	}
	a.Stop()
	mark := r.w.Len()
	startAgent(t, env)
	m, _ := r.w.WaitFrom(mark, r.base+"/camera/test/timelapse/event", testenv.Contains(`"event":"done"`), 30*time.Second)
	var ev tlEvent
	json.Unmarshal([]byte(m.Payload), &ev)
	if got := countFrames(t, ev.Path); got != "h264,3" {
		t.Fatalf("recovered video has %s, want 3 frames (%s)", got, m.Payload)
	}
}
