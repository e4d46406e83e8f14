package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/makercast/makercast/internal/media/graph"
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
	on         bool
	manual     bool
	interval   time.Duration
	session    string // directory of the frames, relative to the store
	frames     int
	started    time.Time
	assembling int // videos being encoded
	lastError  string
	timer      *time.Timer
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

// tlResult is a finished assembly.
type tlResult struct {
	camera, session, out string
	frames               int
	err                  error
}

func (a *Agent) timelapseState(cam string) TimelapseState {
	tl := a.tls[cam]
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

func (a *Agent) publishTimelapse(ctx context.Context, cam string) {
	a.publishJSON(ctx, a.s.Topics.CameraTimelapse(cam), a.timelapseState(cam), true)
}

// timelapseCommand starts or stops a timelapse.
func (a *Agent) timelapseCommand(ctx context.Context, c Command) (any, error) {
	cam, err := a.camera(c.Camera)
	if err != nil {
		return nil, err
	}
	tl := a.tls[cam]
	if !c.On {
		if !tl.on {
			return a.timelapseState(cam), nil
		}
		a.stopTimelapse(ctx, cam, "")
		return a.timelapseState(cam), nil
	}
	if tl.on {
		return nil, cmdErr(CodeConflict, "a timelapse of camera %s is running already (%d frames)", cam, tl.frames)
	}
	if tl.assembling > 0 {
		return nil, cmdErr(CodeBusy, "the last timelapse of camera %s is still being encoded", cam)
	}
	if a.store == nil {
		return nil, &CommandError{Code: CodeUnavailable, Message: errNoStore.Error()}
	}
	now := time.Now()
	session := fmt.Sprintf("timelapse/%s/%s", cam, now.UTC().Format("20060102T150405.000"))
	if err := a.store.MkdirAll(session); err != nil {
		return nil, &CommandError{Code: CodeUnavailable, Message: err.Error()}
	}
	*tl = timelapse{on: true, manual: c.Manual, interval: a.s.Timelapse.Interval, started: now, session: session}
	if c.Interval > 0 {
		tl.interval = time.Duration(c.Interval) * time.Second
	}
	if !tl.manual {
		a.armTimelapse(cam, 0)
	}
	a.log.Info("timelapse started", "camera", cam, "manual", tl.manual, "interval", tl.interval)
	a.publishTimelapse(ctx, cam)
	return a.timelapseState(cam), nil
}

// tlTickMsg is a timer tick of one timelapse session; a tick of an
// earlier session (stopped and started again meanwhile) is ignored.
type tlTickMsg struct{ camera, session string }

// armTimelapse schedules the next frame.
func (a *Agent) armTimelapse(cam string, after time.Duration) {
	tl := a.tls[cam]
	tick := tlTickMsg{camera: cam, session: tl.session}
	tl.timer = time.AfterFunc(after, func() {
		select {
		case a.tlTick <- tick:
		default:
		}
	})
}

// timelapseTick takes an interval frame and schedules the next.
func (a *Agent) timelapseTick(t tlTickMsg) {
	tl := a.tls[t.camera]
	if !tl.on || tl.manual || tl.session != t.session {
		return
	}
	if err := a.timelapseFrame(t.camera); err != nil {
		a.log.Warn("timelapse frame skipped", "camera", t.camera, "err", err)
	}
	a.armTimelapse(t.camera, tl.interval)
}

// timelapseFrame asks for one frame (a timer tick or a frame command).
func (a *Agent) timelapseFrame(cam string) error {
	tl := a.tls[cam]
	if !tl.on {
		return cmdErr(CodeConflict, "no timelapse of camera %s is running", cam)
	}
	st := a.snaps[cam]
	if len(st.pending) >= 64 {
		return cmdErr(CodeBusy, "too many frames waiting for camera %s", cam)
	}
	st.pending = append(st.pending, snapWaiter{opts: graph.JPEG{Quality: a.s.Timelapse.Quality}, frame: true})
	a.pumpSnapshots(cam)
	return nil
}

// storeFrame writes a picture as the next frame.
func (a *Agent) storeFrame(ctx context.Context, cam string, pic graph.Picture) {
	tl := a.tls[cam]
	if !tl.on {
		return
	}
	_, err := a.store.Write(fmt.Sprintf("%s/frame-%06d.jpg", tl.session, tl.frames), pic.JPEG)
	if err != nil {
		a.stopTimelapse(ctx, cam, fmt.Sprintf("frame %d not stored: %v; timelapse stopped", tl.frames, err))
		return
	}
	tl.frames++
	a.publishTimelapse(ctx, cam)
}

// stopTimelapse ends the timelapse and encodes its frames in the
// background; reason, when set, is reported as an error event.
func (a *Agent) stopTimelapse(ctx context.Context, cam, reason string) {
	tl := a.tls[cam]
	tl.on = false
	if tl.timer != nil {
		tl.timer.Stop()
	}
	if reason != "" {
		tl.lastError = reason
		a.log.Warn("timelapse stopped", "camera", cam, "reason", reason)
		a.publishJSON(ctx, a.s.Topics.CameraTimelapseEvent(cam), map[string]any{"event": "error", "error": reason, "frames": tl.frames}, false)
	}
	if tl.frames == 0 {
		_ = a.store.RemoveAll(tl.session)
		a.publishJSON(ctx, a.s.Topics.CameraTimelapseEvent(cam), map[string]any{"event": "error", "error": "no frames were taken; no video made", "frames": 0}, false)
		a.publishTimelapse(ctx, cam)
		return
	}
	a.assemble(ctx, cam, tl.session, tl.frames)
}

// assemble encodes a session's frames into session.mp4 in the background.
func (a *Agent) assemble(ctx context.Context, cam, session string, frames int) {
	tl := a.tls[cam]
	pattern, err1 := a.store.Path(session + "/frame-%06d.jpg")
	out, err2 := a.store.Path(session + ".mp4")
	if err := errors.Join(err1, err2); err != nil {
		tl.lastError = err.Error()
		a.publishTimelapse(ctx, cam)
		return
	}
	tl.assembling++
	a.publishTimelapse(ctx, cam)
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		err := a.media.AssembleTimelapse(a.bgCtx, pattern, a.s.Timelapse.FPS, out)
		select {
		case a.tlDone <- tlResult{camera: cam, session: session, out: out, frames: frames, err: err}:
		case <-a.bgCtx.Done():
		}
	}()
}

// recoverTimelapses finishes what an earlier run left: frames of a
// timelapse that was running, or being encoded, when the agent stopped
// (power cut, update) are made into their video now.
func (a *Agent) recoverTimelapses(ctx context.Context) {
	if a.store == nil {
		return
	}
	for _, name := range a.camOrder {
		base := "timelapse/" + name
		sessions, _, err := a.store.List(base)
		if err != nil {
			a.log.Warn("timelapse directory unreadable", "camera", name, "err", err)
			continue
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
			a.log.Info("encoding the frames of an interrupted timelapse", "camera", name, "session", session, "frames", frames)
			a.assemble(ctx, name, session, frames)
		}
	}
}

// timelapseDone reports an assembled (or failed) video.
func (a *Agent) timelapseDone(ctx context.Context, r tlResult) {
	tl := a.tls[r.camera]
	tl.assembling--
	if r.err != nil {
		tl.lastError = "encoding the video failed: " + r.err.Error()
		a.log.Warn("timelapse encoding failed", "camera", r.camera, "err", r.err)
		a.publishJSON(ctx, a.s.Topics.CameraTimelapseEvent(r.camera), map[string]any{"event": "error", "error": tl.lastError, "frames": r.frames}, false)
	} else {
		a.store.Added(r.out)
		_ = a.store.RemoveAll(r.session) // the frames; the video stays
		fps := a.s.Timelapse.FPS
		a.log.Info("timelapse done", "camera", r.camera, "path", r.out, "frames", r.frames)
		a.publishJSON(ctx, a.s.Topics.CameraTimelapseEvent(r.camera), map[string]any{
			"event": "done", "path": r.out, "frames": r.frames, "fps": fps,
			"duration_s": float64(r.frames) / float64(fps)}, false)
	}
	a.publishTimelapse(ctx, r.camera)
}

// camera resolves a camera name ("" = the only camera).
func (a *Agent) camera(name string) (string, error) {
	if name == "" {
		if len(a.cams) != 1 {
			return "", cmdErr(CodeBadPayload, "missing camera (there are %d)", len(a.cams))
		}
		return a.defaultCamera(), nil
	}
	if _, ok := a.cams[name]; !ok {
		return "", cmdErr(CodeUnknownCamera, "no camera named %s", quote(name))
	}
	return name, nil
}
