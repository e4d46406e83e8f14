package agent

import (
	"context"

	"github.com/makercast/makercast/internal/media/graph"
)

// Media opens cameras. internal/media implements it with GStreamer.
type Media interface {
	OpenCapture(ctx context.Context, spec graph.CaptureSpec) (Capture, error)
	// AssembleTimelapse encodes numbered JPEG frames (pattern like
	// dir/frame-%06d.jpg) into an MP4 at out, whole or not at all.
	AssembleTimelapse(ctx context.Context, pattern string, fps int, out string) error
}

// Store keeps media files in a directory with a size budget
// (internal/store). Paths are relative to it.
type Store interface {
	Write(rel string, data []byte) (path string, err error)
	MkdirAll(rel string) error
	Path(rel string) (string, error)
	Added(path string)
	RemoveAll(rel string) error
	Prune(rel string, keep int) error
	List(rel string) (dirs, files []string, err error)
}

// Capture is one running camera; destinations attach to it.
type Capture interface {
	// Send runs one destination until ctx ends (nil) or it fails.
	Send(ctx context.Context, t graph.Target, hooks graph.SendHooks) error
	// Ready is closed once the camera delivers encoded frames.
	Ready() <-chan struct{}
	// Done is closed when the capture fails; Err then says why.
	Done() <-chan struct{}
	Err() error
	// Stats are the capture's running frame counters.
	Stats() graph.CaptureStats
	// Snapshot encodes the newest raw frame as JPEG, without touching the
	// stream.
	Snapshot(opts graph.JPEG) (graph.Picture, error)
	// Close stops the capture; every Send and Snapshot must have returned.
	Close()
	Resolved() graph.Resolved
}

// Publisher sends MQTT messages. internal/mqtt implements it with paho.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
}

// Discovery announces the device to a home-automation system (Home
// Assistant's MQTT discovery; package homeassistant implements it). Nil
// disables discovery.
type Discovery interface {
	// Configs returns the retained config messages for the model. An empty
	// result (discovery switched off) clears every config seen on the broker.
	Configs(m Model) []Message
	// Filter is the subscription matching every config topic of this device,
	// so that ones left over from an earlier configuration can be cleared.
	Filter() string
	// Owns reports whether topic is one of this device's config topics.
	Owns(topic string) bool
	// BirthTopic is where the system announces itself: on "online" the
	// configs are published again.
	BirthTopic() string
}

// Model is what discovery is built from.
type Model struct {
	Cameras      []string
	Destinations []ModelDestination
	// Fleet is true under a fleet manager (balena): its update entity and
	// buttons.
	Fleet bool
}

// ModelDestination is one destination and the camera feeding it.
type ModelDestination struct{ Name, Camera string }

// Health reads the device's health (package telemetry): a JSON-ready report
// and the problems active now ("under_voltage", "throttled", ...). It may
// block (it runs vcgencmd), so the agent calls it off its loop.
type Health interface {
	ReadHealth(ctx context.Context) (report any, problems []string)
}

// StateFile keeps a small document across restarts and power cuts
// (internal/statefile): Save replaces it whole, on disk when it returns.
// Load gives nil when there is none.
type StateFile interface {
	Load() ([]byte, error)
	Save(data []byte) error
}
