package balena_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/balena"
	"github.com/makercast/makercast/internal/balena/balenatest"
)

// receive waits for the next delivered state.
func receive(t *testing.T, states <-chan balena.State) balena.State {
	t.Helper()
	select {
	case s := <-states:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no state delivered")
		return balena.State{}
	}
}

func quiet(t *testing.T, states <-chan balena.State, d time.Duration) {
	t.Helper()
	select {
	case s := <-states:
		t.Fatalf("unexpected state delivered: %+v", s)
	case <-time.After(d):
	}
}

func TestPoller(t *testing.T) {
	c, sup, logs := newClient(t, balenatest.Options{})
	const next = "217d55237092995e4576367e529ebb03"
	states := make(chan balena.State, 16)
	p := balena.NewPoller(c, func(s balena.State) {
		select { // as the agent does: never block the poller
		case states <- s:
		default:
		}
	}, slog.New(slog.NewTextHandler(logs, nil)))
	p.Every = 30 * time.Millisecond
	p.Busy = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	first := receive(t, states)
	if first.UpdateAvailable() || first.Commit == "" {
		t.Fatalf("first state %+v", first)
	}
	// Nothing changes: nothing is delivered, though reads go on.
	n := len(sup.Requested("GET", "/v1/device"))
	quiet(t, states, 150*time.Millisecond)
	if len(sup.Requested("GET", "/v1/device")) <= n {
		t.Fatal("the poller stopped reading")
	}

	// A release appears and downloads.
	pct := 30
	sup.SetTarget(&balenatest.Target{Commit: next, UpdateStatus: "downloading", Progress: &pct, ServiceStatus: "Downloading"})
	s := receive(t, states)
	if !s.InProgress() || s.Percentage() == nil || *s.Percentage() != 30 {
		t.Fatalf("downloading state %+v", s)
	}

	// The supervisor goes away (it restarts when it updates itself): no
	// state, one warning; back: one info, and the state again only if it
	// changed.
	sup.Fail("GET", "/v1/device", 503, `{"status":"failed","message":"restarting"}`)
	time.Sleep(150 * time.Millisecond)
	sup.Fail("GET", "/v1/device", 0, "")
	pct = 90
	sup.SetTarget(&balenatest.Target{Commit: next, UpdateStatus: "downloading", Progress: &pct, ServiceStatus: "Downloading"})
	s = receive(t, states)
	if p := s.Percentage(); p == nil || *p != 90 {
		t.Fatalf("after the supervisor came back: %+v", s)
	}
	if got := strings.Count(logs.String(), "cannot read the device's state"); got != 1 {
		t.Errorf("%d warnings for one run of failures:\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), "balena supervisor answers again") {
		t.Errorf("recovery not logged:\n%s", logs)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestPollerRefresh(t *testing.T) {
	c, sup, _ := newClient(t, balenatest.Options{})
	states := make(chan balena.State, 16)
	p := balena.NewPoller(c, func(s balena.State) { states <- s }, nil)
	p.Every = time.Hour // only Refresh reads again
	p.Busy = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	receive(t, states)

	sup.SetDevice(balenatest.Device{Commit: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Status: "Idle", UpdatePending: true})
	quiet(t, states, 100*time.Millisecond)
	p.Refresh()
	p.Refresh() // coalesced, never blocks
	if s := receive(t, states); !s.UpdatePending {
		t.Errorf("after Refresh: %+v", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestPollerTimeout(t *testing.T) {
	c, sup, _ := newClient(t, balenatest.Options{})
	release := sup.Stall("GET", "/v1/device")
	defer release()
	states := make(chan balena.State, 1)
	p := balena.NewPoller(c, func(s balena.State) { states <- s }, nil)
	p.Every, p.Timeout = 20*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	if n := len(sup.Requested("GET", "/v1/device")); n < 2 {
		t.Errorf("%d reads in 200 ms with a 50 ms timeout: a stalled read blocks the poller", n)
	}
	release()
	receive(t, states)
	cancel()
	<-done
}
