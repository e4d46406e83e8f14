package balena

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/makercast/makercast/internal/secret"
)

var (
	// ErrNoSupervisor is returned by New when the supervisor API is not
	// available: not under balena, or the service lacks the
	// io.balena.features.supervisor-api label. The agent then shows no
	// balena entities.
	ErrNoSupervisor = errors.New("balena: no supervisor API (BALENA_SUPERVISOR_ADDRESS and BALENA_SUPERVISOR_API_KEY are not set)")
	// ErrUpdatesLocked matches an *APIError for 423 Locked: the supervisor
	// refused because an update lock is held (this agent's while it is
	// live, or another service's). Pass force to override it.
	ErrUpdatesLocked = errors.New("balena: updates are locked")
	// ErrUnauthorized matches an *APIError for 401: the API key was refused.
	ErrUnauthorized = errors.New("balena: supervisor API key refused")
)

// APIError is a supervisor answer other than the documented success.
type APIError struct {
	Method, Path string // the request, without the API key
	Status       int
	// Message is the supervisor's explanation: "message" or "Error" of its
	// JSON answer, or its text answer.
	Message string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("balena: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" && e.Message != http.StatusText(e.Status) {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, ErrUpdatesLocked) and errors.Is(err,
// ErrUnauthorized) work.
func (e *APIError) Is(target error) bool {
	return (target == ErrUpdatesLocked && e.Status == http.StatusLocked) ||
		(target == ErrUnauthorized && e.Status == http.StatusUnauthorized)
}

// Client calls the balena supervisor's HTTP API for this service. Its
// methods take their deadline from ctx: the supervisor answers reads at
// once, but a restart or reboot answers after it has stopped the services
// (the balena SDK waits 50 s for those).
type Client struct {
	base    *url.URL
	key     secret.Secret
	appID   int
	service string
	hc      *http.Client
	log     *slog.Logger
}

// New returns a client for the supervisor named in cfg, or ErrNoSupervisor
// when cfg has no supervisor API. hc nil means a client that never uses a
// proxy (HTTP_PROXY must not see the key: the supervisor is on the device);
// log nil means no logs.
func New(cfg Config, hc *http.Client, log *slog.Logger) (*Client, error) {
	if !cfg.SupervisorAPI() {
		return nil, ErrNoSupervisor
	}
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("balena: supervisor address must be an http:// URL, not %q", cfg.Address)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		hc = &http.Client{Transport: t}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: u, key: cfg.APIKey, appID: cfg.AppID, service: cfg.ServiceName, hc: hc, log: log}, nil
}

// Ping checks that the supervisor answers (GET /ping, which needs no key).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.call(ctx, http.MethodGet, "/ping", nil, false, http.StatusOK)
	return err
}

// Device reads GET /v1/device.
func (c *Client) Device(ctx context.Context) (Device, error) {
	body, err := c.call(ctx, http.MethodGet, "/v1/device", nil, true, http.StatusOK)
	if err != nil {
		return Device{}, err
	}
	d, err := parseDevice(body)
	if err != nil {
		return Device{}, fmt.Errorf("balena: GET /v1/device: %w", err)
	}
	return d, nil
}

// App reads this app's entry of GET /v2/applications/state (keyed by app
// name; the one with Config.AppID, or the only one when AppID is unknown).
// ok is false when the supervisor lists no such app.
func (c *Client) App(ctx context.Context) (app App, ok bool, err error) {
	body, err := c.call(ctx, http.MethodGet, "/v2/applications/state", nil, true, http.StatusOK)
	if err != nil {
		return App{}, false, err
	}
	var apps map[string]App
	if err := json.Unmarshal(body, &apps); err != nil {
		return App{}, false, fmt.Errorf("balena: GET /v2/applications/state: %w", err)
	}
	for name, a := range apps {
		if a.AppID == c.appID || (c.appID == 0 && len(apps) == 1) {
			a.Name = name
			return a, true, nil
		}
	}
	return App{}, false, nil
}

// State reads the device and this app's target release. A supervisor
// without /v2/applications/state (older than v7.12, answering 404) gives a
// State without a target.
func (c *Client) State(ctx context.Context) (State, error) {
	d, err := c.Device(ctx)
	if err != nil {
		return State{}, err
	}
	s := State{Device: d}
	app, ok, err := c.App(ctx)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return s, nil
	}
	if err != nil {
		return State{}, err
	}
	if ok {
		s.TargetCommit, s.UpdateStatus = app.Commit, app.UpdateStatus
		sum, n := 0, 0
		for _, svc := range app.Services {
			if svc.DownloadProgress != nil && *svc.DownloadProgress < 100 {
				sum += *svc.DownloadProgress
				n++
			}
		}
		if n > 0 {
			p := sum / n
			s.TargetProgress = &p
		}
	}
	return s, nil
}

// Update asks the supervisor to check for a new release now (POST
// /v1/update). With force it overrides update locks, this agent's included,
// and installs the release even while live. triggered is false when the
// supervisor ignored the request (202: instant updates are switched off and
// force was not given); it then finds the release at its next poll.
func (c *Client) Update(ctx context.Context, force bool) (triggered bool, err error) {
	body := map[string]bool{"force": force}
	resp, err := c.do(ctx, http.MethodPost, "/v1/update", body, true)
	if err != nil {
		return false, err
	}
	switch resp.status {
	case http.StatusNoContent:
		return true, nil
	case http.StatusAccepted:
		return false, nil
	}
	return false, c.redact(resp.err())
}

// Reboot asks the supervisor to reboot the device (POST /v1/reboot). It
// stops the services first and refuses with ErrUpdatesLocked while an update
// lock is held, unless force.
func (c *Client) Reboot(ctx context.Context, force bool) error {
	_, err := c.call(ctx, http.MethodPost, "/v1/reboot", map[string]bool{"force": force}, true, http.StatusAccepted)
	return err
}

// Blink flashes the device's LED for 15 s (POST /v1/blink), to find it.
func (c *Client) Blink(ctx context.Context) error {
	_, err := c.call(ctx, http.MethodPost, "/v1/blink", nil, true, http.StatusOK)
	return err
}

// RestartService asks the supervisor to restart this service (POST
// /v2/applications/<BALENA_APP_ID>/restart-service {"serviceName":
// <BALENA_SERVICE_NAME>}): the container is removed and created again, so
// this process gets SIGTERM and the call may end with an error from the
// connection closing under it. The supervisor takes the update lock first
// and refuses with ErrUpdatesLocked while it is held, unless force.
func (c *Client) RestartService(ctx context.Context, force bool) error {
	if c.appID == 0 || c.service == "" {
		return errors.New("balena: restart-service needs BALENA_APP_ID and BALENA_SERVICE_NAME")
	}
	body := map[string]any{"serviceName": c.service, "force": force}
	_, err := c.call(ctx, http.MethodPost, "/v2/applications/"+strconv.Itoa(c.appID)+"/restart-service", body, true, http.StatusOK)
	return err
}

type response struct {
	method, path string
	status       int
	body         []byte
}

func (r response) err() error {
	return &APIError{Method: r.method, Path: r.path, Status: r.status, Message: message(r.body)}
}

// call does one request and returns the body when the status is want.
func (c *Client) call(ctx context.Context, method, path string, body any, auth bool, want int) ([]byte, error) {
	resp, err := c.do(ctx, method, path, body, auth)
	if err != nil {
		return nil, err
	}
	if resp.status != want {
		return nil, c.redact(resp.err())
	}
	return resp.body, nil
}

// maxBody bounds what is read of an answer: /v1/device and
// /v2/applications/state are a few KiB.
const maxBody = 1 << 20

func (c *Client) do(ctx context.Context, method, path string, body any, auth bool) (response, error) {
	u := *c.base
	u.Path += path
	if auth {
		u.RawQuery = url.Values{"apikey": {c.key.Reveal()}}.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, fmt.Errorf("balena: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return response{}, c.redact(fmt.Errorf("balena: %s %s: %w", method, path, err))
	}
	if body != nil {
		// The supervisor reads the body only as JSON (express.json); without
		// this header force would silently be false.
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		// A *url.Error prints the URL, and with it the key: keep only the
		// cause (which still matches context.DeadlineExceeded and the like).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		c.log.Debug("supervisor request failed", "method", method, "path", path, "err", c.redact(err))
		return response{}, c.redact(fmt.Errorf("balena: %s %s: %w", method, path, err))
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return response{}, c.redact(fmt.Errorf("balena: %s %s: reading the answer: %w", method, path, err))
	}
	c.log.Debug("supervisor request", "method", method, "path", path, "status", res.StatusCode, "took", time.Since(start).Round(time.Millisecond))
	return response{method: method, path: path, status: res.StatusCode, body: data}, nil
}

// message picks the supervisor's explanation out of an error answer: its
// JSON answers carry it as "message" ({"status":"failed","message":…}) or
// "Error" ({"Data":"","Error":…} from /v1/reboot), others are text.
func message(body []byte) string {
	var m struct {
		Message string `json:"message"`
		Error   string `json:"Error"`
	}
	if json.Unmarshal(body, &m) == nil {
		if m.Message != "" {
			return clip(m.Message)
		}
		if m.Error != "" {
			return clip(m.Error)
		}
	}
	return clip(string(body))
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// redact masks the API key (as is, and as escaped in a URL) in err's text,
// should any cause carry it. The error still unwraps to its causes.
func (c *Client) redact(err error) error {
	if err == nil || c.key == "" {
		return err
	}
	key := c.key.Reveal()
	r := strings.NewReplacer(key, "****", url.QueryEscape(key), "****")
	if r.Replace(err.Error()) == err.Error() {
		return err
	}
	return redacted{err: err, r: r}
}

type redacted struct {
	err error
	r   *strings.Replacer
}

func (e redacted) Error() string { return e.r.Replace(e.err.Error()) }
func (e redacted) Unwrap() error { return e.err }
