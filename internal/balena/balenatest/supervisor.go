// Package balenatest is a fake balena supervisor for tests: an
// httptest.Server answering the supervisor API's requests the way the
// documentation (docs.balena.io, "Interacting with the balena Supervisor")
// and the supervisor's routers (balena-os/balena-supervisor
// src/device-api) do, for the calls package balena makes. The real
// supervisor only runs on a balenaOS device.
//
// Like the real one, it refuses a reboot or a restart of the service with
// 423 while the service's update lock file exists (Options.LockPath), unless
// forced, so that a test can check that a live stream is protected.
package balenatest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/makercast/makercast/internal/balena"
	"github.com/makercast/makercast/internal/secret"
)

// Options describe the fake supervisor's service and device.
type Options struct {
	Key         string // API key; default "0123456789abcdef0123456789abcdef"
	AppID       int    // default 1234567
	AppName     string // default "makercast"
	ServiceName string // default "makercast"
	// LockPath is the service's update lock file. While it exists, reboot
	// and restart-service without force answer 423, as the real supervisor
	// does when it cannot take the lock itself. Empty: never locked.
	LockPath string
	// InstantUpdatesOff makes POST /v1/update without force answer 202
	// (ignored), as with BALENA_SUPERVISOR_INSTANT_UPDATE_TRIGGER=false.
	InstantUpdatesOff bool
}

// Device is what GET /v1/device answers; nil pointers are JSON null.
type Device struct {
	Commit            string
	Status            string
	DownloadProgress  *int
	UpdatePending     bool
	UpdateDownloaded  bool
	UpdateFailed      bool
	OSVersion         string
	SupervisorVersion string
}

// Target is the app's entry in GET /v2/applications/state: the release
// the supervisor is to run.
type Target struct {
	Commit       string
	UpdateStatus string // "" leaves the field out (supervisors before v17.7)
	// Progress is the service's downloadProgress; nil is null.
	Progress *int
	// ServiceStatus is the service's status; default "Running".
	ServiceStatus string
}

// Request is one request the fake received.
type Request struct {
	Method, Path string
	// KeyGiven tells whether the request carried a key at all (?apikey= or
	// an Authorization header), Authorized whether it was the right one.
	KeyGiven    bool
	Authorized  bool
	ContentType string
	// Body is the JSON body, nil when there was none (or it was not JSON).
	Body map[string]any
}

// Supervisor is a running fake supervisor. Its URL is the
// BALENA_SUPERVISOR_ADDRESS to use; Config gives the whole balena.Config.
type Supervisor struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	device   Device
	target   *Target
	noV2     bool
	requests []Request
	faults   map[string]fault
	stall    map[string]chan struct{}
	closed   chan struct{}
}

type fault struct {
	status int
	body   string
}

// NewSupervisor starts a fake supervisor; Close stops it. The device runs
// release "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", idle, up to date.
func NewSupervisor(opts Options) *Supervisor {
	if opts.Key == "" {
		opts.Key = "0123456789abcdef0123456789abcdef"
	}
	if opts.AppID == 0 {
		opts.AppID = 1234567
	}
	if opts.AppName == "" {
		opts.AppName = "makercast"
	}
	if opts.ServiceName == "" {
		opts.ServiceName = "makercast"
	}
	const commit = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	s := &Supervisor{
		opts: opts,
		device: Device{
			Commit: commit, Status: "Idle", OSVersion: "balenaOS 6.5.1", SupervisorVersion: "17.1.3",
		},
		target: &Target{Commit: commit, UpdateStatus: "done"},
		faults: map[string]fault{},
		stall:  map[string]chan struct{}{},
		closed: make(chan struct{}),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close stops the server; stalled requests end.
func (s *Supervisor) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	s.Server.Close()
}

// Config is the environment the real supervisor would give the service.
func (s *Supervisor) Config() balena.Config {
	return balena.Config{
		Address: s.URL, APIKey: secret.Secret(s.opts.Key), AppID: s.opts.AppID,
		ServiceName: s.opts.ServiceName, DeviceUUID: "0123456789abcdef0123456789abcdef", LockPath: s.opts.LockPath,
	}
}

// Key is the API key the fake accepts.
func (s *Supervisor) Key() string { return s.opts.Key }

// SetDevice sets what GET /v1/device answers.
func (s *Supervisor) SetDevice(d Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.device = d
}

// SetTarget sets the app's target release in GET /v2/applications/state;
// nil lists no app.
func (s *Supervisor) SetTarget(t *Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target = t
}

// WithoutV2 makes GET /v2/applications/state answer 404, as supervisors
// before v7.12 do.
func (s *Supervisor) WithoutV2() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noV2 = true
}

// Fail makes every later request for method and path answer status and
// body (after the key is checked), until Fail is called with status 0.
func (s *Supervisor) Fail(method, path string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.faults, method+" "+path)
		return
	}
	s.faults[method+" "+path] = fault{status, body}
}

// Stall makes requests for method and path hang until the client gives up,
// the returned function is called, or the server closes.
func (s *Supervisor) Stall(method, path string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := make(chan struct{})
	s.stall[method+" "+path] = c
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.stall, method+" "+path)
			s.mu.Unlock()
			close(c)
		})
	}
}

// Requests returns the requests received so far.
func (s *Supervisor) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Requested returns the requests received for method and path.
func (s *Supervisor) Requested(method, path string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

var restartService = regexp.MustCompile(`^/v2/applications/([^/]+)/restart-service$`)

func (s *Supervisor) serve(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type")}
	rec.KeyGiven = r.URL.Query().Has("apikey") || r.Header.Get("Authorization") != ""
	rec.Authorized = s.authorized(r)
	// express.json parses a body only when it is declared JSON.
	if mt, _, _ := mime.ParseMediaType(rec.ContentType); mt == "application/json" {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			rec.Body = m
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	stall := s.stall[r.Method+" "+r.URL.Path]
	f, faulty := s.faults[r.Method+" "+r.URL.Path]
	s.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		}
	}

	// Routes before the auth middleware.
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/ping":
		io.WriteString(w, "OK")
		return
	case r.Method == http.MethodGet && r.URL.Path == "/v1/healthy":
		w.WriteHeader(http.StatusOK)
		return
	}
	if !rec.Authorized {
		// res.sendStatus(401)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if faulty {
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
		return
	}
	force := truthy(rec.Body["force"])
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/blink":
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/update":
		if force || !s.opts.InstantUpdatesOff {
			w.WriteHeader(http.StatusNoContent)
		} else {
			w.WriteHeader(http.StatusAccepted)
		}
	case r.Method == http.MethodPost && (r.URL.Path == "/v1/reboot" || r.URL.Path == "/v1/shutdown"):
		if s.locked() && !force {
			writeJSON(w, http.StatusLocked, map[string]any{"Data": "", "Error": "Updates are locked: Lockfile exists for { appId: " + strconv.Itoa(s.opts.AppID) + ", service: " + s.opts.ServiceName + " }"})
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"Data": "OK", "Error": nil})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/device":
		s.mu.Lock()
		d := s.device
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{
			"api_port": 48484, "ip_address": "192.168.1.23 10.114.102.1", "mac_address": "DC:A6:32:00:00:01",
			"commit": d.Commit, "status": d.Status, "download_progress": d.DownloadProgress,
			"os_version": d.OSVersion, "supervisor_version": d.SupervisorVersion,
			"update_pending": d.UpdatePending, "update_downloaded": d.UpdateDownloaded, "update_failed": d.UpdateFailed,
		})
	case r.Method == http.MethodGet && r.URL.Path == "/v2/applications/state":
		s.mu.Lock()
		t, noV2 := s.target, s.noV2
		s.mu.Unlock()
		if noV2 {
			// express's default for an unknown route.
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, "<pre>Cannot GET %s</pre>", r.URL.Path)
			return
		}
		apps := map[string]any{}
		if t != nil {
			status := t.ServiceStatus
			if status == "" {
				status = "Running"
			}
			app := map[string]any{
				"appId": s.opts.AppID, "appUuid": "d149c5d1551b4286a930d57284a02511", "commit": t.Commit,
				"services": map[string]any{s.opts.ServiceName: map[string]any{
					"status": status, "releaseId": 2345678, "downloadProgress": t.Progress,
					"image": "registry2.balena-cloud.com/v2/9e2dd224c83bddd78dbe9c0a91f585f4@sha256:1df407291eef767fbe42ec43cb653f193e95af7e7e30098489dbd88fb5345388",
				}},
			}
			if t.UpdateStatus != "" {
				app["updateStatus"] = t.UpdateStatus
			}
			apps[s.opts.AppName] = app
		}
		writeJSON(w, http.StatusOK, apps)
	case r.Method == http.MethodPost && restartService.MatchString(r.URL.Path):
		s.restartService(w, rec, restartService.FindStringSubmatch(r.URL.Path)[1], force)
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "<pre>Cannot %s %s</pre>", r.Method, r.URL.Path)
	}
}

// restartService follows handleServiceAction in src/device-api/v2.ts.
func (s *Supervisor) restartService(w http.ResponseWriter, rec Request, appIDText string, force bool) {
	appID, err := strconv.Atoi(appIDText)
	if err != nil || appID <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": "failed", "message": "Invalid app id"})
		return
	}
	if appID != s.opts.AppID { // the key is scoped to its own app
		writeJSON(w, http.StatusUnauthorized, map[string]any{"status": "failed", "message": "Unauthorized"})
		return
	}
	name, _ := rec.Body["serviceName"].(string)
	_, byImage := rec.Body["imageId"]
	if name == "" && !byImage {
		http.Error(w, "serviceName or imageId parameters were not provided or the app is multi-container. Use the v2 service action endpoints.", http.StatusBadRequest)
		return
	}
	if name != "" && name != s.opts.ServiceName {
		http.Error(w, "Service not found, a container must exist for this endpoint to work", http.StatusNotFound)
		return
	}
	if s.locked() && !force {
		writeJSON(w, http.StatusLocked, map[string]any{"status": "failed", "message": "Lockfile exists for { appId: " + appIDText + ", service: " + s.opts.ServiceName + " }"})
		return
	}
	io.WriteString(w, "OK")
}

// authorized follows middleware/auth.ts: the key in ?apikey= or in an
// "Authorization: Bearer|ApiKey <key>" header.
func (s *Supervisor) authorized(r *http.Request) bool {
	if k := r.URL.Query().Get("apikey"); k != "" {
		return k == s.opts.Key
	}
	h := r.Header.Get("Authorization")
	for _, scheme := range []string{"Bearer ", "ApiKey "} {
		if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
			return h[len(scheme):] == s.opts.Key
		}
	}
	return false
}

func (s *Supervisor) locked() bool {
	if s.opts.LockPath == "" {
		return false
	}
	_, err := os.Stat(s.opts.LockPath)
	return err == nil
}

// truthy follows the supervisor's checkTruthy: true, "true", 1, "1", "on".
func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case float64:
		return v == 1
	case string:
		switch strings.ToLower(v) {
		case "1", "true", "on":
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
