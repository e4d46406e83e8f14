package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
)

// Output (destination and recording) states, as published on MQTT.
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

// snapReq asks a camera runner for one snapshot.
type snapReq struct {
	id   uint64
	opts SnapshotOptions
}

// camDevice is what the runner knows of its camera's hardware: the spec to
// open it with (device node and microphone as found now) and whether it is
// plugged in. Every change of the machine's devices hands the runners a new
// one: a runner waiting to retry tries again at once (a camera plugged back
// in).
type camDevice struct {
	spec    CaptureSpec
	present bool
}

// errUnplugged is the failure of a camera that was pulled out.
var errUnplugged = errors.New("camera unplugged")

// errNewDevice ends a session whose camera got another microphone (its
// own plugged back in, or one where there was none) or another node (an
// unplug and replug seen as one change): it is reopened at once.
var errNewDevice = errors.New("camera's microphone or device node changed")

// cameraRunner supervises one camera: it keeps the capture open while the
// camera's demand says so and the camera is plugged in, runs one attach
// loop per consumer, and reopens the capture with backoff when it fails (a
// stalled camera, a pipeline error), at once when the camera is plugged
// back in. It owns nothing of the agent's state: it reports events.
type cameraRunner struct {
	name    string
	dev     camDevice
	media   Media
	log     *slog.Logger
	events  chan<- any
	demandc chan demand
	devc    chan camDevice
	snapc   chan snapReq
	// warmup is how long a camera opened only for a snapshot settles first
	// (a cold USB camera's first frames are dark).
	warmup     time.Duration
	reachable  Reachable
	probeEvery time.Duration
	newBackoff func() *Backoff
	statsEvery time.Duration
}

func (r *cameraRunner) emit(ctx context.Context, ev any) {
	select {
	case r.events <- ev:
	case <-ctx.Done():
	}
}

func (r *cameraRunner) captureEvent(ctx context.Context, ev captureChanged) {
	ev.camera = r.name
	r.emit(ctx, ev)
}

func (r *cameraRunner) outputEvent(ctx context.Context, c consumer, ev outputChanged) {
	ev.camera, ev.id, ev.gen = r.name, c.id, c.gen
	r.emit(ctx, ev)
}

// consumersFailed reports a camera failure on every consumer.
func (r *cameraRunner) consumersFailed(ctx context.Context, d demand, err string, retryIn time.Duration) {
	for _, c := range d.consumers {
		r.outputEvent(ctx, c, outputChanged{state: StateRetrying, err: "camera: " + err, retryIn: retryIn})
	}
}

// setDemand hands the runner its latest demand; it never blocks (the agent
// loop is the only writer).
func (r *cameraRunner) setDemand(d demand) {
	select {
	case <-r.demandc:
	default:
	}
	r.demandc <- d
}

// setDevice hands the runner its camera's latest hardware state; like
// setDemand it never blocks.
func (r *cameraRunner) setDevice(d camDevice) {
	select {
	case <-r.devc:
	default:
	}
	r.devc <- d
}

func (r *cameraRunner) run(ctx context.Context) {
	var d demand
	bo := r.newBackoff()
	for {
		if !r.waitUsable(ctx, &d) {
			return
		}
		r.log.Info("opening the camera", "for", d.reasons())
		r.captureEvent(ctx, captureChanged{state: CaptureStarting})
		capture, err := r.media.OpenCapture(ctx, r.dev.spec)
		if err != nil {
			if ctx.Err() != nil || !r.cameraFailed(ctx, fmt.Errorf("agent: camera failed to start: %w", err), bo, &d) {
				return
			}
			continue
		}
		opened := time.Now()
		failed := r.session(ctx, capture, r.dev.spec, &d)
		capture.Close()
		if ctx.Err() != nil {
			return
		}
		if failed == nil {
			r.captureEvent(ctx, captureChanged{state: CaptureIdle})
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
			} else if !r.sleep(ctx, bo.Next(), &d) {
				return
			}
			continue
		}
		if !r.cameraFailed(ctx, failed, bo, &d) {
			return
		}
	}
}

// waitUsable waits until the camera is wanted and plugged in, answering
// snapshot requests meanwhile. While it is wanted but unplugged, that is
// reported on the camera and its consumers. It returns false when ctx
// ends.
func (r *cameraRunner) waitUsable(ctx context.Context, d *demand) bool {
	reported := false
	for {
		need := d.open()
		if r.dev.present && need {
			return true
		}
		if !r.dev.present && !reported {
			reported = true
			r.log.Warn("camera unplugged; waiting for it")
			r.captureEvent(ctx, captureChanged{state: CaptureError, err: errUnplugged.Error()})
			r.consumersFailed(ctx, *d, errUnplugged.Error(), 0)
		}
		select {
		case nd := <-r.demandc:
			*d = nd
			if !r.dev.present {
				reported = false // report again to the consumers now wanted
			}
		case dev := <-r.devc:
			was := r.dev.present
			r.dev = dev
			if was && !dev.present {
				reported = false
			}
			if !was && dev.present && !need {
				r.captureEvent(ctx, captureChanged{state: CaptureIdle}) // back, not wanted
			}
		case req := <-r.snapc:
			if r.dev.present {
				r.idleSnapshot(ctx, req)
			} else {
				r.emit(ctx, snapshotTaken{camera: r.name, id: req.id, err: fmt.Errorf("agent: %w", errUnplugged)})
			}
		case <-ctx.Done():
			return false
		}
	}
}

// cameraFailed reports a camera failure on the camera and on every consumer,
// then waits out the next backoff step (false: ctx ended).
func (r *cameraRunner) cameraFailed(ctx context.Context, err error, bo *Backoff, d *demand) bool {
	wait := bo.Next()
	r.log.Warn("camera failed", "err", err, "retry_in", wait.Round(time.Millisecond))
	r.captureEvent(ctx, captureChanged{state: CaptureError, err: err.Error(), retryIn: wait})
	r.consumersFailed(ctx, *d, err.Error(), wait)
	if !r.sleep(ctx, wait, d) {
		return false
	}
	if !d.open() && r.dev.present {
		r.captureEvent(ctx, captureChanged{state: CaptureIdle}) // switched off meanwhile
	}
	return true
}

// idleSnapshot opens the camera for one picture and closes it again.
func (r *cameraRunner) idleSnapshot(ctx context.Context, req snapReq) {
	pic, err := func() (Picture, error) {
		capture, err := r.media.OpenCapture(ctx, r.dev.spec)
		if err != nil {
			return Picture{}, err
		}
		defer capture.Close()
		select {
		case <-capture.Ready():
		case <-capture.Done():
			return Picture{}, capture.Err()
		case <-ctx.Done():
			return Picture{}, ctx.Err()
		}
		if r.dev.spec.Video.Source != VideoTest {
			select {
			case <-time.After(r.warmup):
			case <-ctx.Done():
				return Picture{}, ctx.Err()
			}
		}
		return capture.Snapshot(req.opts)
	}()
	r.emit(ctx, snapshotTaken{camera: r.name, id: req.id, pic: pic, err: err})
}

// sleep waits wait while keeping the demand and the device current; it
// returns early when nothing is wanted any more or the machine's devices
// changed (the camera may be back: try now), and false when ctx ends.
func (r *cameraRunner) sleep(ctx context.Context, wait time.Duration, d *demand) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case nd := <-r.demandc:
			*d = nd
			if !nd.open() {
				return true
			}
		case dev := <-r.devc:
			r.dev = dev
			return true
		case req := <-r.snapc:
			r.emit(ctx, snapshotTaken{camera: r.name, id: req.id, err: errors.New("agent: the camera is failing; retrying")})
		}
	}
}

type attachment struct {
	gen    uint64
	cancel context.CancelFunc
	done   chan struct{}
}

// session feeds the demand's consumers from an open capture (opened with
// spec) until nothing is wanted (nil), the capture fails (its error), the
// camera is unplugged or gets another microphone, or ctx ends.
func (r *cameraRunner) session(ctx context.Context, capture Capture, spec CaptureSpec, d *demand) error {
	var wg sync.WaitGroup
	attached := map[consumerID]*attachment{}
	detach := func(id consumerID) {
		h := attached[id]
		h.cancel()
		<-h.done
		delete(attached, id)
	}
	detachAll := func() {
		for _, h := range attached {
			h.cancel()
		}
		wg.Wait()
		clear(attached)
	}
	reconcile := func() {
		for id, h := range attached {
			if c, ok := d.consumers[id]; !ok || c.gen != h.gen {
				detach(id)
			}
		}
		for id, c := range d.consumers {
			if _, ok := attached[id]; ok {
				continue
			}
			actx, cancel := context.WithCancel(ctx)
			h := &attachment{gen: c.gen, cancel: cancel, done: make(chan struct{})}
			attached[id] = h
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(h.done)
				r.attachLoop(actx, ctx, capture, c)
			}()
		}
	}
	reconcile()
	ready := capture.Ready()
	statsT := time.NewTicker(r.statsEvery)
	defer statsT.Stop()
	prev, prevAt := capture.Stats(), time.Now()
	for {
		select {
		case now := <-statsT.C:
			cur := capture.Stats()
			dt := now.Sub(prevAt).Seconds()
			r.emit(ctx, cameraStatsRead{camera: r.name, stats: CameraStats{
				CaptureFPS: math.Round(float64(cur.Frames-prev.Frames)/dt*10) / 10,
				EncoderFPS: math.Round(float64(cur.Encoded-prev.Encoded)/dt*10) / 10,
				Dropped:    cur.Dropped, QueueLevel: cur.QueueLevel,
			}})
			prev, prevAt = cur, now
		case <-ready:
			ready = nil
			res := capture.Resolved()
			r.log.Info("camera running", "encoder", res.Encoder, "mode", res.Mode, "audio", r.dev.spec.Audio.Device)
			r.captureEvent(ctx, captureChanged{state: CaptureRunning, opened: &res})
		case dev := <-r.devc:
			r.dev = dev
			switch {
			case !dev.present:
				detachAll()
				return errUnplugged
			case dev.spec.Audio != spec.Audio || dev.spec.Video != spec.Video:
				detachAll()
				r.consumersFailed(ctx, *d, errNewDevice.Error(), 0)
				return errNewDevice
			}
		case <-ctx.Done():
			detachAll()
			return nil
		case nd := <-r.demandc:
			*d = nd
			reconcile()
			if !nd.open() {
				detachAll()
				return nil
			}
		case req := <-r.snapc:
			wg.Add(1)
			go func() {
				defer wg.Done()
				pic, err := capture.Snapshot(req.opts)
				r.emit(ctx, snapshotTaken{camera: r.name, id: req.id, pic: pic, err: err})
			}()
		case <-capture.Done():
			detachAll()
			err := capture.Err()
			if err == nil {
				err = errors.New("agent: capture ended")
			}
			return err
		}
	}
}

// attachLoop keeps one consumer fed. An output with a TCP server (RTMP)
// is only probed while the server does not even accept TCP (cheap, no
// pipeline built, no backoff step used up); the moment it accepts again the
// sender is rebuilt, with the backoff started afresh. Other failures
// (refused key, dropped connection, an SRT peer that does not answer, a
// recording that cannot write) wait out the stepped backoff, cut short if
// the server is seen going away and coming back meanwhile.
//
// ctx ends the attachment; runCtx is the runner's: a recording switched off
// still reports the file it closed.
func (r *cameraRunner) attachLoop(ctx, runCtx context.Context, capture Capture, c consumer) {
	host, port, probe := c.out.tcpEndpoint()
	log := r.log.With("output", string(c.id), "url", c.out.Redacted())
	bo := r.newBackoff()
	for {
		if probe {
			if err := r.reachable(ctx, host, port); err != nil {
				if ctx.Err() != nil {
					return
				}
				err = fmt.Errorf("agent: server unreachable: %w", err)
				log.Warn("output unreachable; probing until it answers", "err", err)
				r.outputEvent(ctx, c, outputChanged{state: StateRetrying, err: err.Error()})
				if !waitReachable(ctx, r.reachable, host, port, r.probeEvery) {
					return
				}
				bo.Reset()
			}
		}
		r.outputEvent(ctx, c, outputChanged{state: StateConnecting})
		start := time.Now()
		wentLive, live := false, false
		err := capture.Attach(ctx, c.out, OutputHooks{
			Live: func(now bool, detail string) {
				if now == live && now {
					return
				}
				live = now
				if now {
					wentLive = true
					r.outputEvent(ctx, c, outputChanged{state: StateLive})
				} else {
					r.outputEvent(ctx, c, outputChanged{state: StateConnecting, detail: detail})
				}
			},
			Progress: func(p OutputProgress) {
				r.emit(ctx, outputProgressed{camera: r.name, id: c.id, gen: c.gen, at: time.Now(), p: p})
			},
			Segment: func(s Segment) {
				r.emit(runCtx, segmentChanged{camera: r.name, id: c.id, gen: c.gen, seg: s})
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
			err = errors.New("agent: output ended")
		}
		if wentLive || time.Since(start) > 30*time.Second {
			// It worked until it didn't: a fresh failure, not a repeat.
			bo.Reset()
		}
		if probe && r.reachable(ctx, host, port) != nil {
			// Lost the server itself: report why the sender failed, then
			// probe (top of the loop).
			log.Warn("output failed", "err", err)
			r.outputEvent(ctx, c, outputChanged{state: StateRetrying, err: err.Error()})
			continue
		}
		delay := bo.Next()
		log.Warn("output failed", "err", err, "retry_in", delay.Round(time.Millisecond))
		r.outputEvent(ctx, c, outputChanged{state: StateRetrying, err: err.Error(), retryIn: delay})
		if !probe {
			if !sleepCtx(ctx, delay) {
				return
			}
			continue
		}
		if !waitRetry(ctx, delay, r.reachable, host, port, r.probeEvery) {
			return
		}
	}
}
