package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
	"github.com/makercast/makercast/internal/v4l2"
)

// ErrNoSlot is returned by Attach when every output slot of a capture is taken.
var ErrNoSlot = errors.New("media: no free output slot on this camera")

// Engine builds and runs GStreamer pipelines.
type Engine struct {
	log *slog.Logger
	// StallTimeout is how long a sender may go without writing a byte before
	// it is torn down (a pulled cable leaves the TCP connection open).
	StallTimeout time.Duration
	// FirstFrameTimeout bounds how long OpenCapture waits for the first
	// encoded frame.
	FirstFrameTimeout time.Duration
	// ProbeModes lists a V4L2 camera's modes and tells whether it is on
	// USB. The default asks the device itself (VIDIOC_QUERYCAP and the
	// VIDIOC_ENUM_* ioctls, see internal/v4l2).
	ProbeModes func(device string) (modes []v4l2.Mode, usb bool, err error)
}

// NewEngine initialises GStreamer (idempotent) and returns an engine.
func NewEngine(log *slog.Logger) *Engine {
	gst.Init(nil)
	return &Engine{log: log, StallTimeout: 5 * time.Second, FirstFrameTimeout: 15 * time.Second, ProbeModes: ProbeV4L2}
}

// ProbeV4L2 is the default Engine.ProbeModes: the device's own answers.
func ProbeV4L2(device string) ([]v4l2.Mode, bool, error) {
	c, err := v4l2.QueryCap(device)
	if err != nil {
		return nil, false, err
	}
	modes, err := v4l2.Modes(device)
	return modes, c.USB(), err
}

// Have reports whether an element factory is installed.
func Have(factory string) bool { return gst.Find(factory) != nil }

// build creates every element of g inside bin and links them.
func build(bin *gst.Bin, g graph.Graph) (map[string]*gst.Element, error) {
	els := map[string]*gst.Element{}
	for _, c := range g.Chains {
		var prev *gst.Element
		if c.From != "" {
			prev = els[c.From]
			if prev == nil {
				return nil, fmt.Errorf("media: chain starts from unknown element %q", c.From)
			}
		}
		for _, e := range c.Elems {
			elem, err := gst.NewElementWithName(e.Factory, e.Name)
			if err != nil {
				return nil, fmt.Errorf("media: element %s is not installed: %w", e.Factory, err)
			}
			for _, pr := range e.Props {
				elem.SetArg(pr.Name, pr.Value)
			}
			if err := bin.Add(elem); err != nil {
				return nil, fmt.Errorf("media: add %s: %w", e.Name, err)
			}
			if prev != nil {
				if err := prev.Link(elem); err != nil {
					return nil, fmt.Errorf("media: link %s to %s: %w", prev.GetName(), e.Name, err)
				}
			}
			els[e.Name] = elem
			prev = elem
		}
		if c.To != "" {
			name, pad, _ := strings.Cut(c.To, ".")
			to := els[name]
			if to == nil || prev == nil {
				return nil, fmt.Errorf("media: chain links to unknown element %q", c.To)
			}
			sinkPad := to.GetRequestPad(pad)
			if sinkPad == nil {
				return nil, fmt.Errorf("media: %s has no request pad %q", name, pad)
			}
			if r := prev.GetStaticPad("src").Link(sinkPad); r != gst.PadLinkOK {
				return nil, fmt.Errorf("media: link %s to %s: %s", prev.GetName(), c.To, r)
			}
		}
	}
	return els, nil
}

// setObjectProp sets an object-typed property (proxysrc's "proxysink"). go-gst
// would wrap the value as a plain GstElement, which the property refuses, so
// the GValue is made with the property's own type. nil unsets it.
func setObjectProp(e *gst.Element, prop string, target *gst.Element) error {
	t, err := e.GetPropertyType(prop)
	if err != nil {
		return fmt.Errorf("media: property %s: %w", prop, err)
	}
	v, err := glib.ValueInit(t)
	if err != nil {
		return fmt.Errorf("media: property %s: %w", prop, err)
	}
	if target != nil {
		v.SetInstance(unsafe.Pointer(target.Unsafe()))
	}
	return e.SetPropertyValue(prop, v)
}

// pipeline wraps a gst pipeline with a bus reader goroutine.
type pipeline struct {
	pipe *gst.Pipeline
	els  map[string]*gst.Element
	log  *slog.Logger

	errc chan error // first fatal bus error, buffered 1
	stop chan struct{}
	wg   sync.WaitGroup
	// clean removes secrets from bus message texts before they are logged
	// or returned (a sender's stream key); set before watch.
	clean func(string) string
	// element, when set before watch, gets the element messages (a
	// recording's splitmuxsink-fragment-opened/-closed) on the bus reader.
	element func(*gst.Message)
}

func newPipeline(name string, g graph.Graph, log *slog.Logger) (*pipeline, error) {
	pipe, err := gst.NewPipeline(name)
	if err != nil {
		return nil, fmt.Errorf("media: new pipeline: %w", err)
	}
	els, err := build(pipe.Bin, g)
	if err != nil {
		_ = pipe.SetState(gst.StateNull)
		return nil, err
	}
	return &pipeline{pipe: pipe, els: els, log: log, errc: make(chan error, 1), stop: make(chan struct{}),
		clean: func(s string) string { return s }}, nil
}

// watch reads the bus until stop; the first ERROR or EOS goes to errc.
func (p *pipeline) watch() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		bus := p.pipe.GetPipelineBus()
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			types := gst.MessageError | gst.MessageEOS | gst.MessageWarning | gst.MessageLatency
			if p.element != nil {
				types |= gst.MessageElement
			}
			msg := bus.TimedPopFiltered(gst.ClockTime(100*time.Millisecond), types)
			if msg == nil {
				continue
			}
			switch msg.Type() {
			case gst.MessageError:
				gerr := msg.ParseError()
				p.log.Debug("pipeline error", "element", msg.Source(), "debug", p.clean(gerr.DebugString()))
				p.fail(fmt.Errorf("%s: %s", msg.Source(), p.clean(gerr.Error())))
			case gst.MessageEOS:
				p.fail(errEOS)
			case gst.MessageWarning:
				w := msg.ParseWarning()
				p.log.Warn("pipeline warning", "element", msg.Source(), "warning", p.clean(w.Error()))
			case gst.MessageLatency:
				p.pipe.RecalculateLatency()
			case gst.MessageElement:
				p.element(msg)
			}
		}
	}()
}

func (p *pipeline) fail(err error) {
	select {
	case p.errc <- err:
	default:
	}
}

// close sets the pipeline to NULL and waits for the bus reader.
func (p *pipeline) close() {
	_ = p.pipe.SetState(gst.StateNull)
	close(p.stop)
	p.wg.Wait()
}

// Capture is one running camera: sources, encoders and output slots.
type Capture struct {
	p        *pipeline
	resolved agent.Resolved
	log      *slog.Logger
	engine   *Engine

	snap  snapshotter
	count counters

	mu    sync.Mutex
	free  []int
	ready chan struct{}
	done  chan struct{}
	err   error
	once  sync.Once
	stopW chan struct{}
	wg    sync.WaitGroup
}

var _ agent.Media = (*Engine)(nil)

// OpenCapture is Open for the agent (agent.Media).
func (e *Engine) OpenCapture(ctx context.Context, spec agent.CaptureSpec) (agent.Capture, error) {
	c, err := e.Open(ctx, spec)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Open builds and starts a capture pipeline. It returns as soon as the
// pipeline is playing, so outputs can attach (and connect to their
// servers) while the camera and encoder warm up; Ready is closed at the
// first encoded frame. A capture that fails to produce one within
// FirstFrameTimeout ends with an error (see Done and Err).
func (e *Engine) Open(ctx context.Context, spec agent.CaptureSpec) (*Capture, error) {
	g, res, cam, err := e.captureGraph(spec)
	if err != nil {
		return nil, err
	}
	return e.start(spec, g, res, cam)
}

// captureGraph builds the capture graph of spec; for a V4L2 camera it first
// asks the device for its modes and picks one (cam).
func (e *Engine) captureGraph(spec agent.CaptureSpec) (g graph.Graph, res agent.Resolved, cam *graph.Choice, err error) {
	if err := spec.Validate(); err != nil {
		return g, res, nil, err
	}
	if spec.Video.Source == agent.VideoV4L2 {
		probe := e.ProbeModes
		if probe == nil {
			probe = ProbeV4L2
		}
		modes, usb, err := probe(spec.Video.Device)
		if err != nil {
			return g, res, nil, fmt.Errorf("media: camera modes: %w", err)
		}
		e.log.Debug("camera modes", "device", spec.Video.Device, "usb", usb, "modes", fmt.Sprint(modes))
		c, err := graph.ChooseMode(modes, spec.Video, usb)
		if err != nil {
			return g, res, nil, err
		}
		cam = &c
	}
	g, res, err = graph.CaptureGraph(spec, cam, Have)
	return g, res, cam, err
}

// start runs a built capture graph.
func (e *Engine) start(spec agent.CaptureSpec, g graph.Graph, res agent.Resolved, cam *graph.Choice) (*Capture, error) {
	log := e.log.With("encoder", res.Encoder, "mode", res.Mode)
	p, err := newPipeline("capture", g, log)
	if err != nil {
		return nil, err
	}
	c := &Capture{p: p, resolved: res, log: log, engine: e, done: make(chan struct{}), ready: make(chan struct{}), stopW: make(chan struct{})}
	for i := spec.Slots - 1; i >= 0; i-- {
		c.free = append(c.free, i)
	}
	c.instrument()
	first := make(chan struct{})
	var firstOnce sync.Once
	p.els[graph.VideoParse].GetStaticPad("src").AddProbe(gst.PadProbeTypeBuffer, func(*gst.Pad, *gst.PadProbeInfo) gst.PadProbeReturn {
		firstOnce.Do(func() { close(first) })
		return gst.PadProbeRemove
	})
	p.watch()
	if err := p.pipe.SetState(gst.StatePlaying); err != nil {
		// The element's own message (which device, why) is on the bus.
		select {
		case berr := <-p.errc:
			err = berr
		case <-time.After(time.Second):
		}
		p.close()
		return nil, fmt.Errorf("media: start capture: %w", err)
	}
	c.wg.Add(1)
	go c.supervise(first, e.FirstFrameTimeout, stallAfter(spec, cam))
	return c, nil
}

// stallAfter is how long the camera may go without a frame before the
// capture fails: the configured StallTimeout, but never less than three
// of the camera's frame intervals (a 1 fps camera is not stalled after
// half a second). 0: no watchdog.
func stallAfter(spec agent.CaptureSpec, cam *graph.Choice) time.Duration {
	if spec.StallTimeout <= 0 {
		return 0
	}
	fps := float64(spec.Video.FPS)
	if cam != nil && cam.Rate.Known() {
		fps = cam.Rate.FPS()
	}
	return max(spec.StallTimeout, time.Duration(3*float64(time.Second)/fps))
}

// stallTick is how often the watchdog looks at the frame count: often
// enough to notice a stall within an eighth of its timeout, at most 4
// times a second (one property read each time).
func stallTick(stall time.Duration) time.Duration {
	return max(10*time.Millisecond, min(250*time.Millisecond, stall/8))
}

// supervise ends the capture on a pipeline error, when the first frame
// does not come within firstTimeout, and, with stall > 0, when the camera
// delivered frames and then none for stall (a frozen camera, or a dead
// writer behind a loopback device, gives no error of its own and would
// leave every output "live" at 0 fps).
func (c *Capture) supervise(first <-chan struct{}, firstTimeout, stall time.Duration) {
	defer c.wg.Done()
	timer := time.NewTimer(firstTimeout)
	defer timer.Stop()
	select {
	case <-first:
		close(c.ready)
	case err := <-c.p.errc:
		c.finish(fmt.Errorf("media: capture failed: %w", err))
		return
	case <-timer.C:
		c.finish(fmt.Errorf("media: capture produced no frame within %s", firstTimeout))
		return
	case <-c.stopW:
		return
	}
	var tick <-chan time.Time
	if stall > 0 {
		t := time.NewTicker(stallTick(stall))
		defer t.Stop()
		tick = t.C
	}
	last, moved := c.cameraFrames(), time.Now()
	for {
		select {
		case err := <-c.p.errc:
			c.finish(fmt.Errorf("media: capture failed: %w", err))
			return
		case <-c.stopW:
			return
		case now := <-tick:
			if n := c.cameraFrames(); n != last {
				last, moved = n, now
			} else if now.Sub(moved) >= stall {
				c.finish(fmt.Errorf("media: camera stalled: no frame for %s", stall))
				return
			}
		}
	}
}

// Ready is closed when the first encoded frame has come out.
func (c *Capture) Ready() <-chan struct{} { return c.ready }

func (c *Capture) finish(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
	})
}

// Resolved tells which encoders the capture uses.
func (c *Capture) Resolved() agent.Resolved { return c.resolved }

// Done is closed when the capture has failed or been closed.
func (c *Capture) Done() <-chan struct{} { return c.done }

// Err is why the capture ended (nil while running or after Close).
func (c *Capture) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close stops the capture. Senders must have returned first.
func (c *Capture) Close() {
	close(c.stopW)
	c.wg.Wait()
	c.finish(nil)
	c.snap.close()
	c.p.close()
}

func (c *Capture) takeSlot() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.free) == 0 {
		return 0, ErrNoSlot
	}
	i := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	return i, nil
}

func (c *Capture) releaseSlot(i int) {
	c.mu.Lock()
	c.free = append(c.free, i)
	c.mu.Unlock()
}

// redactWord masks every occurrence of secret in s that stands as a word of
// its own (not inside a longer run of key characters), so that a short key
// does not garble the message, and with it hint at the key.
func redactWord(s, secret string) string {
	re := regexp.MustCompile(`(^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(secret) + `($|[^A-Za-z0-9_-])`)
	for {
		out := re.ReplaceAllString(s, "${1}****${2}")
		if out == s {
			return out
		}
		s = out
	}
}
