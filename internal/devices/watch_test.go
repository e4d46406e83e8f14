package devices

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/makercast/makercast/agent"
)

type chanSource chan Uevent

func (c chanSource) Read() (Uevent, error) {
	select {
	case ev := <-c:
		return ev, nil
	case <-time.After(50 * time.Millisecond):
		return Uevent{}, nil
	}
}

func (c chanSource) Close() error { return nil }

func write(t *testing.T, root, name, data string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A camera plugged in is reported right after its uevent (not at the next
// rescan); a node that becomes a camera without a uevent (a loopback's
// writer starts) is found by the rescan; nothing is reported while nothing
// changes.
func TestWatcherReportsChanges(t *testing.T) {
	root := t.TempDir()
	var mu sync.Mutex
	capture := map[string]bool{"/dev/video0": true}
	s := &Scanner{Root: os.DirFS(root), Query: func(dev string) (Node, error) {
		mu.Lock()
		defer mu.Unlock()
		bus := "usb-" + dev
		if dev == "/dev/video1" {
			bus = "platform:v4l2loopback-000" // a loopback: no uevent when its writer starts
		}
		return Node{Card: "cam " + dev, Bus: bus, Capture: capture[dev]}, nil
	}}
	events := make(chanSource)
	got := make(chan agent.Inventory, 16)
	w := &Watcher{Scanner: s, Rescan: 700 * time.Millisecond, Settle: 20 * time.Millisecond,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Uevents: func() (UeventSource, error) { return events, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx, agent.Inventory{}, func(inv agent.Inventory) { got <- inv }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	write(t, root, "sys/class/video4linux/video0/name", "cam\n")
	start := time.Now()
	events <- Uevent{Action: "add", Subsystem: "video4linux", DevName: "video0"}
	select {
	case inv := <-got:
		if len(inv.Cameras) != 1 || inv.Cameras[0].Device != "/dev/video0" {
			t.Fatalf("after add: %+v", inv)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("reported %s after the uevent: it waited for the rescan", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("camera not reported")
	}
	// A node with no camera behind it yet: not reported...
	write(t, root, "sys/class/video4linux/video1/name", "loopback\n")
	events <- Uevent{Action: "add", Subsystem: "video4linux", DevName: "video1"}
	select {
	case inv := <-got:
		t.Fatalf("an output-only node was reported: %+v", inv)
	case <-time.After(300 * time.Millisecond):
	}
	// ...until its writer starts: no uevent, the rescan finds it.
	mu.Lock()
	capture["/dev/video1"] = true
	mu.Unlock()
	select {
	case inv := <-got:
		if len(inv.Cameras) != 2 {
			t.Fatalf("after the writer started: %+v", inv)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the rescan did not find the new camera")
	}
	// Unplugged: the node goes, the uevent says so.
	if err := os.RemoveAll(filepath.Join(root, "sys/class/video4linux/video0")); err != nil {
		t.Fatal(err)
	}
	events <- Uevent{Action: "remove", Subsystem: "video4linux", DevName: "video0"}
	select {
	case inv := <-got:
		if len(inv.Cameras) != 1 || inv.Cameras[0].Device != "/dev/video1" {
			t.Fatalf("after remove: %+v", inv)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("removal not reported")
	}
	// Other subsystems are ignored, and nothing changes: silence.
	events <- Uevent{Action: "add", Subsystem: "net", DevName: "eth0"}
	select {
	case inv := <-got:
		t.Fatalf("reported without a change: %+v", inv)
	case <-time.After(1500 * time.Millisecond):
	}
}

func TestParseUevent(t *testing.T) {
	ev := ParseUevent([]byte("remove@/devices/platform/vivid.0/video4linux/video0\x00ACTION=remove\x00DEVPATH=/devices/platform/vivid.0/video4linux/video0\x00SUBSYSTEM=video4linux\x00DEVNAME=video0\x00SEQNUM=1234\x00MAJOR=81\x00MINOR=0"))
	if ev != (Uevent{Action: "remove", Subsystem: "video4linux", DevName: "video0"}) {
		t.Errorf("parsed %+v", ev)
	}
}

// The real uevent socket opens here (the kernel's netlink family) and a
// read with nothing happening returns within its poll interval.
func TestNetlinkOpens(t *testing.T) {
	src, err := openNetlink()
	if err != nil {
		t.Skipf("no uevent socket in this sandbox: %v", err)
	}
	defer src.Close()
	start := time.Now()
	if _, err := src.Read(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a read took %s: the poll interval does not work", d)
	}
}
