package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

func decodeJPEG(t *testing.T, b string) (w, h int) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader([]byte(b)))
	if err != nil {
		t.Fatalf("not a JPEG (%d bytes): %v", len(b), err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

func TestSnapshotWhileStreamingLeavesTheStreamAlone(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(nil))
	r.online(t)
	r.goLive(t)
	r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"state":"live"`), 5*time.Second)

	// Watch the server while snapshots are taken: bytes must keep coming.
	stop := make(chan struct{})
	gaps := make(chan string, 1)
	go func() {
		last := int64(-1)
		stalled := time.Now()
		for {
			select {
			case <-stop:
				close(gaps)
				return
			case <-time.After(100 * time.Millisecond):
			}
			st, err := r.rtmp.Stats()
			if err != nil {
				continue
			}
			if b := st["s3cretKEY-42"].BytesIn; b != last {
				last, stalled = b, time.Now()
			} else if time.Since(stalled) > time.Second {
				select {
				case gaps <- fmt.Sprintf("no bytes at the server for %s", time.Since(stalled)):
				default:
				}
			}
		}
	}()
	for i, opts := range []string{`{"transaction":"s1"}`, `{"width":320,"transaction":"s2"}`, `{"width":160,"height":90,"quality":60,"transaction":"s3"}`} {
		mark := r.w.Len()
		r.w.Publish(r.base+"/request/snapshot", []byte(opts), false)
		m, _ := r.w.WaitFrom(mark, r.base+"/response/snapshot", testenv.Contains(fmt.Sprintf(`"transaction":"s%d"`, i+1)), 5*time.Second)
		var resp struct {
			Status string
			Data   struct {
				Topic        string
				Bytes, Width int
				Height       int
			}
		}
		json.Unmarshal([]byte(m.Payload), &resp)
		if resp.Status != "ok" || resp.Data.Topic != r.base+"/camera/test/image" {
			t.Fatalf("response %s", m.Payload)
		}
		img, _ := r.w.WaitFrom(mark, resp.Data.Topic, nil, 5*time.Second)
		w, h := decodeJPEG(t, img.Payload)
		want := [][2]int{{640, 360}, {320, 180}, {160, 90}}[i]
		if w != want[0] || h != want[1] || resp.Data.Bytes != len(img.Payload) || resp.Data.Width != w {
			t.Errorf("snapshot %d: %dx%d, %d bytes (response %s)", i, w, h, len(img.Payload), m.Payload)
		}
	}
	close(stop)
	if g, ok := <-gaps; ok {
		t.Fatal(g)
	}
	last, _ := r.w.Last(r.base + "/destination/main/state")
	if !strings.Contains(last, `"state":"live"`) || !strings.Contains(last, `"reconnects":0`) {
		t.Fatalf("stream disturbed by snapshots: %s", last)
	}
}

func TestSnapshotFromIdleCameraAndBadRequests(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(nil))
	r.online(t)
	// HA's button: PRESS on the set topic.
	mark := r.w.Len()
	r.w.Publish(r.base+"/camera/test/snapshot/set", []byte("PRESS"), false)
	m := r.w.Wait(r.base+"/response/snapshot", testenv.Contains(`"status":"ok"`), 10*time.Second)
	img := r.w.Wait(r.base+"/camera/test/image", nil, 5*time.Second)
	if w, h := decodeJPEG(t, img.Payload); w != 640 || h != 360 {
		t.Errorf("idle snapshot %dx%d: %s", w, h, m.Payload)
	}
	// The camera was opened for the picture only: it never became the
	// running (streaming) capture.
	for _, m := range r.w.Messages()[mark:] {
		if m.Topic == r.base+"/camera/test/state" && !strings.Contains(m.Payload, `"capture":"idle"`) {
			t.Errorf("a snapshot changed the camera's state: %s", m.Payload)
		}
	}
	if r.rtmp.Publishing("s3cretKEY-42") {
		t.Error("a snapshot started the stream")
	}
	for _, c := range []struct{ payload, code string }{
		{`{"width":-5}`, "bad_value"},
		{`{"width":100000}`, "bad_value"},
		{`{"height":1}`, "bad_value"},
		{`{"quality":0}`, "bad_value"},
		{`{"quality":101}`, "bad_value"},
		{`{"width":"big"}`, "bad_payload"},
		{`{"camera":"nope"}`, "unknown_camera"},
	} {
		mark := r.w.Len()
		r.w.Publish(r.base+"/request/snapshot", []byte(c.payload), false)
		m, _ := r.w.WaitFrom(mark, r.base+"/response/snapshot", testenv.Contains(`"status":"error"`), 5*time.Second)
		if !strings.Contains(m.Payload, `"code":"`+c.code+`"`) {
			t.Errorf("%s: %s, want %s", c.payload, m.Payload, c.code)
		}
	}
}

func TestSnapshotFloodIsCoalescedAndStreamKeepsGoing(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(nil))
	r.online(t)
	r.goLive(t)
	before, _ := r.rtmp.Stats()
	mark := r.w.Len()
	const n = 60
	start := time.Now()
	for i := 0; i < n; i++ {
		r.w.Publish(r.base+"/request/snapshot", []byte(fmt.Sprintf(`{"transaction":"f%d"}`, i)), false)
	}
	// Every request gets its answer.
	for i := 0; i < n; i++ {
		r.w.WaitFrom(mark, r.base+"/response/snapshot", testenv.Contains(fmt.Sprintf(`"transaction":"f%d"`, i)), 10*time.Second)
	}
	elapsed := time.Since(start)
	pictures := 0
	for _, m := range r.w.Messages()[mark:] {
		if m.Topic == r.base+"/camera/test/image" {
			pictures++
		}
	}
	// At most one picture per 250 ms (plus the first).
	if limit := int(elapsed/(250*time.Millisecond)) + 2; pictures > limit || pictures == 0 {
		t.Errorf("%d requests in %s made %d pictures, want 1..%d", n, elapsed, pictures, limit)
	}
	t.Logf("%d requests answered in %s with %d pictures", n, elapsed.Round(time.Millisecond), pictures)
	after, _ := r.rtmp.Stats()
	last, _ := r.w.Last(r.base + "/destination/main/state")
	if after["s3cretKEY-42"].BytesIn <= before["s3cretKEY-42"].BytesIn || !strings.Contains(last, `"reconnects":0`) {
		t.Fatalf("stream disturbed: %s", last)
	}
}

// Periodic snapshots keep HA's picture fresh without anyone asking, and the
// newest N are kept on disk.
func TestPeriodicSnapshotsAndRetention(t *testing.T) {
	r := newRig(t)
	media := t.TempDir()
	startAgent(t, r.env(map[string]string{"MAKERCAST_SNAPSHOT_INTERVAL": "1s", "MAKERCAST_SNAPSHOT_KEEP": "2", "MAKERCAST_MEDIA_DIR": media}))
	r.online(t)
	mark := r.w.Len()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := 0
		for _, m := range r.w.Messages()[mark:] {
			if m.Topic == r.base+"/camera/test/image" {
				decodeJPEG(t, m.Payload)
				n++
			}
		}
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d periodic pictures in 15 s", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, err := os.ReadDir(filepath.Join(media, "snapshots", "test"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("kept %v, want the newest 2", names)
	}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(media, "snapshots", "test", e.Name()))
		decodeJPEG(t, string(b))
	}
}
