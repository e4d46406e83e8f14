package balena_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/balena"
	"github.com/makercast/makercast/internal/balena/balenatest"
	"github.com/makercast/makercast/internal/secret"
)

// key is distinctive so that a leak is found by a plain search.
const key = "5ec7e7c0ffee5ec7e7c0ffee5ec7e7c0"

// logBuffer collects slog output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newClient(t *testing.T, opts balenatest.Options) (*balena.Client, *balenatest.Supervisor, *logBuffer) {
	t.Helper()
	if opts.Key == "" {
		opts.Key = key
	}
	sup := balenatest.NewSupervisor(opts)
	t.Cleanup(sup.Close)
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := balena.New(sup.Config(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), opts.Key) {
			t.Errorf("the API key is in the logs:\n%s", logs.String())
		}
	})
	return c, sup, logs
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestNewOutsideBalena(t *testing.T) {
	for _, cfg := range []balena.Config{
		{},
		{Address: "http://127.0.0.1:48484"}, // no supervisor-api label: no key
		{APIKey: secret.Secret(key), LockPath: "/tmp/x"}, // no address
	} {
		c, err := balena.New(cfg, nil, nil)
		if c != nil || !errors.Is(err, balena.ErrNoSupervisor) {
			t.Errorf("New(%+v) = %v, %v; want nil, ErrNoSupervisor", cfg, c, err)
		}
	}
	_, err := balena.New(balena.Config{Address: "127.0.0.1:48484", APIKey: secret.Secret(key)}, nil, nil)
	if err == nil || errors.Is(err, balena.ErrNoSupervisor) || strings.Contains(err.Error(), key) {
		t.Errorf("a bad address: %v", err)
	}
}

// TestCalls checks each call's method, path, key and body against what the
// supervisor API documents.
func TestCalls(t *testing.T) {
	c, sup, _ := newClient(t, balenatest.Options{})
	tests := []struct {
		name         string
		call         func() error
		method, path string
		body         map[string]any // nil: none sent
		keyless      bool
	}{
		{"ping", func() error { return c.Ping(ctx(t)) }, "GET", "/ping", nil, true},
		{"device", func() error { _, err := c.Device(ctx(t)); return err }, "GET", "/v1/device", nil, false},
		{"app", func() error { _, _, err := c.App(ctx(t)); return err }, "GET", "/v2/applications/state", nil, false},
		{"update", func() error { _, err := c.Update(ctx(t), false); return err }, "POST", "/v1/update", map[string]any{"force": false}, false},
		{"update forced", func() error { _, err := c.Update(ctx(t), true); return err }, "POST", "/v1/update", map[string]any{"force": true}, false},
		{"reboot", func() error { return c.Reboot(ctx(t), false) }, "POST", "/v1/reboot", map[string]any{"force": false}, false},
		{"reboot forced", func() error { return c.Reboot(ctx(t), true) }, "POST", "/v1/reboot", map[string]any{"force": true}, false},
		{"blink", func() error { return c.Blink(ctx(t)) }, "POST", "/v1/blink", nil, false},
		{"restart service", func() error { return c.RestartService(ctx(t), false) }, "POST", "/v2/applications/1234567/restart-service",
			map[string]any{"serviceName": "makercast", "force": false}, false},
		{"restart service forced", func() error { return c.RestartService(ctx(t), true) }, "POST", "/v2/applications/1234567/restart-service",
			map[string]any{"serviceName": "makercast", "force": true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(sup.Requests())
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			reqs := sup.Requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1: %+v", len(reqs), reqs)
			}
			r := reqs[0]
			if r.Method != tt.method || r.Path != tt.path {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tt.method, tt.path)
			}
			if tt.keyless && r.KeyGiven {
				t.Error("/ping needs no key and should not carry it")
			}
			if !tt.keyless && !r.Authorized {
				t.Error("the key was not sent")
			}
			if !reflect.DeepEqual(r.Body, tt.body) {
				t.Errorf("body %v (Content-Type %q), want %v", r.Body, r.ContentType, tt.body)
			}
		})
	}
}

func TestUpdateIgnored(t *testing.T) {
	c, _, _ := newClient(t, balenatest.Options{InstantUpdatesOff: true})
	if ok, err := c.Update(ctx(t), false); ok || err != nil {
		t.Errorf("Update without force, instant updates off: %v, %v; want false, nil (202)", ok, err)
	}
	if ok, err := c.Update(ctx(t), true); !ok || err != nil {
		t.Errorf("Update with force: %v, %v; want true, nil (204)", ok, err)
	}
}

func TestUnauthorized(t *testing.T) {
	sup := balenatest.NewSupervisor(balenatest.Options{Key: key})
	defer sup.Close()
	// The fake itself: 401 without a key, as the supervisor's auth middleware.
	res, err := http.Get(sup.URL + "/v1/device")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %d, want 401", res.StatusCode)
	}

	const wrong = "0badc0de0badc0de0badc0de0badc0de"
	cfg := sup.Config()
	cfg.APIKey = secret.Secret(wrong)
	c, err := balena.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx(t)); err != nil {
		t.Errorf("ping needs no key: %v", err)
	}
	calls := map[string]func() error{
		"device":  func() error { _, err := c.Device(ctx(t)); return err },
		"state":   func() error { _, err := c.State(ctx(t)); return err },
		"update":  func() error { _, err := c.Update(ctx(t), true); return err },
		"reboot":  func() error { return c.Reboot(ctx(t), false) },
		"restart": func() error { return c.RestartService(ctx(t), false) },
		"blink":   func() error { return c.Blink(ctx(t)) },
	}
	for name, call := range calls {
		err := call()
		var apiErr *balena.APIError
		if !errors.Is(err, balena.ErrUnauthorized) || !errors.As(err, &apiErr) || apiErr.Status != 401 {
			t.Errorf("%s with a wrong key: %v; want a 401 APIError", name, err)
			continue
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), key) {
			t.Errorf("%s: the key is in the error: %v", name, err)
		}
		if !strings.HasPrefix(err.Error(), "balena: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

// TestLockedAnswers checks that the supervisor's 423 comes back as
// ErrUpdatesLocked with its message, and force goes through.
func TestLockedAnswers(t *testing.T) {
	lockPath := filepath.Join(t.TempDir(), "updates.lock")
	c, _, _ := newClient(t, balenatest.Options{LockPath: lockPath})
	lock := balena.NewUpdateLock(lockPath, nil)
	if err := lock.Lock(); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func(force bool) error{
		"reboot":  func(f bool) error { return c.Reboot(ctx(t), f) },
		"restart": func(f bool) error { return c.RestartService(ctx(t), f) },
	} {
		err := call(false)
		if !errors.Is(err, balena.ErrUpdatesLocked) || !strings.Contains(err.Error(), "Lockfile exists") {
			t.Errorf("%s while locked: %v; want ErrUpdatesLocked with the supervisor's message", name, err)
		}
		if err := call(true); err != nil {
			t.Errorf("%s forced while locked: %v", name, err)
		}
	}
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartService(ctx(t), false); err != nil {
		t.Errorf("restart after Unlock: %v", err)
	}
}

func TestErrorBodies(t *testing.T) {
	c, sup, _ := newClient(t, balenatest.Options{})
	tests := []struct {
		name   string
		fail   func()
		call   func() error
		status int
		want   string
	}{
		{"json message", func() {
			sup.Fail("GET", "/v1/device", 503, `{"status":"failed","message":"Unexpected error: SQLITE_BUSY: database is locked"}`)
		}, func() error { _, err := c.Device(ctx(t)); return err }, 503,
			"balena: GET /v1/device: 503 Service Unavailable: Unexpected error: SQLITE_BUSY: database is locked"},
		{"v1 Error field", func() {
			sup.Fail("POST", "/v1/reboot", 500, `{"Data":"","Error":"Failed to reboot: dbus"}`)
		}, func() error { return c.Reboot(ctx(t), false) }, 500,
			"balena: POST /v1/reboot: 500 Internal Server Error: Failed to reboot: dbus"},
		{"text", func() {
			sup.Fail("POST", "/v1/update", 503, "Unexpected error: boom")
		}, func() error { _, err := c.Update(ctx(t), true); return err }, 503,
			"balena: POST /v1/update: 503 Service Unavailable: Unexpected error: boom"},
		{"bad json", func() {
			sup.Fail("GET", "/v1/device", 200, `{"commit":`)
		}, func() error { _, err := c.Device(ctx(t)); return err }, 0, "balena: GET /v1/device: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fail()
			defer sup.Fail("GET", "/v1/device", 0, "")
			err := tt.call()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v\nwant  %s", err, tt.want)
			}
			var apiErr *balena.APIError
			if tt.status != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tt.status) {
				t.Errorf("not an APIError with status %d: %#v", tt.status, err)
			}
		})
	}

	// A service the supervisor does not know: its 404 text.
	cfg := sup.Config()
	cfg.ServiceName = "other"
	other, err := balena.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = other.RestartService(ctx(t), false)
	if err == nil || !strings.Contains(err.Error(), "404 Not Found: Service not found") {
		t.Errorf("unknown service: %v", err)
	}
	cfg.AppID = 0
	noApp, _ := balena.New(cfg, nil, nil)
	if err := noApp.RestartService(ctx(t), false); err == nil || !strings.Contains(err.Error(), "BALENA_APP_ID") {
		t.Errorf("restart without an app id: %v", err)
	}
}

func TestTimeoutAndUnreachable(t *testing.T) {
	c, sup, logs := newClient(t, balenatest.Options{})
	release := sup.Stall("GET", "/v1/device")
	defer release()
	tctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Device(tctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled supervisor: %v; want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the call took %v after its deadline", took)
	}
	release()

	sup.Close() // connection refused from now on
	for name, call := range map[string]func() error{
		"device":  func() error { _, err := c.Device(ctx(t)); return err },
		"reboot":  func() error { return c.Reboot(ctx(t), true) },
		"restart": func() error { return c.RestartService(ctx(t), true) },
	} {
		err := call()
		if err == nil || !strings.HasPrefix(err.Error(), "balena: ") {
			t.Errorf("%s, supervisor gone: %v", name, err)
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("%s: the key is in the error: %v", name, err)
		}
	}
	if !strings.Contains(logs.String(), "supervisor request failed") {
		t.Errorf("failures not logged:\n%s", logs)
	}
}

func TestState(t *testing.T) {
	const (
		running = "414e65cd378a69a96f403b75f14b40b5"
		next    = "217d55237092995e4576367e529ebb03"
	)
	p := func(n int) *int { return &n }
	tests := []struct {
		name      string
		setup     func(*balenatest.Supervisor)
		available bool
		want      string // HAUpdate JSON
	}{
		{"up to date", func(s *balenatest.Supervisor) {
			s.SetDevice(balenatest.Device{Commit: running, Status: "Idle"})
			s.SetTarget(&balenatest.Target{Commit: running, UpdateStatus: "done"})
		}, false, `{"installed_version":"414e65c","latest_version":"414e65c","title":"makercast","in_progress":false,"update_percentage":null}`},
		{"downloading", func(s *balenatest.Supervisor) {
			s.SetDevice(balenatest.Device{Commit: running, Status: "Downloading", DownloadProgress: p(10), UpdatePending: true})
			s.SetTarget(&balenatest.Target{Commit: next, UpdateStatus: "downloading", Progress: p(42), ServiceStatus: "Downloading"})
		}, true, `{"installed_version":"414e65c","latest_version":"217d552","title":"makercast","in_progress":true,"update_percentage":42}`},
		{"downloaded, waiting for the lock", func(s *balenatest.Supervisor) {
			s.SetDevice(balenatest.Device{Commit: running, Status: "Idle", UpdatePending: true, UpdateDownloaded: true})
			s.SetTarget(&balenatest.Target{Commit: next, UpdateStatus: "downloaded", ServiceStatus: "Downloaded"})
		}, true, `{"installed_version":"414e65c","latest_version":"217d552","title":"makercast","in_progress":false,"update_percentage":null}`},
		{"installing", func(s *balenatest.Supervisor) {
			s.SetDevice(balenatest.Device{Commit: running, Status: "Installing", UpdatePending: true, UpdateDownloaded: true})
			s.SetTarget(&balenatest.Target{Commit: next, UpdateStatus: "applying changes", ServiceStatus: "Installing"})
		}, true, `{"installed_version":"414e65c","latest_version":"217d552","title":"makercast","in_progress":true,"update_percentage":null}`},
		{"supervisor before v17.7: no updateStatus", func(s *balenatest.Supervisor) {
			s.SetDevice(balenatest.Device{Commit: running, Status: "Downloading", DownloadProgress: p(84), UpdatePending: true})
			s.SetTarget(&balenatest.Target{Commit: next, ServiceStatus: "Downloading"})
		}, true, `{"installed_version":"414e65c","latest_version":"217d552","title":"makercast","in_progress":true,"update_percentage":84}`},
		{"supervisor before v7.12: no /v2/applications/state", func(s *balenatest.Supervisor) {
			s.SetDevice(balenatest.Device{Commit: running, Status: "Downloading", DownloadProgress: p(84), UpdatePending: true})
			s.WithoutV2()
		}, false, `{"installed_version":"414e65c","latest_version":"414e65c","title":"makercast","in_progress":false,"update_percentage":null}`},
		{"no app yet", func(s *balenatest.Supervisor) {
			s.SetDevice(balenatest.Device{Status: "Idle"})
			s.SetTarget(nil)
		}, false, `{"installed_version":"","latest_version":"","title":"makercast","in_progress":false,"update_percentage":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, sup, _ := newClient(t, balenatest.Options{})
			tt.setup(sup)
			s, err := c.State(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if s.UpdateAvailable() != tt.available {
				t.Errorf("UpdateAvailable() = %v, want %v (%+v)", s.UpdateAvailable(), tt.available, s)
			}
			got, _ := json.Marshal(s.HAUpdate("makercast"))
			if string(got) != tt.want {
				t.Errorf("HAUpdate\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}

func TestDeviceFields(t *testing.T) {
	c, sup, _ := newClient(t, balenatest.Options{})
	p := 84
	want := balenatest.Device{
		Commit: "414e65cd378a69a96f403b75f14b40b5", Status: "Downloading", DownloadProgress: &p,
		UpdatePending: true, UpdateDownloaded: false, UpdateFailed: true,
		OSVersion: "balenaOS 6.5.1", SupervisorVersion: "17.1.3",
	}
	sup.SetDevice(want)
	d, err := c.Device(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.Commit != want.Commit || d.Status != want.Status || d.DownloadProgress == nil || *d.DownloadProgress != 84 ||
		!d.UpdatePending || d.UpdateDownloaded || !d.UpdateFailed || d.OSVersion != want.OSVersion ||
		d.SupervisorVersion != want.SupervisorVersion || d.IPAddress != "192.168.1.23 10.114.102.1" {
		t.Errorf("Device = %+v", d)
	}
}

func TestVersion(t *testing.T) {
	for commit, want := range map[string]string{
		"":                                 "",
		"414e65c":                          "414e65c",
		"414e65cd378a69a96f403b75f14b40b5": "414e65c",
		"217d55237092995e4576367e529ebb03": "217d552",
		"12345678901234567890123456789d12": "12345678901234567890123456789d",
		"1234b5612345678901234567890abcab": "1234b5612345678901234567890abcab",
		"deadbeefdeadbeefdeadbeefdeadbeef": "deadbee",
	} {
		if got := balena.Version(commit); got != want {
			t.Errorf("Version(%q) = %q, want %q", commit, got, want)
		}
	}
}
