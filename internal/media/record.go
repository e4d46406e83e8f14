package media

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
)

// recordSender records the camera's encoded stream into segment files.
// The slot's samples come to Go (an appsink each for video and audio); a
// goroutine of the sender writes them, in timestamp order, to the current
// file's mp4Writer, and starts the next file at the first keyframe after
// each segment: video from that keyframe on and audio from its time on go
// to the new file, so the files follow each other without a gap or an
// overlap. (splitmuxsink would do the cutting, but it holds a whole GOP in
// memory before it writes it: up to a keyframe interval more to lose.)
// Files are named after the wall-clock time they start, UTC, so that names
// sort as they were recorded: <dir>/20261204T101500.000Z.mp4.
type recordSender struct {
	o agent.RecordOutput
	c *Capture

	wake     chan struct{} // a sample is waiting (from appsink callbacks)
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu       sync.Mutex
	segments []agent.Segment // opened and closed, taken by poll
	open     string          // the file being written
	err      error           // why writing failed
}

func newRecordSender(o agent.RecordOutput, c *Capture) (*recordSender, error) {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("media: recording directory: %w", err)
	}
	return &recordSender{o: o, c: c, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// RecordGraph is the sender of a recording: the proxysrc pair into two
// appsinks the recorder pulls from.
func RecordGraph() graph.Graph {
	sink := func(name string) graph.Elem {
		// Never blocking the slot: about 10 s of either is held at most.
		return graph.El("appsink", name, graph.P("sync", false), graph.P("async", false), graph.P("max-buffers", 300),
			graph.P("drop", true), graph.P("emit-signals", false), graph.P("enable-last-sample", false))
	}
	return graph.Graph{Chains: []graph.Chain{
		{Elems: []graph.Elem{graph.El("proxysrc", "vsrc"), sink("vout")}},
		{Elems: []graph.Elem{graph.El("proxysrc", "asrc"), sink("aout")}},
	}}
}

func (s *recordSender) graph() graph.Graph { return RecordGraph() }

func (s *recordSender) explain(err error) error { return err }

func (s *recordSender) started(p *pipeline, _ *gate) error {
	vs, as := app.SinkFromElement(p.els["vout"]), app.SinkFromElement(p.els["aout"])
	// Called on the streaming threads: a wake-up, nothing more.
	notify := func(*app.Sink) gst.FlowReturn {
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return gst.FlowOK
	}
	vs.SetCallbacks(&app.SinkCallbacks{NewSampleFunc: notify})
	as.SetCallbacks(&app.SinkCallbacks{NewSampleFunc: notify})
	go s.run(p, vs, as)
	return nil
}

// recorder is the state of the writing goroutine.
//
// Times are running times (the encoders' timestamps are in segments of
// their own: x264 puts video 1000 hours in).
type recorder struct {
	s          *recordSender
	p          *pipeline
	w          *mp4Writer
	sound      bool          // a sound sample came: the file can start
	start      time.Duration // running time of the current file's first frame
	startWall  time.Time
	held       []*gst.Sample // sound at or after the cut, waiting for its keyframe
	last       time.Duration // running time of the newest frame written, and its duration
	lastDur    gst.ClockTime
	closing    sync.WaitGroup
	finishWith time.Duration
	// waiting is since when a first keyframe waits for the sound's caps.
	waiting time.Time
}

// run writes what the appsinks hold until stop, then finishes the file.
func (s *recordSender) run(p *pipeline, vs, as *app.Sink) {
	defer close(s.done)
	r := &recorder{s: s, p: p, finishWith: 3 * time.Second}
	defer r.closing.Wait()
	// However writing ends (stopped, or a write failed), the file being
	// written is finished and its writer set to NULL.
	defer r.finishFile()
	var v, a *gst.Sample
	for {
		stopping := false
		select {
		case <-s.stop:
			stopping = true
		case <-s.wake:
		case <-time.After(100 * time.Millisecond):
		}
		// Write in timestamp order: the earlier of the next video and the
		// next audio sample; a stream that has nothing yet is waited for,
		// unless stopping.
		for {
			if v == nil {
				v = vs.TryPullSample(0)
			}
			if a == nil {
				a = as.TryPullSample(0)
			}
			if v == nil && a == nil {
				break
			}
			if v != nil && (a == nil || runningTime(v) <= runningTime(a)) {
				if a == nil && !stopping && (r.w != nil || !r.sound) {
					// The sound of this moment is on its way (or, for the
					// first file, the sound's caps).
					if r.w == nil && r.waiting.IsZero() {
						r.waiting = time.Now()
					} else if r.w == nil && time.Since(r.waiting) > 3*time.Second {
						r.fail(errors.New("media: recording: no sound came with the picture (the capture always has a track)"))
						return
					}
					break
				}
				r.video(v)
				v = nil
			} else {
				if v == nil && !stopping && r.w != nil {
					break
				}
				r.audio(a)
				a = nil
			}
			if r.failed() {
				return
			}
		}
		if stopping {
			return
		}
	}
}

// runningTime is when a sample is to be shown, in the capture's running
// time.
func runningTime(s *gst.Sample) time.Duration {
	return time.Duration(s.GetSegment().ToRunningTime(gst.FormatTime, uint64(s.GetBuffer().PresentationTimestamp())))
}

func (r *recorder) failed() bool {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.err != nil
}

func (r *recorder) fail(err error) {
	r.s.mu.Lock()
	if r.s.err == nil {
		r.s.err = err
	}
	r.s.mu.Unlock()
}

func (r *recorder) video(smp *gst.Sample) {
	buf := smp.GetBuffer()
	t := runningTime(smp)
	key := !buf.HasFlags(gst.BufferFlagDeltaUnit)
	switch {
	case r.w == nil && !key:
		return // the slot's gate starts at a keyframe; this cannot be
	case r.w == nil:
		r.openFile(t)
	case key && t >= r.start+r.s.o.Segment:
		r.cut(t)
	}
	if r.w == nil {
		return
	}
	if err := r.w.push(true, smp); err != nil {
		r.fail(err)
	}
	r.last, r.lastDur = t, buf.Duration()
}

func (r *recorder) audio(smp *gst.Sample) {
	r.sound = true
	if r.w == nil {
		return // before the first keyframe
	}
	if runningTime(smp) >= r.start+r.s.o.Segment {
		// The file may end at the next keyframe, or go on: decided when
		// the keyframe comes.
		r.held = append(r.held, smp)
		return
	}
	if err := r.w.push(false, smp); err != nil {
		r.fail(err)
	}
}

// cut ends the current file before the keyframe at t and starts the next
// one with it.
func (r *recorder) cut(t time.Duration) {
	var later []*gst.Sample
	for _, smp := range r.held {
		if runningTime(smp) < t {
			if err := r.w.push(false, smp); err != nil {
				r.fail(err)
			}
		} else {
			later = append(later, smp)
		}
	}
	r.held = nil
	r.finishFile()
	r.openFile(t)
	if r.w == nil {
		return
	}
	for _, smp := range later {
		if err := r.w.push(false, smp); err != nil {
			r.fail(err)
		}
	}
}

// openFile starts a file at running time t.
func (r *recorder) openFile(t time.Duration) {
	if !r.sound {
		return // stopping before any sound came: no file
	}
	wall := r.s.wall(t)
	path := r.s.fileName(wall)
	w, err := newMP4Writer(r.p.log, path, r.s.o.Fragment)
	if err != nil {
		r.fail(err)
		return
	}
	r.w, r.start, r.startWall = w, t, wall
	r.s.mu.Lock()
	r.s.open = path
	r.s.segments = append(r.s.segments, agent.Segment{Path: path, Start: wall})
	r.s.mu.Unlock()
}

// finishFile completes the current file in the background (its index is
// written while the next one is already being fed) and reports it closed.
func (r *recorder) finishFile() {
	w := r.w
	if w == nil {
		return
	}
	for _, smp := range r.held { // stopping: what was held belongs here
		_ = w.push(false, smp)
	}
	r.held = nil
	r.w = nil
	seg := agent.Segment{Path: w.Path, Start: r.startWall, Closed: true}
	if r.last >= r.start {
		// Up to the end of the last frame written.
		seg.Duration = r.last - r.start
		if r.lastDur != gst.ClockTimeNone {
			seg.Duration += time.Duration(r.lastDur)
		}
	}
	r.closing.Add(1)
	go func() {
		defer r.closing.Done()
		err := w.finish(r.finishWith)
		if fi, serr := os.Stat(w.Path); serr == nil {
			seg.Bytes = fi.Size()
		}
		if err != nil {
			r.fail(err)
		}
		r.s.mu.Lock()
		if r.s.open == w.Path {
			r.s.open = ""
		}
		r.s.segments = append(r.s.segments, seg)
		r.s.mu.Unlock()
	}()
}

// fileName names a file starting at t, never one that exists.
func (s *recordSender) fileName(t time.Time) string {
	base := filepath.Join(s.o.Dir, t.UTC().Format("20060102T150405.000Z"))
	name := base + ".mp4"
	for i := 2; ; i++ {
		if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d.mp4", base, i)
	}
}

// wall turns a running time of the capture (both pipelines run on the
// capture's clock and base time) into wall-clock time.
func (s *recordSender) wall(t time.Duration) time.Time {
	pipe := s.c.p.pipe
	clock := pipe.GetPipelineClock()
	now := time.Now()
	if clock == nil {
		return now
	}
	at := pipe.GetBaseTime() + gst.ClockTime(t)
	cur := clock.GetTime()
	if cur < at {
		return now
	}
	return now.Add(-time.Duration(cur - at))
}

func (s *recordSender) poll(*pipeline) progress {
	s.mu.Lock()
	segs, open, err := s.segments, s.open, s.err
	s.segments = nil
	s.mu.Unlock()
	pr := progress{segments: segs, live: open != "", err: err}
	if open != "" {
		if fi, err := os.Stat(open); err == nil {
			pr.bytes = uint64(fi.Size())
		}
	}
	return pr
}

// end finishes the file being written and returns what closed since the
// last poll.
func (s *recordSender) end(*pipeline, bool) []agent.Segment {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	segs := s.segments
	s.segments = nil
	return segs
}
