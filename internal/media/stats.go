package media

import (
	"sync/atomic"

	"github.com/go-gst/go-gst/gst"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
)

// counters are updated from GStreamer's streaming threads (atomics only).
type counters struct {
	dropped, encoded atomic.Uint64
}

func countBuffers(pad *gst.Pad, n *atomic.Uint64) {
	if pad == nil {
		return
	}
	pad.AddProbe(gst.PadProbeTypeBuffer, func(*gst.Pad, *gst.PadProbeInfo) gst.PadProbeReturn {
		n.Add(1)
		return gst.PadProbeOK
	})
}

// instrument counts encoded frames (one probe, out of the parser) and the
// frames the leaky capture queue throws away (its overrun signal fires once
// per frame it drops), so that the per-frame cost is one callback.
func (c *Capture) instrument() {
	if q := c.p.els["capq"]; q != nil {
		_, _ = q.Connect("overrun", func() { c.count.dropped.Add(1) })
	}
	countBuffers(c.p.els[graph.VideoParse].GetStaticPad("src"), &c.count.encoded)
}

// cameraFrames counts the frames that came from the camera: those the leaky
// capture queue dropped plus those it passed on, as counted by the rate
// adapter when the camera's rate is being adapted, else as they leave the
// encoder (the few frames in flight in between are not counted yet). It
// reads counters only, never a pad: cheap enough for a watchdog's ticker.
func (c *Capture) cameraFrames() uint64 {
	dropped := c.count.dropped.Load()
	if r := c.p.els[graph.RateAdapter]; r != nil {
		if v, err := r.GetProperty("in"); err == nil {
			if n, ok := v.(uint64); ok {
				return n + dropped
			}
		}
	}
	return c.count.encoded.Load() + dropped
}

// Stats returns the capture's counters. Frames are the camera's (see
// cameraFrames); Encoded differs from them when the rate is adapted.
func (c *Capture) Stats() agent.CaptureStats {
	s := agent.CaptureStats{Encoded: c.count.encoded.Load(), Dropped: c.count.dropped.Load()}
	s.Frames = c.cameraFrames()
	if q := c.p.els["encq"]; q != nil {
		if v, err := q.GetProperty("current-level-buffers"); err == nil {
			if n, ok := v.(uint); ok {
				s.QueueLevel = int(n)
			}
		}
	}
	return s
}
