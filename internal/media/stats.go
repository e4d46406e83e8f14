package media

import (
	"sync/atomic"

	"github.com/go-gst/go-gst/gst"

	"github.com/makercast/makercast/internal/media/graph"
)

// counters are updated from GStreamer's streaming threads (atomics only).
type counters struct {
	in, out, encoded atomic.Uint64
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

// instrument counts frames into and out of the capture queue (the
// difference is what the leaky queue dropped) and out of the parser.
func (c *Capture) instrument() {
	if q := c.p.els["capq"]; q != nil {
		countBuffers(q.GetStaticPad("sink"), &c.count.in)
		countBuffers(q.GetStaticPad("src"), &c.count.out)
	}
	countBuffers(c.p.els[graph.VideoParse].GetStaticPad("src"), &c.count.encoded)
}

// Stats returns the capture's counters.
func (c *Capture) Stats() graph.CaptureStats {
	s := graph.CaptureStats{Encoded: c.count.encoded.Load()}
	in, out := c.count.in.Load(), c.count.out.Load()
	if c.p.els["capq"] == nil { // passthrough: the camera's H.264 is the frames
		in, out = s.Encoded, s.Encoded
	}
	s.Frames = in
	if in > out {
		s.Dropped = in - out
	}
	if q := c.p.els["encq"]; q != nil {
		if v, err := q.GetProperty("current-level-buffers"); err == nil {
			if n, ok := v.(uint); ok {
				s.QueueLevel = int(n)
			}
		}
	}
	return s
}
