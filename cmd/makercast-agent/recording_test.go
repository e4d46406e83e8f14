package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// segmentEvent is what camera/<cam>/recording/event says of a closed file.
type segmentEvent struct {
	Event     string  `json:"event"`
	Path      string  `json:"path"`
	Start     string  `json:"start"`
	DurationS float64 `json:"duration_s"`
	Bytes     int64   `json:"bytes"`
	start     time.Time
}

// segments waits until n segment events have come since mark.
func (r *rig) segments(t *testing.T, mark, n int, within time.Duration) []segmentEvent {
	t.Helper()
	topic := r.base + "/camera/test/recording/event"
	deadline := time.Now().Add(within)
	for {
		var out []segmentEvent
		for _, m := range r.w.Messages()[mark:] {
			if m.Topic != topic {
				continue
			}
			var ev segmentEvent
			if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil || ev.Event != "segment" {
				t.Fatalf("recording event %s: %v", m.Payload, err)
			}
			ev.start, _ = time.Parse(time.RFC3339Nano, ev.Start)
			out = append(out, ev)
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d recording segment events within %s, want %d", len(out), within, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSegment probes one file: its length, a keyframe first, 30 fps,
// sound, and (for a complete file) the length its event announced.
func checkSegment(t *testing.T, path string, wantSeconds float64) (seconds float64) {
	t.Helper()
	pr := testenv.FFProbe(t, path)
	if v, ok := pr.Video(); !ok || v.CodecName != "h264" || v.Width != 640 {
		t.Errorf("%s: video %+v", path, v)
	}
	if a, ok := pr.Audio(); !ok || a.CodecName != "aac" {
		t.Errorf("%s: audio %+v", path, a)
	}
	frames, seconds := testenv.VideoFrames(t, path)
	if seconds <= 0 || float64(frames) < 29*seconds || float64(frames) > 31*seconds+1 {
		t.Errorf("%s: %d frames in %.3f s, want 30 fps", path, frames, seconds)
	}
	if at, key := testenv.FirstVideoPacket(t, path); !key || at > 0.01 {
		t.Errorf("%s: the first frame (at %.3f s) is not a keyframe at the start", path, at)
	}
	if wantSeconds > 0 && (seconds < wantSeconds-0.05 || seconds > wantSeconds+0.05) {
		t.Errorf("%s: %.3f s of video, its event said %.3f s", path, seconds, wantSeconds)
	}
	return seconds
}

func recordingFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// Segments are cut at the keyframe after each segment length, every one
// is announced with its path, start and length, plays from a keyframe at
// 30 fps, and each starts where the one before ended.
func TestRecordingSegmentsAndEvents(t *testing.T) {
	r := newRig(t)
	media := t.TempDir()
	startAgent(t, r.env(map[string]string{"MAKERCAST_MEDIA_DIR": media, "MAKERCAST_RECORD_SEGMENT": "2s"}))
	r.online(t)
	r.w.Wait(r.base+"/camera/test/recording", testenv.Contains(`"state":"OFF"`, `"status":"idle"`), 5*time.Second)
	dir := filepath.Join(media, "recordings", "test")
	mark := r.w.Len()
	r.w.Publish(r.base+"/camera/test/recording/set", []byte("ON"), false)
	r.w.WaitFrom(mark, r.base+"/response/recording", testenv.Contains(`"status":"ok"`), 5*time.Second)
	r.w.WaitFrom(mark, r.base+"/camera/test/recording", testenv.Contains(`"state":"ON"`, `"status":"recording"`, `"file":"`+dir+`/`), 10*time.Second)
	r.segments(t, mark, 3, 20*time.Second)
	r.w.WaitFrom(mark, r.base+"/camera/test/recording", testenv.Contains(`"segments":3`), 5*time.Second)
	r.w.Publish(r.base+"/camera/test/recording/set", []byte("OFF"), false)
	r.w.WaitFrom(mark, r.base+"/camera/test/recording", testenv.Contains(`"state":"OFF"`, `"status":"idle"`), 5*time.Second)
	r.w.WaitFrom(mark, r.base+"/camera/test/state", testenv.Contains(`"capture":"idle"`), 5*time.Second)
	// Every file is announced, the last one closed by OFF too.
	evs := r.segments(t, mark, len(recordingFiles(t, dir)), 5*time.Second)
	if r.rtmp.Publishing("s3cretKEY-42") {
		t.Error("recording started the stream")
	}
	files := recordingFiles(t, dir)
	if len(files) < 4 || len(files) != len(evs) {
		t.Fatalf("files %v, %d segments announced, want at least 4", files, len(evs))
	}
	for i, ev := range evs {
		if ev.Path != files[i] || ev.Bytes <= 0 {
			t.Errorf("event %d %+v, file %s", i, ev, files[i])
		}
		if i < len(evs)-1 && (ev.DurationS < 1.9 || ev.DurationS > 2.1) {
			t.Errorf("segment %d is %.3f s, want 2 s (cut at the keyframe after 2 s)", i, ev.DurationS)
		}
		checkSegment(t, ev.Path, ev.DurationS)
		if i > 0 {
			prev := evs[i-1]
			gap := ev.start.Sub(prev.start).Seconds() - prev.DurationS
			if gap < -0.05 || gap > 0.05 {
				t.Errorf("segment %d starts %.3f s after the end of segment %d, want them back to back", i, gap, i-1)
			}
		}
	}
}

// Retention by size: the oldest segments go first, and what stays is
// within MAKERCAST_RECORD_MAX_MB.
func TestRecordingRetentionDeletesOldestFirst(t *testing.T) {
	r := newRig(t)
	media := t.TempDir()
	// 2000 kbit/s: about 0.5 MB a 2 s segment; 1 MiB holds two.
	startAgent(t, r.env(map[string]string{"MAKERCAST_MEDIA_DIR": media, "MAKERCAST_RECORD_SEGMENT": "2s",
		"MAKERCAST_RECORD_MAX_MB": "1", "MAKERCAST_VIDEO_BITRATE": "2000"}))
	r.online(t)
	mark := r.w.Len()
	r.w.Publish(r.base+"/request/recording", []byte(`{"camera":"test","state":"ON"}`), false)
	evs := r.segments(t, mark, 5, 25*time.Second)
	r.w.Publish(r.base+"/camera/test/recording/set", []byte("OFF"), false)
	r.w.WaitFrom(mark, r.base+"/camera/test/state", testenv.Contains(`"capture":"idle"`), 5*time.Second)
	evs = r.segments(t, mark, len(evs)+1, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // the retention run after the last segment
	files := recordingFiles(t, filepath.Join(media, "recordings", "test"))
	var kept []string
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
		kept = append(kept, f)
	}
	var announced []string
	for _, ev := range evs {
		announced = append(announced, ev.Path)
	}
	if len(kept) == 0 || len(kept) >= len(announced) || !strings.HasSuffix(strings.Join(announced, "\n"), strings.Join(kept, "\n")) {
		t.Fatalf("kept %v of %v: want the newest ones, the oldest deleted", kept, announced)
	}
	if total > 1<<20 {
		t.Errorf("recordings take %d bytes, more than MAKERCAST_RECORD_MAX_MB=1", total)
	}
	for _, f := range kept {
		checkSegment(t, f, 0)
	}
}

// kill -9 in the middle of a segment: every finished segment and the one
// cut short play, the cut one losing at most about the last fragment
// (1 s); started again, the agent records on.
func TestRecordingSurvivesKill9(t *testing.T) {
	r := newRig(t)
	media := t.TempDir()
	env := r.env(map[string]string{"MAKERCAST_MEDIA_DIR": media, "MAKERCAST_RECORD_SEGMENT": "2s"})
	a := startAgent(t, env)
	r.online(t)
	mark := r.w.Len()
	r.w.Publish(r.base+"/camera/test/recording/set", []byte("ON"), false)
	evs := r.segments(t, mark, 2, 15*time.Second)
	// 1.6 s into the third file.
	dir := filepath.Join(media, "recordings", "test")
	open, _ := r.w.WaitFrom(mark, r.base+"/camera/test/recording", func(p string) bool {
		return strings.Contains(p, `"segments":2`) && strings.Contains(p, `"file":"`+dir)
	}, 5*time.Second)
	var st struct{ File string }
	_ = json.Unmarshal([]byte(open.Payload), &st)
	third := evs[1].start.Add(time.Duration(evs[1].DurationS * float64(time.Second)))
	time.Sleep(time.Until(third.Add(1600 * time.Millisecond)))
	killed := time.Now()
	_ = a.cmd.Process.Kill()
	<-a.done
	a.done <- nil
	files := recordingFiles(t, dir)
	if len(files) != 3 || files[2] != st.File {
		t.Fatalf("files after kill -9: %v, want the 2 segments and the open one %s", files, st.File)
	}
	for i, ev := range evs {
		checkSegment(t, ev.Path, ev.DurationS)
		if ev.Path != files[i] {
			t.Errorf("segment %d: %s, file %s", i, ev.Path, files[i])
		}
	}
	got := checkSegment(t, files[2], 0)
	lost := killed.Sub(third).Seconds() - got
	t.Logf("the file cut short by kill -9 plays %.3f s of the %.3f s recorded: %.3f s lost", got, killed.Sub(third).Seconds(), lost)
	if lost > 1.25 {
		t.Errorf("%.3f s lost to kill -9, want at most the last fragment (1 s) and the pipeline's latency", lost)
	}
	// Resumed: the recording goes on after a restart.
	mark = r.w.Len()
	startAgent(t, env)
	r.w.WaitFrom(mark, r.base+"/camera/test/recording", testenv.Contains(`"state":"ON"`, `"status":"recording"`), 15*time.Second)
	r.segments(t, mark, 1, 10*time.Second)
}
