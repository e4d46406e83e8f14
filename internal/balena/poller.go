package balena

import (
	"context"
	"log/slog"
	"reflect"
	"time"
)

// Poller keeps the supervisor's State fresh: it reads it periodically and
// hands on every change.
type Poller struct {
	// Every is the time between reads while nothing happens; default 60 s.
	Every time.Duration
	// Busy is the time between reads while a release downloads or installs,
	// and for BusyFor after Refresh, so that progress shows; default 5 s.
	Busy time.Duration
	// BusyFor is how long reads stay at the Busy pace after Refresh (the
	// supervisor takes a moment to notice a new release); default 2 min.
	BusyFor time.Duration
	// Timeout bounds one read; default 10 s.
	Timeout time.Duration

	client   *Client
	onChange func(State)
	log      *slog.Logger
	refresh  chan struct{}
}

// NewPoller returns a poller reading through c and calling onChange with
// each new State. onChange runs on Run's goroutine and must not block: hand
// the state to the agent's loop and return (as agent.DevicesChanged does).
func NewPoller(c *Client, onChange func(State), log *slog.Logger) *Poller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if onChange == nil {
		onChange = func(State) {}
	}
	return &Poller{client: c, onChange: onChange, log: log, refresh: make(chan struct{}, 1)}
}

// Refresh asks for a read now and at the Busy pace for a while: after
// Update, or a restart or reboot that was refused. It never blocks.
func (p *Poller) Refresh() {
	select {
	case p.refresh <- struct{}{}:
	default: // one is pending already
	}
}

// Run reads the state at once and then every Every (Busy while a release
// downloads or installs, or after Refresh), and calls onChange with every
// state that differs from the last one it delivered, the first one always.
// A failed read is logged, once for a run of failures and again when reads
// work again, and retried at the next tick: the supervisor restarts when it
// updates itself. Run returns nil when ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	every, busy, busyFor, timeout := or(p.Every, time.Minute), or(p.Busy, 5*time.Second), or(p.BusyFor, 2*time.Minute), or(p.Timeout, 10*time.Second)
	var (
		last      State
		delivered bool
		failing   bool
		busyUntil time.Time
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.refresh:
			busyUntil = time.Now().Add(busyFor)
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		s, err := p.client.State(rctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil && !failing:
			failing = true
			p.log.Warn("cannot read the device's state from the balena supervisor; retrying", "err", err)
		case err == nil && failing:
			failing = false
			p.log.Info("balena supervisor answers again")
		}
		if err == nil && (!delivered || !reflect.DeepEqual(s, last)) {
			last, delivered = s, true
			p.onChange(s)
		}
		wait := every
		if (err == nil && s.InProgress()) || time.Now().Before(busyUntil) {
			wait = busy
		}
		timer.Reset(wait)
	}
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
