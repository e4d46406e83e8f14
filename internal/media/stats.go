package media

import (
	"sync/atomic"

	"github.com/go-gst/go-gst/gst"

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

// Stats returns the capture's counters. Frames is encoded plus dropped
// (the few frames in flight between the two are not counted yet).
func (c *Capture) Stats() graph.CaptureStats {
	s := graph.CaptureStats{Encoded: c.count.encoded.Load(), Dropped: c.count.dropped.Load()}
	s.Frames = s.Encoded + s.Dropped
	if q := c.p.els["encq"]; q != nil {
		if v, err := q.GetProperty("current-level-buffers"); err == nil {
			if n, ok := v.(uint); ok {
				s.QueueLevel = int(n)
			}
		}
	}
	return s
}
