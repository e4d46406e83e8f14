package media

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
)

// ErrNoSnapshots is returned for a camera whose own H.264 is passed through:
// there is no raw frame to take a picture from.
var ErrNoSnapshots = errors.New("media: this camera delivers H.264 itself; snapshots need raw frames (use its mjpeg or raw input)")

// jpegEncoder is the persistent appsrc ! ... ! jpegenc ! appsink pipeline of
// one capture, created on the first snapshot.
type jpegEncoder struct {
	p         *pipeline
	src       *app.Source
	out       *app.Sink
	size, enc *gst.Element
}

// snapshotter serialises snapshots of one capture.
type snapshotter struct {
	mu  sync.Mutex
	enc *jpegEncoder
}

// Snapshot encodes the newest raw frame of the running capture (waiting at
// most for the next frame when the last one was already taken). It never
// touches the encoder or the outputs.
func (c *Capture) Snapshot(opts agent.SnapshotOptions) (agent.Picture, error) {
	if err := opts.Validate(); err != nil {
		return agent.Picture{}, err
	}
	if !c.resolved.Snapshots {
		return agent.Picture{}, ErrNoSnapshots
	}
	c.snap.mu.Lock()
	defer c.snap.mu.Unlock()
	select {
	case <-c.done:
		return agent.Picture{}, errors.New("media: capture stopped")
	default:
	}
	sink := app.SinkFromElement(c.p.els[graph.SnapshotSink])
	sample := sink.TryPullSample(gst.ClockTime(2 * time.Second))
	if sample == nil {
		return agent.Picture{}, errors.New("media: no frame from the camera within 2 s")
	}
	taken := time.Now()
	if c.snap.enc == nil {
		enc, err := newJPEGEncoder(c.log)
		if err != nil {
			return agent.Picture{}, err
		}
		c.snap.enc = enc
	}
	e := c.snap.enc
	srcCaps := sample.GetCaps()
	w, h := capsSize(srcCaps)
	if w == 0 || h == 0 {
		return agent.Picture{}, errors.New("media: frame without a size")
	}
	ow, oh := outputSize(w, h, opts.Width, opts.Height)
	e.size.SetArg("caps", fmt.Sprintf("video/x-raw,width=%d,height=%d", ow, oh))
	e.enc.SetArg("quality", fmt.Sprint(opts.Quality))
	// A JPEG that came too late for an earlier request must not be taken
	// for this one.
	for e.out.TryPullSample(0) != nil {
	}
	e.src.SetCaps(srcCaps)
	if r := e.src.PushSample(sample); r != gst.FlowOK {
		return agent.Picture{}, fmt.Errorf("media: jpeg encoder refused the frame: %s", r)
	}
	out := e.out.TryPullSample(gst.ClockTime(2 * time.Second))
	if out == nil {
		select {
		case err := <-e.p.errc:
			return agent.Picture{}, fmt.Errorf("media: jpeg encoder: %w", err)
		default:
		}
		return agent.Picture{}, errors.New("media: jpeg encoder gave nothing within 2 s")
	}
	buf := out.GetBuffer()
	return agent.Picture{JPEG: append([]byte(nil), buf.Bytes()...), Width: ow, Height: oh, Taken: taken}, nil
}

func newJPEGEncoder(log *slog.Logger) (*jpegEncoder, error) {
	p, err := newPipeline("jpeg", graph.JPEGGraph(), log)
	if err != nil {
		return nil, err
	}
	p.watch()
	if err := p.pipe.SetState(gst.StatePlaying); err != nil {
		p.close()
		return nil, fmt.Errorf("media: start jpeg encoder: %w", err)
	}
	return &jpegEncoder{p: p, src: app.SrcFromElement(p.els["src"]), out: app.SinkFromElement(p.els["out"]), size: p.els["size"], enc: p.els["enc"]}, nil
}

func (s *snapshotter) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enc != nil {
		s.enc.p.close()
		s.enc = nil
	}
}

func capsSize(c *gst.Caps) (int, int) {
	if c == nil || c.GetSize() == 0 {
		return 0, 0
	}
	st := c.GetStructureAt(0)
	w, err1 := st.GetValue("width")
	h, err2 := st.GetValue("height")
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	wi, ok1 := w.(int)
	hi, ok2 := h.(int)
	if !ok1 || !ok2 {
		return 0, 0
	}
	return wi, hi
}

// outputSize keeps the aspect ratio when one side is 0, and rounds to even.
func outputSize(srcW, srcH, w, h int) (int, int) {
	switch {
	case w == 0 && h == 0:
		return srcW, srcH
	case h == 0:
		h = w * srcH / srcW
	case w == 0:
		w = h * srcW / srcH
	}
	return max(2, w&^1), max(2, h&^1)
}
