package media

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
	"github.com/makercast/makercast/internal/testenv"
)

func prop(t *testing.T, g graph.Graph, elem, name string) string {
	t.Helper()
	e, ok := g.Find(elem)
	if !ok {
		t.Fatalf("no element %s in %s", elem, g)
	}
	for _, p := range e.Props {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

func TestRTMPGraphKeepsTheOutputInTypedProperties(t *testing.T) {
	g := RTMPGraph(agent.RTMPOutput{Scheme: agent.RTMPS, Host: "live-api-s.facebook.com", Port: 443, Application: "rtmp", Key: "FB-1?a=b&c=d"})
	if prop(t, g, "sink", "scheme") != "rtmps" || prop(t, g, "sink", "port") != "443" || prop(t, g, "sink", "stream") != "FB-1?a=b&c=d" {
		t.Errorf("sink %s", g)
	}
	if g.Chains[1].To != "mux.video" || g.Chains[2].To != "mux.audio" {
		t.Errorf("sender not linked to the muxer's pads: %+v", g.Chains)
	}
	if strings.Contains(prop(t, g, "sink", "host"), "/") {
		t.Error("host")
	}
}

func TestSRTGraphKeepsTheOutputInTypedProperties(t *testing.T) {
	o := agent.SRTOutput{Host: "", Port: 9000, Mode: agent.SRTListener, Latency: 800 * time.Millisecond,
		StreamID: "#!::r=live/cam,m=publish", Passphrase: "correct horse battery"}
	g := SRTGraph(o)
	for name, want := range map[string]string{
		"uri": "srt://:9000", "mode": "listener", "latency": "800", "streamid": "#!::r=live/cam,m=publish",
		"passphrase": "correct horse battery", "auto-reconnect": "false",
	} {
		if got := prop(t, g, "sink", name); got != want {
			t.Errorf("srtsink %s = %q, want %q", name, got, want)
		}
	}
	if prop(t, g, "vcaps", "caps") != "video/x-h264,stream-format=byte-stream,alignment=au" {
		t.Errorf("MPEG-TS needs byte-stream H.264: %s", g)
	}
	// The launch form (logs, the benchmark) quotes what holds spaces.
	if !strings.Contains(g.String(), `passphrase="correct horse battery"`) {
		t.Errorf("launch form %s", g)
	}
	local := SRTGraph(agent.SRTOutput{Host: "127.0.0.1", Port: 9000, Mode: agent.SRTListener, Latency: agent.DefaultSRTLatency})
	if prop(t, local, "sink", "uri") != "srt://:9000" || prop(t, local, "sink", "localaddress") != "127.0.0.1" || prop(t, local, "sink", "localport") != "9000" {
		t.Errorf("listener on one address: %s", local)
	}
	caller := SRTGraph(agent.SRTOutput{Host: "::1", Port: 7001, Mode: agent.SRTCaller, Latency: agent.DefaultSRTLatency})
	if prop(t, caller, "sink", "uri") != "srt://[::1]:7001" || prop(t, caller, "sink", "passphrase") != "" {
		t.Errorf("caller %s", caller)
	}
}

// watchers counts the bus readers of pipelines not yet set to NULL.
func watchers() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "media.(*pipeline).watch.func")
}

// recordUntil records from c until stop ends it, collecting the segments
// reported; it returns Attach's error.
func recordUntil(t *testing.T, c *Capture, dir string, stop func(opened <-chan struct{})) ([]agent.Segment, error) {
	t.Helper()
	var mu sync.Mutex
	var segs []agent.Segment
	opened := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- c.Attach(ctx, agent.RecordOutput{Dir: dir, Segment: time.Minute, Fragment: time.Second}, agent.OutputHooks{
			Segment: func(s agent.Segment) {
				mu.Lock()
				segs = append(segs, s)
				mu.Unlock()
				once.Do(func() { close(opened) })
			},
		})
	}()
	stop(opened)
	var err error
	select {
	case err = <-errc:
	case <-time.After(15 * time.Second):
		t.Fatal("Attach did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	return segs, err
}

// The camera failing while it records: the file being written is finished
// and reported closed, and its writer goes to NULL.
func TestRecordingReportsItsLastFileWhenTheCaptureFails(t *testing.T) {
	e := newEngine(t)
	c := openCapture(t, e, testSpec())
	before := watchers()
	segs, err := recordUntil(t, c, t.TempDir(), func(opened <-chan struct{}) {
		<-opened
		time.Sleep(1500 * time.Millisecond)
		c.finish(errors.New("the camera went away"))
	})
	if err == nil {
		t.Fatal("Attach ended without an error when the capture failed")
	}
	if len(segs) != 2 || !segs[1].Closed || segs[1].Path != segs[0].Path || segs[1].Bytes == 0 {
		t.Fatalf("segments %+v, want the file opened and then closed", segs)
	}
	if frames, _ := testenv.VideoFrames(t, segs[1].Path); frames < 30 {
		t.Errorf("the last file holds %d frames", frames)
	}
	if n := watchers(); n > before {
		t.Errorf("%d pipelines still running after Attach returned, %d before", n, before)
	}
}

// A disk that fills up: Attach fails with the reason, the file is finished
// as far as it goes, and nothing is left running.
func TestRecordingOnAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	e := newEngine(t)
	c := openCapture(t, e, testSpec())
	before := watchers()
	segs, err := recordUntil(t, c, dir, func(<-chan struct{}) {})
	if err == nil || !strings.Contains(err.Error(), "space") {
		t.Fatalf("Attach returned %v, want the disk being full", err)
	}
	if len(segs) == 0 || !segs[len(segs)-1].Closed {
		t.Errorf("segments %+v, want the file reported closed", segs)
	}
	if n := watchers(); n > before {
		t.Errorf("%d pipelines still running after Attach returned, %d before", n, before)
	}
}
