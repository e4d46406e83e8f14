package agent

import (
	"bytes"
	"encoding/json"
	"math"
	"time"
)

// The state the agent publishes is derived from its parts in one place:
// after every step, documents() renders every retained topic, and
// publishChanges sends only those whose bytes changed since they were last
// published (and clears the topics that are gone: a removed destination).

// shown is what the retained topics last held.
type shown struct {
	docs map[string][]byte
	// cleared are the topics emptied since (a removed destination, a
	// closed camera's rates): cleared again after a reconnect, in case the
	// broker was away when they were.
	cleared map[string]bool
	// resend: the broker session is new (a reconnect): send everything
	// again at the next step, whether it changed or not.
	resend bool
}

func (s *shown) resendAll() { s.resend = true }

// document is one retained topic's payload.
type document struct {
	topic   string
	payload []byte
}

// publishChanges publishes the documents that changed.
func (a *Agent) publishChanges() {
	docs := a.documents()
	now := make(map[string]bool, len(docs))
	if a.shown.resend {
		for topic := range a.shown.cleared {
			a.out.put(topic, nil, true)
		}
	}
	for _, d := range docs {
		now[d.topic] = true
		delete(a.shown.cleared, d.topic)
		if old, ok := a.shown.docs[d.topic]; ok && !a.shown.resend && bytes.Equal(old, d.payload) {
			continue
		}
		a.shown.docs[d.topic] = d.payload
		a.out.put(d.topic, d.payload, true)
	}
	for topic := range a.shown.docs {
		if !now[topic] {
			delete(a.shown.docs, topic)
			a.shown.cleared[topic] = true
			a.out.put(topic, nil, true) // cleared: a removed destination, a closed camera's rates
		}
	}
	a.shown.resend = false
}

// documents renders every retained document, in a stable order: each
// camera's, each destination's, then the device's.
func (a *Agent) documents() []document {
	var docs []document
	add := func(topic string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			a.log.Error("encode state", "topic", topic, "err", err)
			return
		}
		docs = append(docs, document{topic, b})
	}
	t := a.s.Topics
	a.cams.each(func(c *camera) {
		n := c.cfg.Name
		docs = append(docs, document{t.CameraStream(n), []byte(onOff(a.streaming(n)))})
		add(t.CameraState(n), a.cameraState(c))
		if c.capture.stats != nil {
			add(t.CameraStats(n), c.capture.stats)
		}
		add(t.CameraTimelapse(n), c.timelapse.view())
		if a.s.Recording.Dir != "" {
			add(t.CameraRecording(n), c.recording.view())
		}
	})
	a.dests.each(func(d *destination) { add(t.DestinationState(d.cfg.Name), destinationState(d)) })
	add(t.State(), a.deviceState())
	if h := a.parts.health.report; h != nil {
		add(t.Health(), h)
	}
	if u := a.parts.fleet.release; u != nil {
		add(t.FleetUpdate(), u)
	}
	return docs
}

// publish queues a message that is not state (an answer, an event).
func (a *Agent) publish(topic string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		a.log.Error("encode message", "topic", topic, "err", err)
		return
	}
	a.out.put(topic, b, false)
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

// DestinationState is the retained JSON of one destination.
type DestinationState struct {
	Switch string `json:"switch"`
	State  string `json:"state"`
	// Detail says what a connecting destination waits for (an SRT
	// listener: a caller).
	Detail     string `json:"detail,omitempty"`
	Camera     string `json:"camera"`
	URL        string `json:"url"`
	LastError  string `json:"last_error"`
	Reconnects int    `json:"reconnects"`
	BytesSent  uint64 `json:"bytes_sent"`
	LiveSince  string `json:"live_since,omitempty"`
	LiveS      int64  `json:"live_s,omitempty"`
	// BitrateKbps is measured from the bytes written to the server.
	BitrateKbps float64 `json:"bitrate_kbps"`
	RetryInMS   int64   `json:"retry_in_ms,omitempty"`
	// Peers: the SRT callers a listener feeds.
	Peers int `json:"peers,omitempty"`
}

// CameraState is the retained JSON of one camera.
type CameraState struct {
	Stream    string `json:"stream"`
	Capture   string `json:"capture"`
	Encoder   string `json:"encoder,omitempty"`
	LastError string `json:"last_error"`
	// PluggedIn is false while a detected camera is unplugged.
	PluggedIn bool `json:"plugged_in"`
	// Device is the camera's node now (or the test pattern); Mode is the
	// mode it was opened in ("mjpeg 640x480@15 → 1280x720@30"); Mic the
	// ALSA device of its sound ("" for a test tone or a silent track).
	Device string `json:"device,omitempty"`
	Mode   string `json:"mode,omitempty"`
	Mic    string `json:"mic,omitempty"`
}

// DeviceState is the retained JSON of the whole device.
type DeviceState struct {
	Cameras      map[string]CameraState      `json:"cameras"`
	Destinations map[string]DestinationState `json:"destinations"`
}

func destinationState(d *destination) DestinationState {
	s := DestinationState{
		Switch: onOff(d.on), State: d.state, Detail: d.detail, Camera: d.cfg.Camera, URL: d.cfg.Redacted(),
		LastError: d.lastError, Reconnects: d.reconnects, BytesSent: d.shown.bytes, RetryInMS: d.retryIn.Milliseconds(),
		LiveS: d.shown.liveS, BitrateKbps: math.Round(d.shown.kbps*10) / 10, Peers: d.peers,
	}
	if !d.liveSince.IsZero() {
		s.LiveSince = d.liveSince.UTC().Format(time.RFC3339)
	}
	return s
}

// streaming: any destination of the camera is switched on.
func (a *Agent) streaming(cam string) bool {
	for _, d := range a.dests.of(cam) {
		if d.on {
			return true
		}
	}
	return false
}

func (a *Agent) cameraState(c *camera) CameraState {
	st := c.capture
	s := CameraState{Stream: onOff(a.streaming(c.cfg.Name)), Capture: st.state, Encoder: st.encoder, LastError: st.lastError,
		PluggedIn: c.dev.present, Device: c.dev.spec.Video.Device, Mode: st.mode, Mic: c.dev.spec.Audio.Device}
	if s.Device == "" {
		s.Device = string(c.dev.spec.Video.Source)
	}
	return s
}

func (a *Agent) deviceState() DeviceState {
	s := DeviceState{Cameras: map[string]CameraState{}, Destinations: map[string]DestinationState{}}
	a.cams.each(func(c *camera) { s.Cameras[c.cfg.Name] = a.cameraState(c) })
	a.dests.each(func(d *destination) { s.Destinations[d.cfg.Name] = destinationState(d) })
	return s
}
