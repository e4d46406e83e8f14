package agent

import (
	"context"
	"errors"
	"time"
)

// Fleet is the device manager the agent runs under (balena's supervisor,
// package balena): it installs releases and restarts the agent or the
// device. Nil when there is none: no fleet entities then.
type Fleet interface {
	// Install fetches and installs the newest release now.
	Install(ctx context.Context) error
	RestartAgent(ctx context.Context) error
	Reboot(ctx context.Context) error
	// Identify blinks the device's LED, to find it on a shelf.
	Identify(ctx context.Context) error
}

// UpdateLock keeps the fleet manager from restarting the agent (a release
// pushed, a host OS update) while a stream is on: an update never cuts an
// event. Nil when there is none.
type UpdateLock interface {
	Lock() error
	Unlock() error
}

// ErrUpdatesLocked is a fleet action refused because the update lock is
// held (a stream is on). Fleet adapters wrap their own refusal in it.
var ErrUpdatesLocked = errors.New("agent: updates are locked while a stream is on")

// FleetUpdate is the release state the fleet manager reports, as Home
// Assistant's update entity reads it (only the keys it accepts).
type FleetUpdate struct {
	InstalledVersion string `json:"installed_version"`
	LatestVersion    string `json:"latest_version"`
	Title            string `json:"title,omitempty"`
	InProgress       bool   `json:"in_progress"`
	UpdatePercentage *int   `json:"update_percentage"`
}

// Fleet commands: HA's update entity and buttons, or request/<name>.
const (
	CmdFleetUpdate   = "fleet_update"
	CmdFleetRestart  = "fleet_restart"
	CmdFleetReboot   = "fleet_reboot"
	CmdFleetIdentify = "fleet_identify"
)

// CodeUpdatesLocked answers a fleet action refused while a stream is on.
const CodeUpdatesLocked = "updates_locked"

// fleetActions are the actions of fleet/<action>/set.
var fleetActions = map[string]string{
	"update": CmdFleetUpdate, "restart": CmdFleetRestart, "reboot": CmdFleetReboot, "identify": CmdFleetIdentify,
}

// fleetTimeout bounds one fleet action (the supervisor takes up to ~50 s to
// stop services before a restart).
const fleetTimeout = 60 * time.Second

func fleetCommand(name string) bool {
	switch name {
	case CmdFleetUpdate, CmdFleetRestart, CmdFleetReboot, CmdFleetIdentify:
		return true
	}
	return false
}

// fleetState is the fleet manager's part: its latest release state (sent
// again on reconnect), whether an action is under way and whether the
// update lock is held.
type fleetState struct {
	release     *FleetUpdate
	busy        bool // one action at a time
	updatesHeld bool
	// lockTried is when taking or dropping the lock last failed: it is
	// tried again a stats interval later, not at every step.
	lockTried time.Time
}

// fleetCommand starts a fleet action off the loop (it waits on HTTP); the
// answer comes with fleetAnswered. Installing while a stream is on is
// refused here: the install forces its way past the update lock.
func (a *Agent) fleetCommand(c Command) error {
	f := &a.parts.fleet
	if a.s.Fleet == nil {
		return cmdErr(CodeUnavailable, "this device is not managed by a fleet manager (balena)")
	}
	if f.busy {
		return cmdErr(CodeBusy, "another fleet action is under way")
	}
	if c.Name == CmdFleetUpdate {
		if n, on := a.dests.anyOn(); on {
			return cmdErr(CodeUpdatesLocked, "destination %s is on: an update would end the stream; switch it off first", n)
		}
	}
	act := map[string]func(context.Context) error{
		CmdFleetUpdate: a.s.Fleet.Install, CmdFleetRestart: a.s.Fleet.RestartAgent,
		CmdFleetReboot: a.s.Fleet.Reboot, CmdFleetIdentify: a.s.Fleet.Identify,
	}[c.Name]
	f.busy = true
	a.run.bg.Add(1)
	go func() {
		defer a.run.bg.Done()
		ctx, cancel := context.WithTimeout(a.run.bgCtx, fleetTimeout)
		defer cancel()
		err := act(ctx)
		select {
		case a.events <- fleetAnswered{cmd: c, err: err}:
		case <-a.run.bgCtx.Done():
		}
	}()
	return nil
}

// fleetAnswered answers a finished fleet action.
func (a *Agent) fleetAnswered(r fleetAnswered) {
	a.parts.fleet.busy = false
	var err error
	switch {
	case errors.Is(r.err, ErrUpdatesLocked):
		err = cmdErr(CodeUpdatesLocked, "refused while a stream is on (update lock): %v", r.err)
	case r.err != nil:
		err = cmdErr(CodeUnavailable, "%v", r.err)
	}
	if err != nil {
		a.log.Warn("fleet action failed", "command", r.cmd.Name, "err", r.err)
	} else {
		a.log.Info("fleet action done", "command", r.cmd.Name)
	}
	a.respond(r.cmd.Name, r.cmd.Transaction, map[string]any{"action": r.cmd.Name}, err)
}

// holdUpdates takes the update lock while any destination is switched on
// and lets it go when none is. A lock that cannot be taken is logged and
// never stops a stream; it is tried again a stats interval later.
// Recordings do not hold it: a camera that records around the clock would
// never be updated.
func (a *Agent) holdUpdates() {
	f := &a.parts.fleet
	if a.s.UpdateLock == nil {
		return
	}
	_, busy := a.dests.anyOn()
	if busy == f.updatesHeld || time.Since(f.lockTried) < a.s.Telemetry.Stats {
		return
	}
	var err error
	if busy {
		err = a.s.UpdateLock.Lock()
	} else {
		err = a.s.UpdateLock.Unlock()
	}
	if err != nil {
		f.lockTried = time.Now()
		a.log.Warn("update lock", "hold", busy, "err", err)
		return
	}
	f.lockTried = time.Time{}
	f.updatesHeld = busy
	a.log.Info("update lock", "held", busy)
}
