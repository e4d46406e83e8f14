package agent

import (
	"context"
	"time"
)

// Media opens cameras. internal/media implements it with GStreamer.
type Media interface {
	OpenCapture(ctx context.Context, spec CaptureSpec) (Capture, error)
	// AssembleTimelapse encodes numbered JPEG frames (pattern like
	// dir/frame-%06d.jpg) into an MP4 at out, whole or not at all.
	AssembleTimelapse(ctx context.Context, pattern string, fps int, out string) error
}

// Capture is one open camera: one encoding that outputs attach to.
type Capture interface {
	// Attach feeds one output from a free slot until ctx ends (nil) or the
	// output or the capture fails (the error, never holding a secret).
	// The hooks are called on the caller's goroutine.
	Attach(ctx context.Context, out Output, hooks OutputHooks) error
	// Ready is closed once the camera delivers encoded frames.
	Ready() <-chan struct{}
	// Done is closed when the capture fails; Err then says why.
	Done() <-chan struct{}
	Err() error
	// Stats are the capture's running frame counters.
	Stats() CaptureStats
	// Snapshot encodes the newest raw frame as JPEG, without touching the
	// stream.
	Snapshot(opts SnapshotOptions) (Picture, error)
	// Close stops the capture; every Attach and Snapshot must have
	// returned.
	Close()
	Resolved() Resolved
}

// OutputHooks are what an attached output reports while it runs.
type OutputHooks struct {
	// Live says whether media flows to a peer now: true once an RTMP
	// server takes the stream or an SRT caller connects; an SRT listener
	// goes back to false when its last caller leaves. detail says what a
	// not-live output waits for ("waiting for a caller on port 9000").
	Live func(live bool, detail string)
	// Progress reports the output's counters, about once a second.
	Progress func(OutputProgress)
	// Segment reports a recording's file opened and closed.
	Segment func(Segment)
}

// OutputProgress are an output's running counters.
type OutputProgress struct {
	// Bytes were handed to the network (or written to the file) by this
	// sender.
	Bytes uint64
	// Peers is how many SRT callers a listener feeds (0 for other kinds).
	Peers int
}

// Segment is one file of a recording.
type Segment struct {
	Path string
	// Start is when its first frame was captured; Duration is its length
	// (0 while it is open).
	Start    time.Time
	Duration time.Duration
	Bytes    int64
	// Closed is false when the file was opened, true when it is complete.
	Closed bool
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

// Recordings are the recorded segments on disk (internal/store); their
// retention is decided here (recording.go).
type Recordings interface {
	// Files lists every segment of every camera, open ones included.
	Files() ([]RecordedFile, error)
	Remove(path string) error
	// Free is what the disk holding them has left, in bytes.
	Free() (int64, error)
}

// RecordedFile is one segment on disk.
type RecordedFile struct {
	Path     string
	Size     int64
	Modified time.Time
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
