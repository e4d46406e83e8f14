package agent

import (
	"context"

	"github.com/makercast/makercast/internal/media/graph"
)

// Media opens cameras. internal/media implements it with GStreamer.
type Media interface {
	OpenCapture(ctx context.Context, spec graph.CaptureSpec) (Capture, error)
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
	// Close stops the capture; every Send must have returned.
	Close()
	Resolved() graph.Resolved
}

// Publisher sends MQTT messages. internal/mqtt implements it with paho.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
}
