package testenv

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Msg is one message seen by a Watcher.
type Msg struct {
	Topic    string
	Payload  string
	Retained bool
	At       time.Time
}

// Watcher is an MQTT client for tests: it subscribes to a filter, records
// everything and lets a test wait for a message, as Home Assistant or
// mosquitto_sub would see it.
type Watcher struct {
	t  TB
	c  paho.Client
	mu sync.Mutex
	// all messages in arrival order
	msgs []Msg
	cond chan struct{}
}

var watcherSeq atomic.Int64

// Watch connects to url and subscribes to filter.
func Watch(t TB, url, filter string) *Watcher {
	t.Helper()
	w := &Watcher{t: t, cond: make(chan struct{})}
	opts := paho.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("test-watcher-%d-%d", time.Now().UnixNano(), watcherSeq.Add(1))).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetOrderMatters(true)
	opts.SetOnConnectHandler(func(c paho.Client) {
		c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
			w.mu.Lock()
			w.msgs = append(w.msgs, Msg{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained(), At: time.Now()})
			close(w.cond)
			w.cond = make(chan struct{})
			w.mu.Unlock()
		}).WaitTimeout(5 * time.Second)
	})
	w.c = paho.NewClient(opts)
	if tok := w.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("testenv: watcher connect: %v", tok.Error())
	}
	t.Cleanup(func() { w.c.Disconnect(100) })
	return w
}

// Publish sends a message (QoS 1) and waits for the broker's ack.
func (w *Watcher) Publish(topic string, payload []byte, retained bool) {
	w.t.Helper()
	tok := w.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		w.t.Fatalf("testenv: publish %s: %v", topic, tok.Error())
	}
}

// Messages returns a copy of everything seen so far.
func (w *Watcher) Messages() []Msg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Msg(nil), w.msgs...)
}

// Len is how many messages have been seen.
func (w *Watcher) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

// Last returns the latest payload on topic.
func (w *Watcher) Last(topic string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.msgs) - 1; i >= 0; i-- {
		if w.msgs[i].Topic == topic {
			return w.msgs[i].Payload, true
		}
	}
	return "", false
}

// WaitFrom waits for a message on topic, at index from or later, that
// matches; it returns the message and its index.
func (w *Watcher) WaitFrom(from int, topic string, match func(payload string) bool, within time.Duration) (Msg, int) {
	w.t.Helper()
	deadline := time.After(within)
	for {
		w.mu.Lock()
		for i := from; i < len(w.msgs); i++ {
			if w.msgs[i].Topic == topic && (match == nil || match(w.msgs[i].Payload)) {
				m := w.msgs[i]
				w.mu.Unlock()
				return m, i
			}
		}
		from = len(w.msgs)
		cond := w.cond
		w.mu.Unlock()
		select {
		case <-cond:
		case <-deadline:
			last, _ := w.Last(topic)
			w.t.Fatalf("testenv: no matching message on %s within %s (last: %q)", topic, within, last)
			return Msg{}, -1
		}
	}
}

// Wait waits for any message (from the start) on topic that matches.
func (w *Watcher) Wait(topic string, match func(payload string) bool, within time.Duration) Msg {
	w.t.Helper()
	m, _ := w.WaitFrom(0, topic, match, within)
	return m
}

// Contains matches payloads containing all the given substrings.
func Contains(subs ...string) func(string) bool {
	return func(p string) bool {
		for _, s := range subs {
			if !strings.Contains(p, s) {
				return false
			}
		}
		return true
	}
}

// Equals matches one exact payload.
func Equals(s string) func(string) bool { return func(p string) bool { return p == s } }
