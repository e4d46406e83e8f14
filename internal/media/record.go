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
	return &recordSender{o: o, c: c, stop: make(chan struct{}), done: make(chan struct{})}, nil
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

func (s *recordSender) holds() bool { return false }

func (s *recordSender) explain(err error) error { return err }

func (s *recordSender) started(p *pipeline, _ *gate) error {
	go s.run(p, app.SinkFromElement(p.els["vout"]), app.SinkFromElement(p.els["aout"]))
	return nil
}

// sample is one pulled sample, with what the recorder needs of it read
// once (every read of a go-gst wrapper is a cgo call and an allocation).
type sample struct {
	smp *gst.Sample
	rt  time.Duration // running time
	key bool
	dur gst.ClockTime
}

// stream pulls one appsink's samples; its segment is read from its first
// sample (a live capture's encoder segment does not change: x264 puts video
// 1000 hours in, the sound starts at 0).
type stream struct {
	sink *app.Sink
	seg  *gst.Segment
}

func (st *stream) pull(wait time.Duration) *sample {
	smp := st.sink.TryPullSample(gst.ClockTime(wait.Nanoseconds()))
	if smp == nil {
		return nil
	}
	if st.seg == nil {
		st.seg = smp.GetSegment()
	}
	buf := smp.GetBuffer()
	return &sample{smp: smp, rt: time.Duration(st.seg.ToRunningTime(gst.FormatTime, uint64(buf.PresentationTimestamp()))),
		key: !buf.HasFlags(gst.BufferFlagDeltaUnit), dur: buf.Duration()}
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
	held       []*sample     // sound at or after the cut, waiting for its keyframe
	last       time.Duration // running time of the newest frame written, and its duration
	lastDur    gst.ClockTime
	closing    sync.WaitGroup
	finishWith time.Duration
	// waiting is since when a first keyframe waits for the sound's caps.
	waiting time.Time
}

// pullEvery is how often the recorder takes what the appsinks hold: a
// wake-up ten times a second, never a call that blocks in C (each one makes
// the Go scheduler hand its thread over) and no callback from the
// streaming threads.
const pullEvery = 100 * time.Millisecond

// run writes what the appsinks hold until stop, then finishes the file.
func (s *recordSender) run(p *pipeline, vs, as *app.Sink) {
	defer close(s.done)
	r := &recorder{s: s, p: p, finishWith: 3 * time.Second}
	defer r.closing.Wait()
	// However writing ends (stopped, or a write failed), the file being
	// written is finished and its writer set to NULL.
	defer r.finishFile()
	video, audio := &stream{sink: vs}, &stream{sink: as}
	tick := time.NewTicker(pullEvery)
	defer tick.Stop()
	var v, a *sample
	synced := time.Now()
	for {
		stopping := false
		select {
		case <-s.stop:
			stopping = true
		case now := <-tick.C:
			// About a fragment's worth: what mp4mux wrote reaches the disk.
			if r.w != nil && now.Sub(synced) >= r.s.o.Fragment {
				synced = now
				if err := r.w.sync(); err != nil {
					r.fail(err)
					return
				}
			}
		}
		// Write in timestamp order: the earlier of the next video and the
		// next audio sample; a stream that has nothing yet is waited for
		// (till the next tick), unless stopping.
		for {
			if v == nil {
				v = video.pull(0)
			}
			if a == nil {
				a = audio.pull(0)
			}
			if v == nil && a == nil {
				break
			}
			if v != nil && (a == nil || v.rt <= a.rt) {
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

func (r *recorder) video(smp *sample) {
	t, key := smp.rt, smp.key
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
	if err := r.w.push(true, smp.smp); err != nil {
		r.fail(err)
	}
	r.last, r.lastDur = t, smp.dur
}

func (r *recorder) audio(smp *sample) {
	r.sound = true
	if r.w == nil {
		return // before the first keyframe
	}
	if smp.rt >= r.start+r.s.o.Segment {
		// The file may end at the next keyframe, or go on: decided when
		// the keyframe comes.
		r.held = append(r.held, smp)
		return
	}
	if err := r.w.push(false, smp.smp); err != nil {
		r.fail(err)
	}
}

// cut ends the current file before the keyframe at t and starts the next
// one with it.
func (r *recorder) cut(t time.Duration) {
	var later []*sample
	for _, smp := range r.held {
		if smp.rt < t {
			if err := r.w.push(false, smp.smp); err != nil {
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
		if err := r.w.push(false, smp.smp); err != nil {
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
		_ = w.push(false, smp.smp)
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
