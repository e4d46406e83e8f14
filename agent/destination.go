package agent

import (
	"regexp"
	"sort"
	"time"
)

// Destination is one network output fed by a camera: an RTMP(S) server or
// an SRT peer, switched on and off by name.
type Destination struct {
	Name   string
	Camera string // "": the first camera (configured, or found)
	Output Output
	// Runtime is true for destinations added over MQTT (not persisted).
	Runtime bool
}

// Redacted is the destination's URL with every secret masked: safe for logs
// and MQTT state.
func (d Destination) Redacted() string { return d.Output.Redacted() }

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ValidName reports whether s can name a camera or destination: it is used
// in MQTT topics and Home Assistant ids.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// destination is one destination's part of the agent's state. Only the loop
// touches it.
type destination struct {
	cfg Destination
	on  bool
	gen uint64 // of the current switch-on (see consumer)

	state      string
	detail     string // what a connecting output waits for
	lastError  string
	reconnects int
	retryIn    time.Duration
	liveSince  time.Time
	peers      int

	// The sender's byte count as last reported (at bytesAt), and what the
	// last stats tick made of it: the count, the bitrate and time live
	// shown until the next tick.
	bytes, prevBytes uint64
	bytesAt, prevAt  time.Time
	shown            shownStats
}

// shownStats are a live output's figures as of the last stats tick.
type shownStats struct {
	bytes uint64
	kbps  float64
	liveS int64
}

// switchOn switches the destination on (gen is the new generation) or off.
func (d *destination) switchOn(on bool, gen uint64) {
	if d.on == on {
		return
	}
	d.on = on
	if on {
		d.gen = gen
		d.state, d.detail, d.lastError, d.retryIn = StateConnecting, "", "", 0
		return
	}
	d.state, d.detail, d.retryIn, d.liveSince, d.peers = StateIdle, "", 0, time.Time{}, 0
	d.shown.kbps, d.shown.liveS = 0, 0
}

// changed applies what its sender reported.
func (d *destination) changed(ev outputChanged, now time.Time) {
	prev := d.state
	d.state, d.detail = ev.state, ev.detail
	switch ev.state {
	case StateLive:
		d.liveSince, d.lastError, d.retryIn = now, "", 0
		d.prevAt, d.shown = time.Time{}, shownStats{bytes: d.shown.bytes}
	case StateConnecting:
		if prev == StateLive { // an SRT listener's last caller left
			d.liveSince, d.shown.kbps, d.shown.liveS = time.Time{}, 0, 0
		}
	case StateRetrying, StateError:
		d.lastError, d.retryIn = ev.err, ev.retryIn
		d.liveSince, d.shown.kbps, d.shown.liveS, d.peers = time.Time{}, 0, 0, 0
		if prev == StateLive || prev == StateConnecting {
			d.reconnects++
		}
	}
}

// tick computes the figures shown until the next stats tick: the bitrate
// from the bytes sent since the last one, and the time live.
func (d *destination) tick(now time.Time) {
	if !d.on || d.state != StateLive {
		d.shown.kbps, d.shown.liveS = 0, 0
		return
	}
	if !d.prevAt.IsZero() && d.bytesAt.After(d.prevAt) && d.bytes >= d.prevBytes {
		d.shown.kbps = float64(d.bytes-d.prevBytes) * 8 / 1000 / d.bytesAt.Sub(d.prevAt).Seconds()
	}
	d.prevBytes, d.prevAt = d.bytes, d.bytesAt
	d.shown.bytes = d.bytes
	d.shown.liveS = int64(now.Sub(d.liveSince) / time.Second)
}

// destinationSet is every destination, by name, in name order.
type destinationSet struct {
	byName map[string]*destination
	order  []string
}

func (ds *destinationSet) get(name string) *destination { return ds.byName[name] }

func (ds *destinationSet) each(fn func(*destination)) {
	for _, n := range ds.order {
		fn(ds.byName[n])
	}
}

func (ds *destinationSet) add(d Destination) {
	ds.byName[d.Name] = &destination{cfg: d, state: StateIdle}
	ds.order = append(ds.order, d.Name)
	sort.Strings(ds.order)
}

func (ds *destinationSet) remove(name string) {
	delete(ds.byName, name)
	for i, n := range ds.order {
		if n == name {
			ds.order = append(ds.order[:i], ds.order[i+1:]...)
			return
		}
	}
}

// of lists the destinations a camera feeds, in order.
func (ds *destinationSet) of(cam string) []*destination {
	var out []*destination
	ds.each(func(d *destination) {
		if d.cfg.Camera == cam {
			out = append(out, d)
		}
	})
	return out
}

// anyOn reports whether any destination is switched on.
func (ds *destinationSet) anyOn() (string, bool) {
	for _, n := range ds.order {
		if ds.byName[n].on {
			return n, true
		}
	}
	return "", false
}
