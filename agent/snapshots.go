package agent

import (
	"context"
	"errors"
	"time"

	"github.com/makercast/makercast/internal/media/graph"
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

// snapWaiter is one request waiting for a picture.
type snapWaiter struct {
	opts        graph.JPEG
	transaction string
	respond     bool // false for periodic snapshots and timelapse frames
	frame       bool // a timelapse frame
}

// snapState coalesces and paces one camera's snapshots.
type snapState struct {
	inFlight uint64
	batch    []snapWaiter
	pending  []snapWaiter
	last     time.Time
	timer    bool
}

// snapshot queues a snapshot request; the answer comes when the picture is
// taken (or fails).
func (a *Agent) snapshot(ctx context.Context, cmd Command) {
	cam := cmd.Camera
	if cam == "" && len(a.cams) == 1 {
		cam = a.defaultCamera()
	}
	if _, ok := a.cams[cam]; !ok {
		a.respond(ctx, CmdSnapshot, cmd.Transaction, nil, cmdErr(CodeUnknownCamera, "no camera named %s", quote(cam)))
		return
	}
	opts := graph.JPEG{Width: cmd.Width, Height: cmd.Height, Quality: cmd.Quality}
	if opts.Quality == 0 {
		opts.Quality = a.s.Snapshots.Quality
	}
	if err := opts.Validate(); err != nil {
		a.respond(ctx, CmdSnapshot, cmd.Transaction, nil, &CommandError{Code: CodeBadValue, Message: err.Error()})
		return
	}
	st := a.snaps[cam]
	if len(st.pending) >= 64 {
		a.respond(ctx, CmdSnapshot, cmd.Transaction, nil, cmdErr(CodeBusy, "too many snapshot requests waiting for camera %s", cam))
		return
	}
	st.pending = append(st.pending, snapWaiter{opts: opts, transaction: cmd.Transaction, respond: true})
	a.pumpSnapshots(cam)
}

// pumpSnapshots starts the next snapshot of cam when none is running and
// the minimum interval has passed; every waiting request with the same
// options is served by it.
func (a *Agent) pumpSnapshots(cam string) {
	st := a.snaps[cam]
	if st.inFlight != 0 || len(st.pending) == 0 {
		return
	}
	if wait := a.s.Snapshots.MinInterval - time.Since(st.last); wait > 0 {
		if !st.timer {
			st.timer = true
			time.AfterFunc(wait, func() {
				select {
				case a.snapTick <- cam:
				default: // a tick is queued already; it pumps every camera
				}
			})
		}
		return
	}
	first := st.pending[0].opts
	st.batch = st.batch[:0]
	rest := st.pending[:0]
	for _, w := range st.pending {
		if w.opts == first {
			st.batch = append(st.batch, w)
		} else {
			rest = append(rest, w)
		}
	}
	st.pending = rest
	a.nextSnap++
	st.inFlight = a.nextSnap
	a.cams[cam].runner.snapc <- snapReq{id: st.inFlight, opts: first}
}

// snapDone publishes a picture and answers everyone who asked for it.
func (a *Agent) snapDone(ctx context.Context, ev event) {
	st := a.snaps[ev.camera]
	if st == nil || st.inFlight != ev.snap {
		return
	}
	st.inFlight, st.last = 0, time.Now()
	var data any
	var err error
	if ev.snapErr != nil {
		a.log.Warn("snapshot failed", "camera", ev.camera, "err", ev.snapErr)
		err = &CommandError{Code: CodeUnavailable, Message: ev.snapErr.Error()}
	} else {
		topic := a.s.Topics.CameraImage(ev.camera)
		a.publish(ctx, topic, ev.picture.JPEG, true)
		if a.s.Snapshots.Keep > 0 && a.store != nil {
			dir := "snapshots/" + ev.camera
			if _, err := a.store.Write(dir+"/"+ev.picture.Taken.UTC().Format("20060102T150405.000")+".jpg", ev.picture.JPEG); err != nil {
				a.log.Warn("snapshot not saved", "camera", ev.camera, "err", err)
			} else if err := a.store.Prune(dir, a.s.Snapshots.Keep); err != nil {
				a.log.Warn("old snapshots not removed", "camera", ev.camera, "err", err)
			}
		}
		data = map[string]any{"camera": ev.camera, "topic": topic, "bytes": len(ev.picture.JPEG),
			"width": ev.picture.Width, "height": ev.picture.Height, "taken": ev.picture.Taken.UTC().Format(time.RFC3339Nano)}
	}
	frame := false
	for _, w := range st.batch {
		if w.respond {
			a.respond(ctx, CmdSnapshot, w.transaction, data, err)
		}
		frame = frame || w.frame
	}
	if frame && ev.snapErr == nil {
		a.storeFrame(ctx, ev.camera, ev.picture)
	}
	st.batch = st.batch[:0]
	a.pumpSnapshots(ev.camera)
}

// periodicSnapshots queues one snapshot of every camera (no answer).
func (a *Agent) periodicSnapshots() {
	for _, n := range a.camOrder {
		if !a.cams[n].dev.present {
			continue
		}
		st := a.snaps[n]
		if len(st.pending) < 64 {
			st.pending = append(st.pending, snapWaiter{opts: graph.JPEG{Quality: a.s.Snapshots.Quality}})
		}
		a.pumpSnapshots(n)
	}
}

// respond publishes the answer to a command.
func (a *Agent) respond(ctx context.Context, name, transaction string, data any, err error) {
	resp := response{Status: "ok", Data: data, Transaction: transaction}
	if err != nil {
		var ce *CommandError
		if !errors.As(err, &ce) {
			ce = &CommandError{Code: "internal", Message: err.Error()}
		}
		resp = response{Status: "error", Code: ce.Code, Error: ce.Message, Transaction: transaction}
	}
	a.publishJSON(ctx, a.s.Topics.Response(name), resp, false)
}
