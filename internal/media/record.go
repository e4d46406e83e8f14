package media

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
)

// recordSender writes the camera's stream into fragmented MP4 files:
// splitmuxsink cuts a new file at the first keyframe after each segment,
// and mp4mux writes a fragment (moof + mdat) every o.Fragment, so a file
// cut short by a power cut or kill -9 plays up to its last whole fragment.
// Files are named after the wall-clock time they start:
// <dir>/20261204T101500Z.mp4.
type recordSender struct {
	o agent.RecordOutput
	c *Capture

	mu     sync.Mutex
	events []fragmentEvent // from the bus reader, taken by poll

	// The attach goroutine's own: the file being written.
	open      string
	openStart time.Time
	openRT    uint64
	opened    bool
}

// fragmentEvent is a splitmuxsink-fragment-opened or -closed message.
type fragmentEvent struct {
	closed      bool
	location    string
	runningTime uint64 // ns
}

func newRecordSender(o agent.RecordOutput, c *Capture) (*recordSender, error) {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("media: recording directory: %w", err)
	}
	return &recordSender{o: o, c: c}, nil
}

// RecordGraph is the sender of a recording: the proxysrc pair into
// splitmuxsink (its muxer is set when it starts).
func RecordGraph(o agent.RecordOutput) graph.Graph {
	sm := graph.El("splitmuxsink", "sink",
		graph.P("max-size-time", uint64(o.Segment.Nanoseconds())),
		// A placeholder: format-location names each file.
		graph.P("location", filepath.Join(o.Dir, "segment-%05d.mp4")))
	return graph.Graph{Chains: []graph.Chain{
		{Elems: []graph.Elem{sm}},
		{Elems: []graph.Elem{graph.El("proxysrc", "vsrc")}, To: "sink.video"},
		{Elems: []graph.Elem{graph.El("proxysrc", "asrc")}, To: "sink.audio_%u"},
	}}
}

func (s *recordSender) graph() graph.Graph { return RecordGraph(s.o) }

func (s *recordSender) started(p *pipeline) error {
	sm := p.els["sink"]
	mux, err := gst.NewElementWithName("mp4mux", "mp4")
	if err != nil {
		return fmt.Errorf("media: mp4mux is not installed: %w", err)
	}
	mux.SetArg("fragment-duration", fmt.Sprint(s.o.Fragment.Milliseconds()))
	if err := setObjectProp(sm, "muxer", mux); err != nil {
		return err
	}
	// Called on splitmuxsink's streaming thread: a name, no waiting.
	if _, err := sm.Connect("format-location", func(_ *gst.Element, _ uint) string { return s.fileName(time.Now()) }); err != nil {
		return fmt.Errorf("media: splitmuxsink format-location: %w", err)
	}
	p.element = func(m *gst.Message) {
		st := m.GetStructure()
		if st == nil {
			return
		}
		var ev fragmentEvent
		switch st.Name() {
		case "splitmuxsink-fragment-opened":
		case "splitmuxsink-fragment-closed":
			ev.closed = true
		default:
			return
		}
		if v, err := st.GetValue("location"); err == nil {
			ev.location, _ = v.(string)
		}
		if v, err := st.GetValue("running-time"); err == nil {
			ev.runningTime, _ = v.(uint64)
		}
		s.mu.Lock()
		s.events = append(s.events, ev)
		s.mu.Unlock()
	}
	return nil
}

// fileName names a file starting at t, never one that exists.
func (s *recordSender) fileName(t time.Time) string {
	base := filepath.Join(s.o.Dir, t.UTC().Format("20060102T150405Z"))
	name := base + ".mp4"
	for i := 2; ; i++ {
		if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d.mp4", base, i)
	}
}

// wall turns a running time of the capture into wall-clock time.
func (s *recordSender) wall(rt uint64) time.Time {
	pipe := s.c.p.pipe
	clock := pipe.GetPipelineClock()
	if clock == nil {
		return time.Now()
	}
	now := time.Now()
	at := uint64(pipe.GetBaseTime()) + rt
	cur := uint64(clock.GetTime())
	if cur < at {
		return now
	}
	return now.Add(-time.Duration(cur - at))
}

func (s *recordSender) poll(p *pipeline) progress {
	s.mu.Lock()
	evs := s.events
	s.events = nil
	s.mu.Unlock()
	var pr progress
	for _, ev := range evs {
		if !ev.closed {
			s.open, s.openRT, s.openStart, s.opened = ev.location, ev.runningTime, s.wall(ev.runningTime), true
			pr.segments = append(pr.segments, agent.Segment{Path: ev.location, Start: s.openStart})
			continue
		}
		seg := agent.Segment{Path: ev.location, Closed: true, Start: s.openStart}
		if ev.location == s.open && ev.runningTime >= s.openRT {
			seg.Duration = time.Duration(ev.runningTime - s.openRT)
		}
		if fi, err := os.Stat(ev.location); err == nil {
			seg.Bytes = fi.Size()
		}
		pr.segments = append(pr.segments, seg)
		if ev.location == s.open {
			s.open = ""
		}
	}
	if s.open != "" {
		if fi, err := os.Stat(s.open); err == nil {
			pr.bytes = uint64(fi.Size())
		}
	}
	pr.live = s.opened
	return pr
}

// end finishes the file being written: EOS makes mp4mux write its index,
// and splitmuxsink posts the file closed (before the EOS), which is
// returned.
func (s *recordSender) end(p *pipeline, _ bool) []agent.Segment {
	p.pipe.SendEvent(gst.NewEOSEvent())
	select {
	case <-p.errc:
	case <-time.After(2 * time.Second):
	}
	return s.poll(p).segments
}
