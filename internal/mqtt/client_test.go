package mqtt

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// Against a real Mosquitto that goes away and comes back: publishing fails
// at once while it is away (nothing queued to be replayed stale), and the
// client reconnects, subscribes again and says online again by itself.
func TestReconnectResubscribeAndFailFastWhileAway(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	w := testenv.Watch(t, broker.URL, "dev/#")
	got := make(chan string, 16)
	var connects atomic.Int32
	c, err := New(Options{
		URL: broker.URL, ClientID: "mqtt-test", AvailabilityTopic: "dev/availability",
		Subscriptions: []string{"dev/cmd"},
		Handle: func(topic string, p []byte, _ bool) {
			select {
			case got <- string(p):
			default:
			}
		},
		OnConnect: func() { connects.Add(1) },
	}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	w.Wait("dev/availability", testenv.Equals(Online), 10*time.Second)
	w.Publish("dev/cmd", []byte("one"), false)
	if s := <-got; s != "one" {
		t.Fatalf("got %q", s)
	}

	broker.Stop()
	time.Sleep(300 * time.Millisecond) // the client notices the lost connection
	start := time.Now()
	err = c.Publish(context.Background(), "dev/state", []byte("x"), true)
	if !errors.Is(err, ErrNotConnected) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("publish while away: %v after %s, want ErrNotConnected at once", err, time.Since(start))
	}

	mark := w.Len()
	broker.Start()
	w.WaitFrom(mark, "dev/availability", testenv.Equals(Online), 20*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for connects.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if connects.Load() < 2 {
		t.Fatal("OnConnect not called after the reconnect")
	}
	w.Publish("dev/cmd", []byte("two"), false)
	select {
	case s := <-got:
		if s != "two" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not subscribed again after the reconnect")
	}
	// The stale message was not queued and replayed.
	for _, m := range w.Messages() {
		if m.Topic == "dev/state" {
			t.Fatalf("a publish refused while away was sent later: %+v", m)
		}
	}
	// A clean stop says offline (and is not the last will's doing: the
	// connection closes cleanly).
	mark = w.Len()
	cancel()
	wg.Wait()
	w.WaitFrom(mark, "dev/availability", testenv.Equals(Offline), 5*time.Second)
}
