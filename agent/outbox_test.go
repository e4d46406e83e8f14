package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// slowBroker stands in for paho while it waits for PUBACKs: every publish
// blocks until the test lets it go.
type slowBroker struct {
	mu   sync.Mutex
	got  []string
	gate chan struct{}
}

func (b *slowBroker) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	select {
	case <-b.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.got = append(b.got, topic+"="+string(payload))
	b.mu.Unlock()
	return nil
}

func (b *slowBroker) sent() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// While the broker keeps up, every message goes out, in order; once it
// falls behind, a retained topic keeps only its newest payload and the
// queue stays bounded; nothing waits on put.
func TestOutboxOrderAndCoalescing(t *testing.T) {
	b := &slowBroker{gate: make(chan struct{})}
	o := newOutbox(b, time.Minute, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.run(ctx) }()
	defer func() { cancel(); <-done }()

	// Few messages: all of them, retained or not, in order.
	o.put("state", []byte("connecting"), true)
	o.put("response", []byte("ok"), false)
	o.put("state", []byte("live"), true)
	for i := 0; i < 3; i++ {
		b.gate <- struct{}{}
	}
	o.flush(time.Second)
	if got, want := b.sent(), []string{"state=connecting", "response=ok", "state=live"}; !slices.Equal(got, want) {
		t.Fatalf("sent %v, want %v", got, want)
	}

	// The broker stalls; the loop goes on putting (it never blocks).
	start := time.Now()
	for i := 0; i < 1000; i++ {
		o.put("state", []byte(fmt.Sprint("s", i)), true)
		o.put(fmt.Sprint("other/", i%4), []byte(fmt.Sprint(i)), true)
		o.put("event", []byte(fmt.Sprint("e", i)), false)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("3000 puts took %s with the broker stalled", d)
	}
	o.mu.Lock()
	queued := len(o.order)
	o.mu.Unlock()
	if queued > outboxLimit+outboxCoalesce+8 {
		t.Errorf("%d messages queued while the broker stalls, want a bound", queued)
	}
	close(b.gate) // the broker catches up
	o.flush(5 * time.Second)
	got := b.sent()[3:]
	var last string
	states, events := 0, 0
	for _, m := range got {
		switch {
		case len(m) > 6 && m[:6] == "state=":
			states++
			last = m
		case len(m) > 6 && m[:6] == "event=":
			events++
		}
	}
	if last != "state=s999" {
		t.Errorf("last state sent %q, want the newest, state=s999", last)
	}
	if states > outboxCoalesce+1 {
		t.Errorf("%d state messages sent for 1000 puts while the broker was stalled, want the backlog coalesced", states)
	}
	if events == 0 || events > outboxLimit {
		t.Errorf("%d events sent, want the newest ones, at most %d", events, outboxLimit)
	}
	if !slices.Contains(got, "event=e999") || slices.Contains(got, "event=e0") {
		t.Errorf("the events kept are not the newest: %v ... %v", got[:3], got[len(got)-3:])
	}
}

// flush returns once what was queued is out, or when its time is up.
func TestOutboxFlush(t *testing.T) {
	b := &slowBroker{gate: make(chan struct{})}
	o := newOutbox(b, time.Minute, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.run(ctx) }()
	defer func() { cancel(); <-done }()
	o.flush(time.Second) // nothing queued: at once
	o.put("a", []byte("1"), false)
	start := time.Now()
	o.flush(200 * time.Millisecond)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("flush returned after %s with a message stuck", d)
	}
	close(b.gate)
	o.flush(time.Second)
	if got := b.sent(); !slices.Equal(got, []string{"a=1"}) {
		t.Errorf("sent %v", got)
	}
}
