package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// outbox sends the agent's MQTT messages on its own goroutine, so that the
// loop never waits on the broker. Messages go out in the order they were
// queued. When the broker falls behind (a slow link: each publish waits for
// its PUBACK) and the queue grows, only the newest payload of a retained
// topic is kept: a newer one replaces the one still queued, so the backlog
// is bounded by the number of topics. Other messages (answers, events) are
// bounded too; while the broker is away they fail fast and are dropped
// (the retained state is sent again on every reconnect).
type outbox struct {
	pub     Publisher
	timeout time.Duration
	log     *slog.Logger

	mu     sync.Mutex
	order  []uint64          // queued messages, oldest first
	msgs   map[uint64]outMsg // by sequence number
	latest map[string]uint64 // retained topic → its newest queued message
	seq    uint64
	lost   int // messages dropped because the queue was full
	busy   bool
	idle   chan struct{} // closed and replaced whenever the queue runs empty
	wake   chan struct{}
}

type outMsg struct {
	topic    string
	payload  []byte
	retained bool
}

const (
	// outboxCoalesce: from this many messages waiting, a retained topic
	// keeps only its newest payload.
	outboxCoalesce = 16
	// outboxLimit bounds the messages waiting; beyond it the oldest
	// message that is not retained state is dropped.
	outboxLimit = 512
)

func newOutbox(pub Publisher, timeout time.Duration, log *slog.Logger) *outbox {
	return &outbox{pub: pub, timeout: timeout, log: log, msgs: map[uint64]outMsg{}, latest: map[string]uint64{},
		idle: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// put queues a message; it never blocks.
func (o *outbox) put(topic string, payload []byte, retained bool) {
	m := outMsg{topic: topic, payload: payload, retained: retained}
	o.mu.Lock()
	if seq, queued := o.latest[topic]; retained && queued && len(o.order) >= outboxCoalesce {
		o.msgs[seq] = m
	} else {
		if len(o.order) >= outboxLimit {
			o.dropOldestLocked()
		}
		o.seq++
		o.order = append(o.order, o.seq)
		o.msgs[o.seq] = m
		if retained {
			o.latest[topic] = o.seq
		}
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) dropOldestLocked() {
	for i, seq := range o.order {
		if !o.msgs[seq].retained {
			delete(o.msgs, seq)
			o.order = append(o.order[:i], o.order[i+1:]...)
			o.lost++
			return
		}
	}
}

// next takes the oldest queued message; ok is false when there is none.
func (o *outbox) next() (outMsg, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lost > 0 {
		o.log.Warn("MQTT messages dropped: more were waiting than the outbox holds", "dropped", o.lost)
		o.lost = 0
	}
	if len(o.order) == 0 {
		if o.busy {
			o.busy = false
			close(o.idle)
			o.idle = make(chan struct{})
		}
		return outMsg{}, false
	}
	seq := o.order[0]
	o.order = o.order[1:]
	m := o.msgs[seq]
	delete(o.msgs, seq)
	if o.latest[m.topic] == seq {
		delete(o.latest, m.topic)
	}
	o.busy = true
	return m, true
}

// run sends until ctx ends.
func (o *outbox) run(ctx context.Context) {
	for {
		for {
			m, ok := o.next()
			if !ok {
				break
			}
			pctx, cancel := context.WithTimeout(ctx, o.timeout)
			if err := o.pub.Publish(pctx, m.topic, m.payload, m.retained); err != nil {
				o.log.Debug("publish failed", "topic", m.topic, "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
	}
}

// flush waits until everything queued so far is sent, at most within.
func (o *outbox) flush(within time.Duration) {
	o.mu.Lock()
	empty := len(o.order) == 0 && !o.busy
	idle := o.idle
	o.mu.Unlock()
	if empty {
		return
	}
	select {
	case <-idle:
	case <-time.After(within):
		o.log.Warn("messages still queued at shutdown were not sent", "within", within)
	}
}
