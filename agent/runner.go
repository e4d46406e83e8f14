package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/makercast/makercast/internal/media/graph"
)

// Destination states, as published on MQTT.
const (
	StateIdle       = "idle"
	StateConnecting = "connecting"
	StateLive       = "live"
	StateRetrying   = "retrying"
	StateError      = "error"
)

// Camera (capture) states.
const (
	CaptureIdle     = "idle"
	CaptureStarting = "starting"
	CaptureRunning  = "running"
	CaptureError    = "error"
)

// want is one destination the camera should be sending to. gen changes each
// time the destination is switched on, so that events of an older sender
// are told apart.
type want struct {
	dest Destination
	gen  uint64
}

// snapReq asks a camera runner for one snapshot.
type snapReq struct {
	id   uint64
	opts graph.JPEG
}

// event is a state change reported by a camera runner to the agent loop.
type event struct {
	// snapshot results (snap != 0)
	snap    uint64
	picture graph.Picture
	snapErr error
	// camera statistics (stats != nil)
	stats *CameraStats
	// when bytes was read
	at time.Time

	camera  string
	dest    string // empty for camera events
	gen     uint64
	state   string
	err     string
	encoder string
	mode    string
	bytes   uint64
	retryIn time.Duration
}

// camDevice is what the runner knows of its camera's hardware: the spec to
// open it with (device node and microphone as found now) and whether it is
// plugged in. Every change of the machine's devices hands the runners a new
// one: a runner waiting to retry tries again at once (a camera plugged back
// in).
type camDevice struct {
	spec    graph.CaptureSpec
	present bool
}

// errUnplugged is the failure of a camera that was pulled out.
var errUnplugged = errors.New("camera unplugged")

// errNewDevice ends a session whose camera got another microphone (its
// own plugged back in, or one where there was none) or another node (an
// unplug and replug seen as one change): it is reopened at once.
var errNewDevice = errors.New("camera's microphone or device node changed")

// cameraRunner supervises one camera: it opens the capture while any of its
// destinations is wanted and the camera is plugged in, runs one sender loop
// per wanted destination, and reopens the capture with backoff when it fails
// (a stalled camera, a pipeline error), at once when the camera is plugged
// back in.
type cameraRunner struct {
	name   string
	dev    camDevice
	media  Media
	log    *slog.Logger
	events chan<- event
	wantc  chan map[string]want
	devc   chan camDevice
	snapc  chan snapReq
	// warm keeps the camera open while nothing streams (fast snapshots);
	// warmup is how long a camera opened only for a snapshot settles first
	// (a cold USB camera's first frames are dark).
	warm       bool
	warmup     time.Duration
	reachable  Reachable
	probeEvery time.Duration
	newBackoff func() *Backoff
	statsEvery time.Duration
}

func (r *cameraRunner) emit(ctx context.Context, ev event) {
	ev.camera = r.name
	select {
	case r.events <- ev:
	case <-ctx.Done():
	}
}

// setWant hands the runner its latest wanted set; it never blocks (the
// agent loop is the only writer).
func (r *cameraRunner) setWant(w map[string]want) {
	select {
	case <-r.wantc:
	default:
	}
	r.wantc <- w
}

// setDevice hands the runner its camera's latest hardware state; like
// setWant it never blocks.
func (r *cameraRunner) setDevice(d camDevice) {
	select {
	case <-r.devc:
	default:
	}
	r.devc <- d
}

type senderHandle struct {
	gen    uint64
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *cameraRunner) run(ctx context.Context) {
	var wanted map[string]want
	bo := r.newBackoff()
	for {
		if !r.waitUsable(ctx, &wanted) {
			return
		}
		r.emit(ctx, event{state: CaptureStarting})
		capture, err := r.media.OpenCapture(ctx, r.dev.spec)
		if err != nil {
			if ctx.Err() != nil || !r.cameraFailed(ctx, fmt.Errorf("agent: camera failed to start: %w", err), bo, &wanted) {
				return
			}
			continue
		}
		opened := time.Now()
		failed := r.session(ctx, capture, r.dev.spec, &wanted)
		capture.Close()
		if ctx.Err() != nil {
			return
		}
		if failed == nil {
			r.emit(ctx, event{state: CaptureIdle})
			bo.Reset()
			continue
		}
		if time.Since(opened) > time.Minute {
			bo.Reset()
		}
		if errors.Is(failed, errUnplugged) || errors.Is(failed, errNewDevice) {
			// Reported by waitUsable when unplugged. Plugged back in, or with
			// its new microphone or node, a camera that had been running a
			// while starts at once; one that keeps dropping out soon after
			// it starts (a webcam browning out a weak hub) waits out the
			// backoff first, so that it cannot storm.
			r.log.Info("camera restarts", "reason", failed)
			if time.Since(opened) > 10*time.Second {
				bo.Reset()
			} else if !r.sleep(ctx, bo.Next(), &wanted) {
				return
			}
			continue
		}
		if !r.cameraFailed(ctx, failed, bo, &wanted) {
			return
		}
	}
}

// waitUsable waits until the camera is wanted (a destination, or kept
// warm) and plugged in, answering snapshot requests meanwhile. While it is
// wanted but unplugged, that is reported on the camera and its
// destinations. It returns false when ctx ends.
func (r *cameraRunner) waitUsable(ctx context.Context, wanted *map[string]want) bool {
	reported := false
	for {
		need := len(*wanted) > 0 || r.warm
		if r.dev.present && need {
			return true
		}
		if !r.dev.present && !reported {
			reported = true
			r.log.Warn("camera unplugged; waiting for it")
			r.emit(ctx, event{state: CaptureError, err: errUnplugged.Error()})
			for name, w := range *wanted {
				r.emit(ctx, event{dest: name, gen: w.gen, state: StateRetrying, err: "camera: " + errUnplugged.Error()})
			}
		}
		select {
		case w := <-r.wantc:
			*wanted = w
			if !r.dev.present {
				reported = false // report again to the destinations now wanted
			}
		case d := <-r.devc:
			was := r.dev.present
			r.dev = d
			if was && !d.present {
				reported = false
			}
			if !was && d.present && !need {
				r.emit(ctx, event{state: CaptureIdle}) // back, not wanted
			}
		case req := <-r.snapc:
			if r.dev.present {
				r.idleSnapshot(ctx, req)
			} else {
				r.emit(ctx, event{snap: req.id, snapErr: fmt.Errorf("agent: %w", errUnplugged)})
			}
		case <-ctx.Done():
			return false
		}
	}
}

// cameraFailed reports a camera failure on the camera and on every wanted
// destination, then waits out the next backoff step (false: ctx ended).
func (r *cameraRunner) cameraFailed(ctx context.Context, err error, bo *Backoff, wanted *map[string]want) bool {
	d := bo.Next()
	r.log.Warn("camera failed", "err", err, "retry_in", d.Round(time.Millisecond))
	r.emit(ctx, event{state: CaptureError, err: err.Error(), retryIn: d})
	for name, w := range *wanted {
		r.emit(ctx, event{dest: name, gen: w.gen, state: StateRetrying, err: "camera: " + err.Error(), retryIn: d})
	}
	if !r.sleep(ctx, d, wanted) {
		return false
	}
	if len(*wanted) == 0 && !r.warm && r.dev.present {
		r.emit(ctx, event{state: CaptureIdle}) // switched off meanwhile
	}
	return true
}

// idleSnapshot opens the camera for one picture and closes it again.
func (r *cameraRunner) idleSnapshot(ctx context.Context, req snapReq) {
	pic, err := func() (graph.Picture, error) {
		capture, err := r.media.OpenCapture(ctx, r.dev.spec)
		if err != nil {
			return graph.Picture{}, err
		}
		defer capture.Close()
		select {
		case <-capture.Ready():
		case <-capture.Done():
			return graph.Picture{}, capture.Err()
		case <-ctx.Done():
			return graph.Picture{}, ctx.Err()
		}
		if r.dev.spec.Video.Source != graph.VideoTest {
			select {
			case <-time.After(r.warmup):
			case <-ctx.Done():
				return graph.Picture{}, ctx.Err()
			}
		}
		return capture.Snapshot(req.opts)
	}()
	r.emit(ctx, event{snap: req.id, picture: pic, snapErr: err})
}

// sleep waits d while keeping the wanted set and the device current; it
// returns early when nothing is wanted any more or the machine's devices
// changed (the camera may be back: try now), and false when ctx ends.
func (r *cameraRunner) sleep(ctx context.Context, d time.Duration, wanted *map[string]want) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case w := <-r.wantc:
			*wanted = w
			if len(w) == 0 {
				return true
			}
		case d := <-r.devc:
			r.dev = d
			return true
		case req := <-r.snapc:
			r.emit(ctx, event{snap: req.id, snapErr: errors.New("agent: the camera is failing; retrying")})
		}
	}
}

// session runs senders on an open capture (opened with spec) until nothing
// is wanted (nil), the capture fails (its error), the camera is unplugged
// or gets another microphone, or ctx ends.
func (r *cameraRunner) session(ctx context.Context, capture Capture, spec graph.CaptureSpec, wanted *map[string]want) error {
	var wg sync.WaitGroup
	senders := map[string]*senderHandle{}
	stop := func(name string) {
		h := senders[name]
		h.cancel()
		<-h.done
		delete(senders, name)
	}
	stopAll := func() {
		for _, h := range senders {
			h.cancel()
		}
		wg.Wait()
		clear(senders)
	}
	sync := func() {
		for name, h := range senders {
			if w, ok := (*wanted)[name]; !ok || w.gen != h.gen {
				stop(name)
			}
		}
		for name, w := range *wanted {
			if _, ok := senders[name]; ok {
				continue
			}
			sctx, cancel := context.WithCancel(ctx)
			h := &senderHandle{gen: w.gen, cancel: cancel, done: make(chan struct{})}
			senders[name] = h
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(h.done)
				r.sendLoop(sctx, capture, w)
			}()
		}
	}
	sync()
	ready := capture.Ready()
	statsT := time.NewTicker(r.statsEvery)
	defer statsT.Stop()
	prev, prevAt := capture.Stats(), time.Now()
	for {
		select {
		case now := <-statsT.C:
			cur := capture.Stats()
			dt := now.Sub(prevAt).Seconds()
			r.emit(ctx, event{stats: &CameraStats{
				CaptureFPS: math.Round(float64(cur.Frames-prev.Frames)/dt*10) / 10,
				EncoderFPS: math.Round(float64(cur.Encoded-prev.Encoded)/dt*10) / 10,
				Dropped:    cur.Dropped, QueueLevel: cur.QueueLevel,
			}})
			prev, prevAt = cur, now
		case <-ready:
			ready = nil
			res := capture.Resolved()
			r.log.Info("camera running", "encoder", res.Encoder, "mode", res.Mode, "audio", r.dev.spec.Audio.Device)
			r.emit(ctx, event{state: CaptureRunning, encoder: res.Encoder, mode: res.Mode})
		case d := <-r.devc:
			r.dev = d
			switch {
			case !d.present:
				stopAll()
				return errUnplugged
			case d.spec.Audio != spec.Audio || d.spec.Video != spec.Video:
				stopAll()
				for name, w := range *wanted {
					r.emit(ctx, event{dest: name, gen: w.gen, state: StateRetrying, err: "camera: " + errNewDevice.Error()})
				}
				return errNewDevice
			}
		case <-ctx.Done():
			stopAll()
			return nil
		case w := <-r.wantc:
			*wanted = w
			sync()
			if len(w) == 0 && !r.warm {
				stopAll()
				return nil
			}
		case req := <-r.snapc:
			wg.Add(1)
			go func() {
				defer wg.Done()
				pic, err := capture.Snapshot(req.opts)
				r.emit(ctx, event{snap: req.id, picture: pic, snapErr: err})
			}()
		case <-capture.Done():
			stopAll()
			err := capture.Err()
			if err == nil {
				err = errors.New("agent: capture ended")
			}
			return err
		}
	}
}

// sendLoop keeps one destination live. While its server does not even
// accept TCP, the destination is only probed (cheap, no pipeline built, no
// backoff step used up); the moment the server accepts again the sender is
// rebuilt, with the backoff started afresh. Other failures (refused key,
// dropped connection) wait out the stepped backoff, cut short if the server
// is seen going away and coming back meanwhile.
func (r *cameraRunner) sendLoop(ctx context.Context, capture Capture, w want) {
	d := w.dest
	bo := r.newBackoff()
	for {
		if err := r.reachable(ctx, d.Target.Host, d.Target.Port); err != nil {
			if ctx.Err() != nil {
				return
			}
			err = fmt.Errorf("agent: server unreachable: %w", err)
			r.log.Warn("destination unreachable; probing until it answers", "destination", d.Name, "url", d.Display(), "err", err)
			r.emit(ctx, event{dest: d.Name, gen: w.gen, state: StateRetrying, err: err.Error()})
			if !waitReachable(ctx, r.reachable, d.Target.Host, d.Target.Port, r.probeEvery) {
				return
			}
			bo.Reset()
		}
		r.emit(ctx, event{dest: d.Name, gen: w.gen, state: StateConnecting})
		start := time.Now()
		var lastBytes time.Time
		wentLive := false
		err := capture.Send(ctx, d.Target, graph.SendHooks{
			Live: func() {
				wentLive = true
				r.emit(ctx, event{dest: d.Name, gen: w.gen, state: StateLive})
			},
			Bytes: func(n uint64) {
				// At most one byte-count event a second per destination.
				if now := time.Now(); now.Sub(lastBytes) >= time.Second {
					lastBytes = now
					r.emit(ctx, event{dest: d.Name, gen: w.gen, bytes: n, at: now})
				}
			},
		})
		if ctx.Err() != nil {
			return
		}
		select {
		case <-capture.Done():
			return // the camera loop reports and restarts
		default:
		}
		if err == nil {
			err = errors.New("agent: sender ended")
		}
		if wentLive || time.Since(start) > 30*time.Second {
			// It worked until it didn't: a fresh failure, not a repeat.
			bo.Reset()
		}
		if r.reachable(ctx, d.Target.Host, d.Target.Port) != nil {
			// Lost the server itself: report why the sender failed, then
			// probe (top of the loop).
			r.log.Warn("destination failed", "destination", d.Name, "url", d.Display(), "err", err)
			r.emit(ctx, event{dest: d.Name, gen: w.gen, state: StateRetrying, err: err.Error()})
			continue
		}
		delay := bo.Next()
		r.log.Warn("destination failed", "destination", d.Name, "url", d.Display(), "err", err, "retry_in", delay.Round(time.Millisecond))
		r.emit(ctx, event{dest: d.Name, gen: w.gen, state: StateRetrying, err: err.Error(), retryIn: delay})
		if !waitRetry(ctx, delay, r.reachable, d.Target.Host, d.Target.Port, r.probeEvery) {
			return
		}
	}
}
