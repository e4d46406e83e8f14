package agent

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff gives stepped retry delays, as go2rtc does: a few quick retries,
// then longer ones up to a cap, each with ±20 % jitter so a fleet of Pis
// doesn't reconnect in lockstep.
type Backoff struct {
	Steps []time.Duration
	n     int
	rand  func() float64
}

// NewBackoff returns the default steps: 1 s ×3, 2 s, 5 s, then 10 s. The cap
// is low on purpose: after an outage a server often refuses the stream name
// ("already publishing") until it drops the stale session, and the
// destination should follow within seconds once it does. A server that is
// down altogether costs nothing: it is only probed.
func NewBackoff() *Backoff {
	return &Backoff{Steps: []time.Duration{time.Second, time.Second, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}, rand: rand.Float64}
}

// Next returns the next delay.
func (b *Backoff) Next() time.Duration {
	d := b.Steps[min(b.n, len(b.Steps)-1)]
	b.n++
	j := 0.8 + 0.4*b.rand()
	return time.Duration(float64(d) * j)
}

// Reset starts again from the first step.
func (b *Backoff) Reset() { b.n = 0 }

// Reachable tells whether a TCP connection to host:port can be opened now
// (nil) or why not.
type Reachable func(ctx context.Context, host string, port int) error

// waitRetry waits d, but returns early when the server, seen unreachable
// during the wait, becomes reachable again: the outage is over, so the
// sender retries at once instead of sitting out its backoff. It returns
// false when ctx ends.
func waitRetry(ctx context.Context, d time.Duration, probe Reachable, host string, port int, every time.Duration) bool {
	sawDown := false
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-tick.C:
			if probe == nil {
				continue
			}
			up := probe(ctx, host, port) == nil
			if !up {
				sawDown = true
			} else if sawDown {
				return true
			}
		}
	}
}

// waitReachable probes until the server accepts TCP (true) or ctx ends
// (false): every `every` for the first minute, then every second, so a
// server that is gone for long is not hammered.
func waitReachable(ctx context.Context, probe Reachable, host string, port int, every time.Duration) bool {
	start := time.Now()
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		if probe(ctx, host, port) == nil {
			return true
		}
		next := every
		if time.Since(start) > time.Minute {
			next = max(every, time.Second)
		}
		t.Reset(next)
	}
}

// sleepCtx waits d; it returns false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
