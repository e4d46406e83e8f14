package telemetry

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeVcgencmd writes a shell script standing in for vcgencmd.
func fakeVcgencmd(t *testing.T, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs a POSIX shell")
	}
	p := filepath.Join(t.TempDir(), "vcgencmd")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecVcgencmd(t *testing.T) {
	cases := []struct {
		name, body string
		out, err   string
	}{
		{"ok", `[ "$1" = get_throttled ] && echo throttled=0x50005`, "throttled=0x50005\n", ""},
		{"no permission on /dev/vchiq", `echo "VCHI initialization failed" >&2; exit 255`, "", `telemetry: vcgencmd get_throttled: exit status 255: "VCHI initialization failed"`},
		{"error on stdout", `echo 'error=2 error_msg="Command not registered"'; exit 1`, "", `exit status 1: "error=2`},
		{"silent failure", `exit 3`, "", "telemetry: vcgencmd get_throttled: exit status 3"},
	}
	for _, c := range cases {
		out, err := ExecVcgencmd(fakeVcgencmd(t, c.body))(context.Background(), "get_throttled")
		if c.err == "" {
			if err != nil || out != c.out {
				t.Errorf("%s: %q, %v", c.name, out, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
	}
}

func TestExecVcgencmdHonoursContext(t *testing.T) {
	run := ExecVcgencmd(fakeVcgencmd(t, "exec sleep 30"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := run(ctx, "get_throttled"); err == nil {
		t.Error("a hung vcgencmd did not fail")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestStatFS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("statfs is Linux only")
	}
	free, total, err := StatFS(t.TempDir())
	if err != nil || total == 0 || free > total {
		t.Errorf("free %d total %d err %v", free, total, err)
	}
	// A media directory not made yet: the file system it will be on.
	if _, total, err := StatFS(filepath.Join(t.TempDir(), "media", "not", "yet")); err != nil || total == 0 {
		t.Errorf("missing dir: total %d, %v", total, err)
	}
	// Below a regular file: an error.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, _, err := StatFS(filepath.Join(f, "media")); err == nil || !strings.HasPrefix(err.Error(), "telemetry: statfs ") {
		t.Errorf("below a file: %v", err)
	}
}

func TestNewDeviceReader(t *testing.T) {
	r := NewDeviceReader(t.TempDir(), "test")
	h := r.Read(context.Background())
	if runtime.GOOS == "linux" && (h.Disk == nil || h.UptimeS == nil || h.Memory == nil) {
		t.Errorf("live read: %s", jsonOf(h))
	}
	if runtime.GOOS != "linux" {
		return
	}
	// Two reads within one clock tick have no CPU figure; wait for one.
	for deadline := time.Now().Add(2 * time.Second); h.CPUPercent == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("no cpu percent from the live /proc/stat: %s", jsonOf(h))
		}
		time.Sleep(50 * time.Millisecond)
		h = r.Read(context.Background())
	}
}
