package agent

import (
	"encoding/json"
	"slices"
)

// resumeState is what Resume last saved (nil: nothing yet).
type resumeState struct {
	saved *savedSwitches
}

// savedSwitches is what Resume keeps: the configured destinations and the
// recordings switched on.
type savedSwitches struct {
	Streams    []string `json:"streams"`
	Recordings []string `json:"recordings,omitempty"`
}

// resumeSwitches switches on again the destinations and recordings that
// were on when the agent stopped (a power cut, kill -9, an update, a
// reboot: SIGTERM does not switch anything off).
func (a *Agent) resumeSwitches() {
	if a.s.Resume == nil {
		return
	}
	b, err := a.s.Resume.Load()
	if err != nil || b == nil {
		if err != nil {
			a.log.Warn("cannot read what was streaming before; nothing resumed", "err", err)
		}
		return
	}
	var st savedSwitches
	if err := json.Unmarshal(b, &st); err != nil {
		a.log.Warn("the saved streaming state is unreadable; nothing resumed", "err", err)
		return
	}
	for _, n := range st.Streams {
		d := a.dests.get(n)
		if d == nil || d.cfg.Runtime {
			continue // no longer configured
		}
		a.log.Info("resuming a stream that was on when the agent stopped", "destination", n, "camera", d.cfg.Camera)
		a.switchDestination(d, true)
	}
	for _, n := range st.Recordings {
		if c := a.cams.get(n); c != nil && a.s.Recording.Dir != "" {
			a.log.Info("resuming a recording that was on when the agent stopped", "camera", n)
			a.switchRecording(c, true)
		}
	}
}

// saveSwitches has the file worker save what is switched on, when it
// changed. The worker writes in order, so the last save wins; the write is
// atomic (statefile).
func (a *Agent) saveSwitches() {
	if a.s.Resume == nil {
		return
	}
	now := savedSwitches{Streams: []string{}}
	a.dests.each(func(d *destination) {
		if d.on && !d.cfg.Runtime {
			now.Streams = append(now.Streams, d.cfg.Name)
		}
	})
	a.cams.each(func(c *camera) {
		if c.recording.on {
			now.Recordings = append(now.Recordings, c.cfg.Name)
		}
	})
	if prev := a.parts.resume.saved; prev != nil && slices.Equal(prev.Streams, now.Streams) && slices.Equal(prev.Recordings, now.Recordings) {
		return
	}
	a.parts.resume.saved = &now
	b, _ := json.Marshal(now)
	file, log := a.s.Resume, a.log
	a.files.do(func() func() {
		if err := file.Save(b); err != nil {
			log.Warn("cannot save what is switched on (it will not resume after a restart)", "err", err)
		}
		return nil
	})
}
