package media

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-gst/go-gst/gst"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
)

// An attachment is one output fed from one slot of a capture: a sender
// pipeline of its own whose two proxysrcs take the slot's proxysinks, on
// the capture's clock. What differs per output kind is the sender: one file
// each (rtmp.go, srt.go, record.go).

// sender is one output kind's part of an attachment.
type sender interface {
	// graph is the sender pipeline; it holds proxysrcs named "vsrc" and
	// "asrc". Everything in it comes from the output's validated fields,
	// in typed properties.
	graph() graph.Graph
	// holds: the sender may hold its frames back again after it started
	// (an SRT listener without callers), so its gate stays.
	holds() bool
	// started runs once the pipeline is built, before it plays (signals,
	// bus element messages); g is the attachment's gate.
	started(p *pipeline, g *gate) error
	// poll reads what the sender did; it runs on the attach goroutine.
	poll(p *pipeline) progress
	// explain adds what the kind knows to a failure of its sender.
	explain(err error) error
	// end stops it cleanly when the output is switched off (an RTMP EOS
	// ends the broadcast at once, a recording closes its file: the
	// segments it closed are returned).
	end(p *pipeline, live bool) []agent.Segment
}

// progress is what a sender did so far.
type progress struct {
	bytes  uint64
	live   bool
	detail string // why not live
	peers  int
	// hold: nobody to send to (an SRT listener without callers): the slot's
	// frames are dropped, and sending starts again at a keyframe.
	hold bool
	// stalls: bytes must keep moving while live (a network output).
	stalls   bool
	segments []agent.Segment
	// err ends the attachment (a recording that cannot write).
	err error
}

// senderFor gives the sender of an output kind.
func senderFor(out agent.Output, c *Capture) (sender, error) {
	switch o := out.(type) {
	case agent.RTMPOutput:
		return &rtmpSender{o: o}, nil
	case agent.SRTOutput:
		return newSRTSender(o), nil
	case agent.RecordOutput:
		return newRecordSender(o, c)
	}
	return nil, fmt.Errorf("media: output kind %s is not supported", out.Kind())
}

// Attach feeds out from a free slot until ctx is done (returns nil), or the
// sender or the capture fails (returns the error). The returned error never
// contains a secret of the output.
func (c *Capture) Attach(ctx context.Context, out agent.Output, hooks agent.OutputHooks) error {
	s, err := senderFor(out, c)
	if err != nil {
		return err
	}
	slot, err := c.takeSlot()
	if err != nil {
		return err
	}
	defer c.releaseSlot(slot)
	secrets := out.Secrets()
	clean := func(s string) string {
		for _, secret := range secrets {
			s = redactWord(s, secret)
		}
		return s
	}
	redact := func(err error) error { return errors.New(clean(err.Error())) }

	p, err := newPipeline(out.Kind(), s.graph(), c.log)
	if err != nil {
		return redact(err)
	}
	p.clean = clean
	vsrc, asrc := p.els["vsrc"], p.els["asrc"]
	vps, aps := c.p.els[graph.SlotVideo(slot)], c.p.els[graph.SlotAudio(slot)]
	defer func() {
		p.close()
		_ = setObjectProp(vsrc, "proxysink", nil)
		_ = setObjectProp(asrc, "proxysink", nil)
	}()
	// proxysrc's own queue (its only child) is the slot's buffer: leaky, so
	// a slow or dead peer drops this sender's oldest frames and never
	// blocks the capture's tee.
	for i, src := range []*gst.Element{vsrc, asrc} {
		kids, err := gst.ToGstBin(src).GetElements()
		if err != nil || len(kids) == 0 {
			return fmt.Errorf("media: proxysrc has no queue: %v", err)
		}
		for _, q := range kids {
			if q.GetFactory().GetName() == "queue" {
				q.SetArg("leaky", "downstream")
				q.SetArg("max-size-buffers", fmt.Sprint(graph.SlotQueueBuffers[i]))
				q.SetArg("max-size-bytes", "0")
				q.SetArg("max-size-time", "0")
			}
		}
	}
	if err := setObjectProp(vsrc, "proxysink", vps); err != nil {
		return err
	}
	if err := setObjectProp(asrc, "proxysink", aps); err != nil {
		return err
	}
	// A reused proxysink copies caps/segment only once; a sticky event that
	// fails to reach the (still NULL) proxysrc makes it copy them again with
	// the next buffer.
	for _, ps := range []*gst.Element{vps, aps} {
		ps.GetStaticPad("sink").SendEvent(gst.NewCustomEvent(gst.EventTypeCustomDownstreamSticky, gst.NewStructure("makercast-reattach")))
	}
	// Both pipelines run on the capture's clock and base time, so timestamps
	// (and A/V sync) carry over unchanged.
	p.pipe.ForceClock(c.p.pipe.GetPipelineClock())
	p.pipe.SetBaseTime(c.p.pipe.GetBaseTime())
	p.pipe.SetStartTime(gst.ClockTimeNone)
	g := newGate(vsrc, asrc, s.holds())
	if err := s.started(p, g); err != nil {
		return redact(err)
	}
	// However it ends, the sender's own work ends first (runs before the
	// pipeline's close above), and what it closed is reported.
	ended := false
	defer func() {
		if ended {
			return
		}
		for _, seg := range s.end(p, false) {
			if hooks.Segment != nil {
				hooks.Segment(seg)
			}
		}
	}()
	p.watch()
	if err := p.pipe.SetState(gst.StatePlaying); err != nil {
		return redact(fmt.Errorf("media: start %s sender: %w", out.Kind(), err))
	}
	keyframe := func() {
		// Ask the encoder for a keyframe now instead of waiting up to a GOP.
		vps.SendEvent(gst.NewCustomEvent(gst.EventTypeCustomUpstream, gst.NewStructureFromString(
			"GstForceKeyUnit, running-time=(guint64)18446744073709551615, all-headers=(boolean)true, count=(uint)0")))
	}
	keyframe()

	var (
		last         uint64
		lastMove     = time.Now()
		live, held   bool
		detail       string
		seen         bool
		lastReport   time.Time
		pollEvery    = 50 * time.Millisecond
		stallTimeout = c.engine.StallTimeout
	)
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			ended = true
			for _, seg := range s.end(p, live) {
				if hooks.Segment != nil {
					hooks.Segment(seg)
				}
			}
			return nil
		case <-c.done:
			return errors.New("media: capture stopped")
		case err := <-p.errc:
			return redact(s.explain(fmt.Errorf("media: %s: %w", out.Kind(), err)))
		case now := <-ticker.C:
			st := s.poll(p)
			for _, seg := range st.segments {
				if hooks.Segment != nil {
					hooks.Segment(seg)
				}
			}
			if st.err != nil {
				return redact(st.err)
			}
			switch {
			case st.hold && !held:
				g.close()
			case !st.hold && held:
				g.reopen()
				keyframe()
				lastMove = now
			}
			held = st.hold
			if st.bytes != last {
				last, lastMove = st.bytes, now
			}
			if hooks.Progress != nil && now.Sub(lastReport) >= time.Second {
				lastReport = now
				hooks.Progress(agent.OutputProgress{Bytes: st.bytes, Peers: st.peers})
			}
			if !seen || st.live != live || (!st.live && st.detail != detail) {
				seen, live, detail = true, st.live, st.detail
				if hooks.Live != nil && (live || detail != "") {
					hooks.Live(live, detail)
				}
				if live {
					ticker.Reset(500 * time.Millisecond)
				} else {
					ticker.Reset(pollEvery)
				}
			}
			if st.stalls && live && stallTimeout > 0 && now.Sub(lastMove) > stallTimeout {
				return fmt.Errorf("media: %s sender stalled: nothing sent for %s", out.Kind(), stallTimeout.Round(time.Second))
			}
		}
	}
}

// gate starts a sender on a keyframe, and holds everything back while it
// has nobody to send to: the proxysrc queues then never hold stale media.
// A gate that never closes again removes its probes once open (a probe is
// a callback into Go for every frame).
type gate struct {
	// state: gateKeyframe (drop delta frames and sound until a keyframe),
	// gateOpen, gateClosed (drop all).
	state atomic.Int32
}

const (
	gateKeyframe int32 = iota
	gateOpen
	gateClosed
)

func newGate(vsrc, asrc *gst.Element, holds bool) *gate {
	g := &gate{}
	open := gst.PadProbeOK
	if !holds {
		open = gst.PadProbeRemove
	}
	vsrc.GetStaticPad("src").AddProbe(gst.PadProbeTypeBuffer, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		switch g.state.Load() {
		case gateClosed:
			return gst.PadProbeDrop
		case gateKeyframe:
			if buf := info.GetBuffer(); buf != nil && buf.HasFlags(gst.BufferFlagDeltaUnit) {
				return gst.PadProbeDrop
			}
			g.state.CompareAndSwap(gateKeyframe, gateOpen)
			if !holds {
				// The keyframe itself passes; removing the probe now lets
				// it through (PadProbeRemove passes the buffer on).
				return gst.PadProbeRemove
			}
		}
		return open
	})
	// Sound waits for the picture's keyframe too: a peer gets both from
	// the same moment.
	asrc.GetStaticPad("src").AddProbe(gst.PadProbeTypeBuffer, func(*gst.Pad, *gst.PadProbeInfo) gst.PadProbeReturn {
		if g.state.Load() != gateOpen {
			return gst.PadProbeDrop
		}
		return open
	})
	return g
}

func (g *gate) close()        { g.state.Store(gateClosed) }
func (g *gate) waitKeyframe() { g.state.Store(gateKeyframe) }

// reopen waits for a keyframe again if the gate is closed.
func (g *gate) reopen() { g.state.CompareAndSwap(gateClosed, gateKeyframe) }

// statsUint reads one unsigned field of an element's "stats" structure
// (rtmp2sink's out-bytes-total, srtsink's bytes-sent-total).
func statsUint(e *gst.Element, field string) uint64 {
	v, err := e.GetProperty("stats")
	if err != nil {
		return 0
	}
	st, ok := v.(*gst.Structure)
	if !ok || st == nil {
		return 0
	}
	n, err := st.GetValue(field)
	if err != nil {
		return 0
	}
	switch x := n.(type) {
	case uint64:
		return x
	case int64:
		return uint64(x)
	case uint:
		return uint64(x)
	case int:
		return uint64(x)
	}
	return 0
}
