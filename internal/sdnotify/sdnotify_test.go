package sdnotify_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/sdnotify"
)

// env is an environment for FromEnv.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// listen is systemd's end: a unixgram socket at name (a path or @abstract).
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recv reads one datagram, or returns "" after d.
func recv(t *testing.T, c *net.UnixConn, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(d))
	n, _, err := c.ReadFromUnix(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
		t.Fatal(err)
	}
	return string(buf[:n])
}

func notifier(t *testing.T, e env) *sdnotify.Notifier {
	t.Helper()
	n, err := sdnotify.FromEnv(e.lookup, 4242)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWithoutNotifySocketNothingHappens(t *testing.T) {
	n := notifier(t, env{"WATCHDOG_USEC": "30000000"})
	if n.Enabled() || n.WatchdogTimeout() != 0 {
		t.Fatalf("enabled %v, watchdog %s without NOTIFY_SOCKET", n.Enabled(), n.WatchdogTimeout())
	}
	if err := n.Notify(sdnotify.Ready); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.RunWatchdog(context.Background(), func() error { return nil }, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("RunWatchdog without a watchdog did not return")
	}
	stop := n.Start(context.Background(), func() error { return nil }, slog.Default())
	stop()
	var nilN *sdnotify.Notifier
	if nilN.Enabled() || nilN.Notify(sdnotify.Stopping) != nil {
		t.Fatal("a nil notifier is not a no-op")
	}
}

func TestNotifyReachesTheSocket(t *testing.T) {
	for _, tc := range []struct{ name, socket string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		// systemd uses abstract names for the manager's own socket in some setups
		{"abstract", fmt.Sprintf("@makercast-sdnotify-test-%d", time.Now().UnixNano())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := listen(t, tc.socket)
			n := notifier(t, env{"NOTIFY_SOCKET": tc.socket})
			if !n.Enabled() {
				t.Fatal("not enabled with NOTIFY_SOCKET set")
			}
			if err := n.Notify(sdnotify.Ready, "STATUS=connecting to MQTT"); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, srv, 2*time.Second); got != "READY=1\nSTATUS=connecting to MQTT" {
				t.Fatalf("got %q", got)
			}
			if err := n.Notify(sdnotify.Stopping); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, srv, 2*time.Second); got != "STOPPING=1" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestNotifyWithoutListenerFails(t *testing.T) {
	n := notifier(t, env{"NOTIFY_SOCKET": filepath.Join(t.TempDir(), "gone")})
	err := n.Notify(sdnotify.Ready)
	if !errors.Is(err, syscall.ENOENT) || !strings.HasPrefix(err.Error(), "sdnotify: ") {
		t.Fatalf("got %v, want a sdnotify: error wrapping ENOENT", err)
	}
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      env
		watchdog time.Duration
		err      string
	}{
		{"watchdog", env{"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"}, 30 * time.Second, ""},
		{"watchdog for this pid", env{"NOTIFY_SOCKET": "@n", "WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "4242"}, 5 * time.Second, ""},
		{"watchdog for another pid", env{"NOTIFY_SOCKET": "@n", "WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}, 0, ""},
		{"no watchdog", env{"NOTIFY_SOCKET": "@n"}, 0, ""},
		{"vsock is systemd 253", env{"NOTIFY_SOCKET": "vsock:2:1234"}, 0, `sdnotify: NOTIFY_SOCKET "vsock:2:1234" is neither a path nor an abstract socket name (@...)`},
		{"bad usec", env{"NOTIFY_SOCKET": "@n", "WATCHDOG_USEC": "30s"}, 0, `sdnotify: WATCHDOG_USEC "30s" is not a positive number of microseconds`},
		{"zero usec", env{"NOTIFY_SOCKET": "@n", "WATCHDOG_USEC": "0"}, 0, `sdnotify: WATCHDOG_USEC "0" is not a positive number of microseconds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := sdnotify.FromEnv(tc.env.lookup, 4242)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := n.WatchdogTimeout(); got != tc.watchdog {
				t.Fatalf("watchdog %s, want %s", got, tc.watchdog)
			}
		})
	}
}

// The watchdog is fed every half WatchdogSec while healthy, not at all while
// unhealthy, again once healthy, and stops with its context.
func TestWatchdogOnlyWhileHealthy(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "notify")
	srv := listen(t, socket)
	// WatchdogSec=100ms: a ping every 50 ms
	n := notifier(t, env{"NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "100000"})
	var healthy atomic.Bool
	healthy.Store(true)
	sick := errors.New("loop stuck")
	health := func() error {
		if healthy.Load() {
			return nil
		}
		return sick
	}
	var reported atomic.Int32
	report := func(err error) {
		if !errors.Is(err, sdnotify.ErrUnhealthy) || !errors.Is(err, sick) {
			t.Errorf("reported %v", err)
		}
		reported.Add(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.RunWatchdog(ctx, health, report) }()

	start := time.Now()
	for i := 0; i < 3; i++ {
		if got := recv(t, srv, time.Second); got != "WATCHDOG=1" {
			t.Fatalf("ping %d: got %q", i, got)
		}
	}
	// three pings: at 0, 50 and 100 ms, not a burst
	if el := time.Since(start); el < 80*time.Millisecond || el > 900*time.Millisecond {
		t.Fatalf("3 pings took %s, want about 100ms", el)
	}

	healthy.Store(false)
	recv(t, srv, 60*time.Millisecond) // at most one ping already decided on
	if got := recv(t, srv, 300*time.Millisecond); got != "" {
		t.Fatalf("unhealthy, but got %q", got)
	}
	if reported.Load() < 3 {
		t.Fatalf("%d failed checks reported in 360ms of 50ms ticks", reported.Load())
	}

	healthy.Store(true)
	if got := recv(t, srv, time.Second); got != "WATCHDOG=1" {
		t.Fatalf("healthy again: got %q", got)
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("RunWatchdog returned %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("RunWatchdog did not return after cancel")
	}
	for {
		got := recv(t, srv, 200*time.Millisecond)
		if got == "" {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("still pinging after cancel: %q", got)
		}
	}
}

// A failed ping is reported and retried on the next tick.
func TestWatchdogReportsSendErrors(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "notify")
	n := notifier(t, env{"NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "40000"})
	errs := make(chan error, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_ = n.RunWatchdog(ctx, func() error { return nil }, func(err error) { errs <- err })
	if len(errs) < 2 {
		t.Fatalf("%d errors reported for a missing socket, want one per tick", len(errs))
	}
	if err := <-errs; !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("got %v", err)
	}
}

// Start says READY=1 before any ping; stop says STOPPING=1 after the last.
func TestStartAndStop(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "notify")
	srv := listen(t, socket)
	n := notifier(t, env{"NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "60000"})
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var fail atomic.Bool
	stop := n.Start(context.Background(), func() error {
		if fail.Load() {
			return errors.New("mqtt client stopped")
		}
		return nil
	}, log)
	if got := recv(t, srv, time.Second); got != "READY=1" {
		t.Fatalf("first message %q", got)
	}
	if got := recv(t, srv, time.Second); got != "WATCHDOG=1" {
		t.Fatalf("second message %q", got)
	}
	fail.Store(true)
	time.Sleep(100 * time.Millisecond)
	stop()
	var last string
	for got := recv(t, srv, 200*time.Millisecond); got != ""; got = recv(t, srv, 200*time.Millisecond) {
		last = got
	}
	if last != "STOPPING=1" {
		t.Fatalf("last message %q, want STOPPING=1", last)
	}
	if !strings.Contains(logs.String(), "mqtt client stopped") {
		t.Fatalf("the failed check is not logged: %s", logs.String())
	}
}

func TestPulse(t *testing.T) {
	var p sdnotify.Pulse
	if err := p.Check(time.Hour); !errors.Is(err, sdnotify.ErrStale) {
		t.Fatalf("never beaten: %v", err)
	}
	p.Beat()
	if err := p.Check(time.Second); err != nil {
		t.Fatalf("just beaten: %v", err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := p.Check(10 * time.Millisecond); !errors.Is(err, sdnotify.ErrStale) {
		t.Fatalf("30ms old with a 10ms limit: %v", err)
	}
}

func ExampleNotifier() {
	// In main: a no-op unless systemd started the agent with Type=notify.
	n, err := sdnotify.FromEnv(env{}.lookup, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = n.Notify(sdnotify.Ready)
	fmt.Println(n.Enabled(), n.WatchdogTimeout())
	// Output: false 0s
}
