package agent

import (
	"path/filepath"
	"sort"
	"time"
)

// RecordingSettings tune local recordings.
type RecordingSettings struct {
	// Dir holds the recordings, a directory per camera
	// (MEDIA_DIR/recordings); "" means no recordings.
	Dir string
	// Segment is the length of one file (a new one starts at the first
	// keyframe after it, 60 s); Fragment how much a power cut can lose at
	// most (1 s).
	Segment, Fragment time.Duration
	// Retention, checked after every segment and every RetentionEvery
	// while recording (and once at start): segments older than MaxAge go
	// (0: no limit by age), then the oldest while all of them together
	// take more than MaxBytes (0: no limit) or the disk has less than
	// MinFree left. A recording that cannot get MinFree back stops with an
	// error: the disk is never filled.
	MaxAge         time.Duration
	MaxBytes       int64
	MinFree        int64
	RetentionEvery time.Duration
	// Files are the recordings on disk; nil: no retention.
	Files Recordings
}

// recording is one camera's recording.
type recording struct {
	on        bool
	gen       uint64
	state     string // idle, connecting (starting), live (recording), retrying
	lastError string
	started   time.Time
	// The open file: its path, when its first frame was captured and its
	// bytes so far.
	file      string
	fileStart time.Time
	fileBytes uint64
	// Closed segments of this recording and their bytes.
	segments   int
	closedSize int64
	// The time recorded and the bytes of the open file, as of the last
	// stats tick (what is published).
	shownDuration time.Duration
	shownBytes    uint64
	// writing are the files opened and not yet reported closed (a file is
	// finished in the background after the next one starts, or after the
	// recording is switched off): retention never touches them.
	writing map[string]bool
}

// RecordingState is the retained JSON of a camera's recording.
type RecordingState struct {
	State     string `json:"state"`  // the switch: ON or OFF
	Status    string `json:"status"` // idle, starting, recording, retrying
	File      string `json:"file,omitempty"`
	Started   string `json:"started,omitempty"`
	DurationS int64  `json:"duration_s"`
	Bytes     int64  `json:"bytes"`
	Segments  int    `json:"segments"`
	LastError string `json:"last_error"`
}

// Recording statuses, as published.
const (
	RecordingIdle      = "idle"
	RecordingStarting  = "starting"
	RecordingOn        = "recording"
	RecordingRetrying  = "retrying"
	recordingEventName = "segment"
)

func (r *recording) view() RecordingState {
	s := RecordingState{State: onOff(r.on), Status: RecordingIdle, LastError: r.lastError, Segments: r.segments,
		Bytes: r.closedSize + int64(r.shownBytes), DurationS: int64(r.shownDuration / time.Second)}
	if r.on {
		s.Started = r.started.UTC().Format(time.RFC3339)
		s.File = r.file
		switch r.state {
		case StateLive:
			s.Status = RecordingOn
		case StateRetrying, StateError:
			s.Status = RecordingRetrying
		default:
			s.Status = RecordingStarting
		}
	}
	return s
}

func (r *recording) tick(now time.Time) {
	if r.on {
		r.shownDuration, r.shownBytes = now.Sub(r.started), r.fileBytes
	}
}

// recordOutput is where camera cam records.
func (a *Agent) recordOutput(cam string) RecordOutput {
	return RecordOutput{Dir: filepath.Join(a.s.Recording.Dir, cam), Segment: a.s.Recording.Segment, Fragment: a.s.Recording.Fragment}
}

// recordingCommand starts or stops a camera's recording.
func (a *Agent) recordingCommand(c Command) (any, error) {
	cam, err := a.cams.resolve(c.Camera)
	if err != nil {
		return nil, err
	}
	if a.s.Recording.Dir == "" {
		return nil, &CommandError{Code: CodeUnavailable, Message: errNoStore.Error()}
	}
	if c.On && a.parts.retention.full != "" {
		return nil, cmdErr(CodeUnavailable, "%s", a.parts.retention.full)
	}
	a.switchRecording(cam, c.On)
	return cam.recording.view(), nil
}

// switchRecording switches a camera's recording on (a new generation) or
// off.
func (a *Agent) switchRecording(cam *camera, on bool) {
	r := &cam.recording
	if r.on == on {
		return
	}
	if on {
		*r = recording{on: true, gen: a.newGen(), state: StateConnecting, started: time.Now(), writing: r.writing}
		a.log.Info("recording started", "camera", cam.cfg.Name, "dir", a.recordOutput(cam.cfg.Name).Dir)
		return
	}
	a.log.Info("recording stopped", "camera", cam.cfg.Name, "segments", r.segments)
	r.on, r.state, r.file, r.fileBytes, r.shownBytes = false, StateIdle, "", 0, 0
	r.shownDuration = time.Since(r.started)
}

func (a *Agent) recordingOf(ev consumerEvent) *recording {
	c := a.cams.get(ev.cameraName())
	if c == nil || !c.recording.on || c.recording.gen != ev.generation() {
		return nil // a recorder that has since been stopped or replaced
	}
	return &c.recording
}

// consumerEvent is what the events of a consumer have in common.
type consumerEvent interface {
	cameraName() string
	generation() uint64
}

func (e outputChanged) cameraName() string    { return e.camera }
func (e outputChanged) generation() uint64    { return e.gen }
func (e outputProgressed) cameraName() string { return e.camera }
func (e outputProgressed) generation() uint64 { return e.gen }
func (e segmentChanged) cameraName() string   { return e.camera }
func (e segmentChanged) generation() uint64   { return e.gen }

func (a *Agent) recordingChanged(ev outputChanged) {
	r := a.recordingOf(ev)
	if r == nil {
		return
	}
	r.state = ev.state
	switch ev.state {
	case StateLive:
		r.lastError = ""
	case StateRetrying, StateError:
		r.lastError, r.file, r.fileBytes = ev.err, "", 0
		a.log.Warn("recording failed", "camera", ev.camera, "err", ev.err)
	}
}

func (a *Agent) recordingProgressed(ev outputProgressed) {
	if r := a.recordingOf(ev); r != nil && r.file != "" {
		r.fileBytes = ev.p.Bytes
	}
}

// segmentChanged follows a recording's files: a closed one is announced
// (with its path, start and length) and retention runs.
func (a *Agent) segmentChanged(ev segmentChanged) {
	c := a.cams.get(ev.camera)
	if c == nil {
		return
	}
	w := &c.recording.writing
	if *w == nil {
		*w = map[string]bool{}
	}
	if ev.seg.Closed {
		delete(*w, ev.seg.Path)
	} else {
		(*w)[ev.seg.Path] = true
	}
	r := a.recordingOf(ev)
	if r == nil {
		// A recording switched off (or replaced) still closes its last
		// file: announce it.
		if ev.seg.Closed {
			a.segmentEvent(c.cfg.Name, ev.seg)
			a.runRetention()
		}
		return
	}
	if !ev.seg.Closed {
		r.file, r.fileStart, r.fileBytes = ev.seg.Path, ev.seg.Start, 0
		return
	}
	r.segments++
	r.closedSize += ev.seg.Bytes
	if r.file == ev.seg.Path {
		r.file, r.fileBytes = "", 0
	}
	a.segmentEvent(c.cfg.Name, ev.seg)
	a.runRetention()
}

func (a *Agent) segmentEvent(cam string, s Segment) {
	a.publish(a.s.Topics.CameraRecordingEvent(cam), map[string]any{
		"event": recordingEventName, "path": s.Path, "start": s.Start.UTC().Format(time.RFC3339Nano),
		"duration_s": s.Duration.Seconds(), "bytes": s.Bytes})
}

// retentionState is the last retention run's outcome.
type retentionState struct {
	running bool
	again   bool // asked for while running
	// full, when set, says why recordings cannot go on: the disk has less
	// than MinFree left even without any finished segment.
	full string
}

// startRetention runs retention now and every RetentionEvery.
func (a *Agent) startRetention() {
	if a.s.Recording.Files == nil || a.s.Recording.Dir == "" {
		return
	}
	a.runRetention()
	if every := a.s.Recording.RetentionEvery; every > 0 {
		a.every("retention", every, a.runRetention)
	}
}

// runRetention has the file worker delete the segments retention says go
// (never an open one); when the disk still has less than MinFree left,
// every recording stops with an error.
func (a *Agent) runRetention() {
	rs := &a.parts.retention
	st := a.s.Recording
	if st.Files == nil {
		return
	}
	if rs.running {
		rs.again = true
		return
	}
	rs.running = true
	open := map[string]bool{}
	a.cams.each(func(c *camera) {
		for f := range c.recording.writing {
			open[f] = true
		}
	})
	log := a.log
	a.files.do(func() func() {
		removed, short, err := retain(st, open, time.Now())
		return func() {
			rs.running = false
			if err != nil {
				log.Warn("recording retention", "err", err)
			}
			if len(removed) > 0 {
				log.Info("old recordings removed", "files", len(removed), "first", removed[0])
			}
			rs.full = ""
			if short > 0 {
				rs.full = "the disk is nearly full: fewer than MAKERCAST_RECORD_MIN_FREE_MB left even without older recordings"
				a.cams.each(func(c *camera) {
					if c.recording.on {
						log.Warn("recording stopped: the disk is nearly full", "camera", c.cfg.Name)
						a.publish(a.s.Topics.CameraRecordingEvent(c.cfg.Name), map[string]any{"event": "error", "error": rs.full})
						a.switchRecording(c, false)
						c.recording.lastError = rs.full
					}
				})
			}
			if rs.again {
				rs.again = false
				a.runRetention()
			}
		}
	})
}

// retain deletes, oldest first, the recordings st's retention says go:
// older than MaxAge, then while they take more than MaxBytes or the disk has
// less than MinFree left. Files in open (being written) are kept. short is
// how many bytes are still missing to MinFree.
func retain(st RecordingSettings, open map[string]bool, now time.Time) (removed []string, short int64, err error) {
	files, err := st.Files.Files()
	if err != nil {
		return nil, 0, err
	}
	free, err := st.Files.Free()
	if err != nil {
		return nil, 0, err
	}
	for _, path := range expired(files, open, now, st, free) {
		if err := st.Files.Remove(path); err != nil {
			return removed, 0, err
		}
		removed = append(removed, path)
		for _, f := range files {
			if f.Path == path {
				free += f.Size
			}
		}
	}
	if st.MinFree > 0 && free < st.MinFree {
		short = st.MinFree - free
	}
	return removed, short, nil
}

// expired chooses the recordings to delete, oldest first (pure: the policy
// of retain).
func expired(files []RecordedFile, open map[string]bool, now time.Time, st RecordingSettings, free int64) []string {
	sorted := append([]RecordedFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Modified.Before(sorted[j].Modified) })
	var total int64
	for _, f := range sorted {
		total += f.Size
	}
	var out []string
	for _, f := range sorted {
		if open[f.Path] {
			continue
		}
		tooOld := st.MaxAge > 0 && now.Sub(f.Modified) > st.MaxAge
		tooBig := st.MaxBytes > 0 && total > st.MaxBytes
		tooFull := st.MinFree > 0 && free < st.MinFree
		if !tooOld && !tooBig && !tooFull {
			continue
		}
		out = append(out, f.Path)
		total -= f.Size
		free += f.Size
	}
	return out
}
