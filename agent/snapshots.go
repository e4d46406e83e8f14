package agent

import (
	"time"
)

// SnapshotSettings tune snapshots.
type SnapshotSettings struct {
	// Quality is the default JPEG quality (85).
	Quality int
	// MinInterval is the least time between two snapshots of a camera
	// (250 ms): requests in between are served by the next picture, so a
	// flood of commands cannot take CPU from the stream.
	MinInterval time.Duration
	// Every, when set, takes a snapshot of every camera that often, to keep
	// Home Assistant's picture fresh.
	Every time.Duration
	// KeepWarm keeps cameras open while nothing streams.
	KeepWarm bool
	// Warmup is how long a camera opened only for a snapshot settles (1 s).
	Warmup time.Duration
	// Keep, when set, also saves the newest Keep snapshots of each camera
	// in the media directory (snapshots/<camera>/).
	Keep int
}

// maxWaiting bounds the snapshot requests (answers, periodic pictures,
// timelapse frames) waiting for one camera.
const maxWaiting = 64

// snapWaiter is one request waiting for a picture.
type snapWaiter struct {
	opts        SnapshotOptions
	transaction string
	respond     bool // false for periodic snapshots and timelapse frames
	frame       bool // a timelapse frame
}

// snapQueue coalesces and paces one camera's snapshots.
type snapQueue struct {
	inFlight uint64 // the id of the picture being taken (0: none)
	batch    []snapWaiter
	pending  []snapWaiter
	last     time.Time
}

// snapshot queues a snapshot request; the answer comes when the picture is
// taken (or fails).
func (a *Agent) snapshot(c Command) error {
	cam, err := a.cams.resolve(c.Camera)
	if err != nil {
		return err
	}
	opts := SnapshotOptions{Width: c.Width, Height: c.Height, Quality: c.Quality}
	if opts.Quality == 0 {
		opts.Quality = a.s.Snapshots.Quality
	}
	if err := opts.Validate(); err != nil {
		return &CommandError{Code: CodeBadValue, Message: err.Error()}
	}
	return a.queueSnapshot(cam, snapWaiter{opts: opts, transaction: c.Transaction, respond: true})
}

// queueSnapshot adds a request to a camera's queue.
func (a *Agent) queueSnapshot(cam *camera, w snapWaiter) error {
	q := &cam.snaps
	if len(q.pending) >= maxWaiting {
		what := "snapshot requests"
		if w.frame {
			what = "frames"
		}
		return cmdErr(CodeBusy, "too many %s waiting for camera %s", what, cam.cfg.Name)
	}
	q.pending = append(q.pending, w)
	a.pumpSnapshots(cam)
	return nil
}

// pumpSnapshots starts the next snapshot of cam when none is running and
// the minimum interval has passed; every waiting request with the same
// options is served by it.
func (a *Agent) pumpSnapshots(cam *camera) {
	q := &cam.snaps
	if q.inFlight != 0 || len(q.pending) == 0 {
		return
	}
	if wait := a.s.Snapshots.MinInterval - time.Since(q.last); wait > 0 {
		a.after("snapshot "+cam.cfg.Name, wait, func() { a.pumpSnapshots(cam) })
		return
	}
	first := q.pending[0].opts
	q.batch = q.batch[:0]
	rest := q.pending[:0]
	for _, w := range q.pending {
		if w.opts == first {
			q.batch = append(q.batch, w)
		} else {
			rest = append(rest, w)
		}
	}
	q.pending = rest
	a.cams.lastSnap++
	q.inFlight = a.cams.lastSnap
	// Never blocks: one request at a time per camera, and the runner
	// always takes it (waiting, sleeping or in a session).
	cam.runner.snapc <- snapReq{id: q.inFlight, opts: first}
}

// snapshotTaken publishes a picture and answers everyone who asked for it.
func (a *Agent) snapshotTaken(ev snapshotTaken) {
	cam := a.cams.get(ev.camera)
	if cam == nil || cam.snaps.inFlight != ev.id {
		return
	}
	q := &cam.snaps
	q.inFlight, q.last = 0, time.Now()
	var data any
	var err error
	if ev.err != nil {
		a.log.Warn("snapshot failed", "camera", ev.camera, "err", ev.err)
		err = &CommandError{Code: CodeUnavailable, Message: ev.err.Error()}
	} else {
		topic := a.s.Topics.CameraImage(ev.camera)
		a.out.put(topic, ev.pic.JPEG, true)
		if a.s.Snapshots.Keep > 0 && a.store != nil {
			a.saveSnapshot(ev.camera, ev.pic)
		}
		data = map[string]any{"camera": ev.camera, "topic": topic, "bytes": len(ev.pic.JPEG),
			"width": ev.pic.Width, "height": ev.pic.Height, "taken": ev.pic.Taken.UTC().Format(time.RFC3339Nano)}
	}
	frame := false
	for _, w := range q.batch {
		if w.respond {
			a.respond(CmdSnapshot, w.transaction, data, err)
		}
		frame = frame || w.frame
	}
	if frame && ev.err == nil {
		a.storeFrame(cam, ev.pic)
	}
	q.batch = q.batch[:0]
	a.pumpSnapshots(cam)
}

// saveSnapshot keeps the picture in the media directory, off the loop.
func (a *Agent) saveSnapshot(cam string, pic Picture) {
	dir := "snapshots/" + cam
	keep, store, log := a.s.Snapshots.Keep, a.store, a.log
	a.files.do(func() func() {
		if _, err := store.Write(dir+"/"+pic.Taken.UTC().Format("20060102T150405.000")+".jpg", pic.JPEG); err != nil {
			log.Warn("snapshot not saved", "camera", cam, "err", err)
		} else if err := store.Prune(dir, keep); err != nil {
			log.Warn("old snapshots not removed", "camera", cam, "err", err)
		}
		return nil
	})
}

// periodicSnapshots queues one snapshot of every camera (no answer).
func (a *Agent) periodicSnapshots() {
	a.cams.each(func(c *camera) {
		if c.dev.present && len(c.snaps.pending) < maxWaiting {
			c.snaps.pending = append(c.snaps.pending, snapWaiter{opts: SnapshotOptions{Quality: a.s.Snapshots.Quality}})
			a.pumpSnapshots(c)
		}
	})
}
