package agent

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// TimelapseSettings tune timelapses.
type TimelapseSettings struct {
	// Interval is the default time between frames (10 s).
	Interval time.Duration
	// FPS is the frame rate of the assembled video (25).
	FPS int
	// Quality is the JPEG quality of frames (90).
	Quality int
}

// errNoStore is answered when no media directory is configured.
var errNoStore = errors.New("agent: no media directory (MAKERCAST_MEDIA_DIR)")

// timelapse is one camera's timelapse.
type timelapse struct {
	on       bool
	manual   bool
	interval time.Duration
	session  string // directory of the frames, relative to the store
	// frames are stored; queued are on their way to the disk (numbered
	// frames+queued... in order; the file worker writes one at a time).
	frames, queued int
	started        time.Time
	assembling     int // videos being encoded
	lastError      string
}

// TimelapseState is the retained JSON of a camera's timelapse.
type TimelapseState struct {
	State      string `json:"state"`
	Mode       string `json:"mode,omitempty"`
	IntervalS  int    `json:"interval_s,omitempty"`
	Frames     int    `json:"frames"`
	Started    string `json:"started,omitempty"`
	Assembling bool   `json:"assembling"`
	LastError  string `json:"last_error"`
}

func (tl *timelapse) view() TimelapseState {
	s := TimelapseState{State: onOff(tl.on), Frames: tl.frames, Assembling: tl.assembling > 0, LastError: tl.lastError}
	if tl.on {
		s.Mode = "interval"
		if tl.manual {
			s.Mode = "manual"
		} else {
			s.IntervalS = int(tl.interval / time.Second)
		}
		s.Started = tl.started.UTC().Format(time.RFC3339)
	}
	return s
}

func (a *Agent) timelapseEvent(cam string, v map[string]any) {
	a.publish(a.s.Topics.CameraTimelapseEvent(cam), v)
}

// timelapseCommand starts or stops a timelapse.
func (a *Agent) timelapseCommand(c Command) (any, error) {
	cam, err := a.cams.resolve(c.Camera)
	if err != nil {
		return nil, err
	}
	tl := &cam.timelapse
	if !c.On {
		if tl.on {
			a.stopTimelapse(cam, "")
		}
		return tl.view(), nil
	}
	if tl.on {
		return nil, cmdErr(CodeConflict, "a timelapse of camera %s is running already (%d frames)", cam.cfg.Name, tl.frames)
	}
	if tl.assembling > 0 {
		return nil, cmdErr(CodeBusy, "the last timelapse of camera %s is still being encoded", cam.cfg.Name)
	}
	if a.store == nil {
		return nil, &CommandError{Code: CodeUnavailable, Message: errNoStore.Error()}
	}
	now := time.Now()
	session := fmt.Sprintf("timelapse/%s/%s", cam.cfg.Name, now.UTC().Format("20060102T150405.000"))
	// A directory entry, quick: done on the loop, so that the answer can
	// say whether the media directory is writable.
	if err := a.store.MkdirAll(session); err != nil {
		return nil, &CommandError{Code: CodeUnavailable, Message: err.Error()}
	}
	assembling := tl.assembling
	*tl = timelapse{on: true, manual: c.Manual, interval: a.s.Timelapse.Interval, started: now, session: session, assembling: assembling}
	if c.Interval > 0 {
		tl.interval = time.Duration(c.Interval) * time.Second
	}
	if !tl.manual {
		a.armTimelapse(cam, 0)
	}
	a.log.Info("timelapse started", "camera", cam.cfg.Name, "manual", tl.manual, "interval", tl.interval)
	return tl.view(), nil
}

// armTimelapse schedules the next interval frame.
func (a *Agent) armTimelapse(cam *camera, after time.Duration) {
	session := cam.timelapse.session
	a.after("timelapse "+cam.cfg.Name, after, func() {
		tl := &cam.timelapse
		if !tl.on || tl.manual || tl.session != session {
			return
		}
		if err := a.timelapseFrame(cam); err != nil {
			a.log.Warn("timelapse frame skipped", "camera", cam.cfg.Name, "err", err)
		}
		a.armTimelapse(cam, tl.interval)
	})
}

// timelapseFrame asks for one frame (a timer tick or a frame command).
func (a *Agent) timelapseFrame(cam *camera) error {
	if !cam.timelapse.on {
		return cmdErr(CodeConflict, "no timelapse of camera %s is running", cam.cfg.Name)
	}
	return a.queueSnapshot(cam, snapWaiter{opts: SnapshotOptions{Quality: a.s.Timelapse.Quality}, frame: true})
}

// storeFrame has the file worker write a picture as the next frame.
func (a *Agent) storeFrame(cam *camera, pic Picture) {
	tl := &cam.timelapse
	if !tl.on {
		return
	}
	session, n, store := tl.session, tl.frames+tl.queued, a.store
	tl.queued++
	a.files.do(func() func() {
		_, err := store.Write(fmt.Sprintf("%s/frame-%06d.jpg", session, n), pic.JPEG)
		return func() {
			if tl.session != session {
				return
			}
			tl.queued--
			if !tl.on {
				return // stopped meanwhile: counted when the video is made
			}
			if err != nil {
				a.stopTimelapse(cam, fmt.Sprintf("frame %d not stored: %v; timelapse stopped", n, err))
				return
			}
			tl.frames++
		}
	})
}

// stopTimelapse ends the timelapse and encodes its frames in the
// background, once the frames on their way are on disk; reason, when set,
// is reported as an error event.
func (a *Agent) stopTimelapse(cam *camera, reason string) {
	tl := &cam.timelapse
	tl.on = false
	a.timers.cancel("timelapse " + cam.cfg.Name)
	name := cam.cfg.Name
	if reason != "" {
		tl.lastError = reason
		a.log.Warn("timelapse stopped", "camera", name, "reason", reason)
		a.timelapseEvent(name, map[string]any{"event": "error", "error": reason, "frames": tl.frames})
	}
	// After the frames still queued for the disk: the worker runs in order.
	session, store := tl.session, a.store
	a.files.do(func() func() {
		_, files, _ := store.List(session)
		frames := 0
		for _, f := range files {
			if strings.HasPrefix(f, "frame-") && strings.HasSuffix(f, ".jpg") {
				frames++
			}
		}
		if frames == 0 {
			_ = store.RemoveAll(session)
		}
		return func() {
			if tl.session == session {
				tl.frames = frames
			}
			if frames == 0 {
				a.timelapseEvent(name, map[string]any{"event": "error", "error": "no frames were taken; no video made", "frames": 0})
				return
			}
			a.assemble(cam, session, frames)
		}
	})
}

// assemble encodes a session's frames into session.mp4 in the background.
func (a *Agent) assemble(cam *camera, session string, frames int) {
	tl := &cam.timelapse
	pattern, err1 := a.store.Path(session + "/frame-%06d.jpg")
	out, err2 := a.store.Path(session + ".mp4")
	if err := errors.Join(err1, err2); err != nil {
		tl.lastError = err.Error()
		return
	}
	tl.assembling++
	name := cam.cfg.Name
	a.run.bg.Add(1)
	go func() {
		defer a.run.bg.Done()
		err := a.media.AssembleTimelapse(a.run.bgCtx, pattern, a.s.Timelapse.FPS, out)
		select {
		case a.events <- timelapseAssembled{camera: name, session: session, out: out, frames: frames, err: err}:
		case <-a.run.bgCtx.Done():
		}
	}()
}

// recoverTimelapses finishes what an earlier run left: frames of a
// timelapse that was running, or being encoded, when the agent stopped
// (power cut, update) are made into their video now.
func (a *Agent) recoverTimelapses() {
	if a.store == nil {
		return
	}
	a.cams.each(func(cam *camera) {
		base := "timelapse/" + cam.cfg.Name
		sessions, _, err := a.store.List(base)
		if err != nil {
			a.log.Warn("timelapse directory unreadable", "camera", cam.cfg.Name, "err", err)
			return
		}
		for _, sdir := range sessions {
			session := base + "/" + sdir
			_, files, err := a.store.List(session)
			if err != nil {
				continue
			}
			frames := 0
			for _, f := range files {
				if strings.HasPrefix(f, "frame-") && strings.HasSuffix(f, ".jpg") {
					frames++
				}
			}
			if frames == 0 {
				_ = a.store.RemoveAll(session)
				continue
			}
			a.log.Info("encoding the frames of an interrupted timelapse", "camera", cam.cfg.Name, "session", session, "frames", frames)
			a.assemble(cam, session, frames)
		}
	})
}

// timelapseAssembled reports an assembled (or failed) video.
func (a *Agent) timelapseAssembled(r timelapseAssembled) {
	cam := a.cams.get(r.camera)
	if cam == nil {
		return
	}
	tl := &cam.timelapse
	tl.assembling--
	if r.err != nil {
		tl.lastError = "encoding the video failed: " + r.err.Error()
		a.log.Warn("timelapse encoding failed", "camera", r.camera, "err", r.err)
		a.timelapseEvent(r.camera, map[string]any{"event": "error", "error": tl.lastError, "frames": r.frames})
		return
	}
	session, store, out := r.session, a.store, r.out
	a.files.do(func() func() {
		store.Added(out)
		_ = store.RemoveAll(session) // the frames; the video stays
		return nil
	})
	fps := a.s.Timelapse.FPS
	a.log.Info("timelapse done", "camera", r.camera, "path", r.out, "frames", r.frames)
	a.timelapseEvent(r.camera, map[string]any{
		"event": "done", "path": r.out, "frames": r.frames, "fps": fps,
		"duration_s": float64(r.frames) / float64(fps)})
}
