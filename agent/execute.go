package agent

import (
	"errors"
)

type response struct {
	Status      string `json:"status"`
	Data        any    `json:"data,omitempty"`
	Code        string `json:"code,omitempty"`
	Error       string `json:"error,omitempty"`
	Transaction string `json:"transaction,omitempty"`
}

// respond publishes the answer to a command.
func (a *Agent) respond(name, transaction string, data any, err error) {
	resp := response{Status: "ok", Data: data, Transaction: transaction}
	if err != nil {
		var ce *CommandError
		if !errors.As(err, &ce) {
			ce = &CommandError{Code: "internal", Message: err.Error()}
		}
		resp = response{Status: "error", Code: ce.Code, Error: ce.Message, Transaction: transaction}
	}
	a.publish(a.s.Topics.Response(name), resp)
}

// execute changes the state as the command says and gives its answer's
// data. Nothing is started here: the runners are handed their new demand
// after the step (Agent.afterStep). answered is true for commands that
// answer later themselves (a snapshot when the picture is taken, a fleet
// action when the fleet manager is done).
func (a *Agent) execute(c Command) (data any, answered bool, err error) {
	switch c.Name {
	case CmdStream:
		cam, err := a.cams.resolve(c.Camera)
		if err != nil {
			return nil, false, err
		}
		dests := a.dests.of(cam.cfg.Name)
		if c.On && len(dests) == 0 {
			return nil, false, cmdErr(CodeConflict, "camera %s has no destination: configure MAKERCAST_STREAM_URL or add_destination", cam.cfg.Name)
		}
		names := []string{}
		for _, d := range dests {
			a.switchDestination(d, c.On)
			names = append(names, d.cfg.Name)
		}
		return map[string]any{"camera": cam.cfg.Name, "state": onOff(c.On), "destinations": names}, false, nil
	case CmdDestination:
		d := a.dests.get(c.Destination)
		if d == nil {
			return nil, false, cmdErr(CodeUnknownDestination, "no destination named %s", quote(c.Destination))
		}
		a.switchDestination(d, c.On)
		return map[string]any{"destination": d.cfg.Name, "state": onOff(c.On)}, false, nil
	case CmdStatus:
		return a.deviceState(), false, nil
	case CmdSnapshot:
		err := a.snapshot(c)
		return nil, err == nil, err
	case CmdTimelapse:
		data, err := a.timelapseCommand(c)
		return data, false, err
	case CmdTimelapseFrame:
		cam, err := a.cams.resolve(c.Camera)
		if err != nil {
			return nil, false, err
		}
		if err := a.timelapseFrame(cam); err != nil {
			return nil, false, err
		}
		return map[string]any{"camera": cam.cfg.Name, "frames_so_far": cam.timelapse.frames}, false, nil
	case CmdRecording:
		data, err := a.recordingCommand(c)
		return data, false, err
	case CmdAddDestination:
		data, err := a.addDestinationCommand(c)
		return data, false, err
	case CmdRemoveDestination:
		data, err := a.removeDestinationCommand(c)
		return data, false, err
	case CmdFleetUpdate, CmdFleetRestart, CmdFleetReboot, CmdFleetIdentify:
		err := a.fleetCommand(c)
		return nil, err == nil, err
	}
	return nil, false, cmdErr(CodeUnknownCommand, "unknown command %s", quote(c.Name))
}

// switchDestination switches a destination on (a new generation: its
// sender is built anew) or off.
func (a *Agent) switchDestination(d *destination, on bool) {
	if on && !d.on {
		d.switchOn(true, a.newGen())
		return
	}
	d.switchOn(on, 0)
}

// addDestination adds a configured or runtime destination. With cameras
// found as they are plugged in, a destination may name one that is not
// there yet ("" is the first one found); it waits for it.
func (a *Agent) addDestination(d Destination) error {
	if a.cams.get(d.Camera) == nil && a.s.AutoCameras == nil {
		return cmdErr(CodeUnknownCamera, "no camera named %s", quote(d.Camera))
	}
	if a.dests.get(d.Name) != nil {
		return cmdErr(CodeConflict, "destination %s exists already", d.Name)
	}
	if n := len(a.dests.of(d.Camera)); n >= a.s.MaxOutputs {
		return cmdErr(CodeConflict, "camera %s already has %d destinations (MAKERCAST_MAX_OUTPUTS)", d.Camera, n)
	}
	a.dests.add(d)
	return nil
}

func (a *Agent) addDestinationCommand(c Command) (any, error) {
	cam := ""
	if c.Camera != "" || len(a.cams.order) > 0 {
		cc, err := a.cams.resolve(c.Camera)
		if err != nil {
			return nil, err
		}
		cam = cc.cfg.Name
	} // no camera yet (found as plugged in): the first one found
	d, err := ParseDestination(c.Destination, cam, c.URL, c.Key)
	if err != nil {
		return nil, &CommandError{Code: CodeBadValue, Message: err.Error()}
	}
	d.Runtime = true
	if err := a.addDestination(d); err != nil {
		return nil, err
	}
	a.announce()
	return map[string]any{"destination": d.Name, "camera": cam, "url": d.Redacted()}, nil
}

func (a *Agent) removeDestinationCommand(c Command) (any, error) {
	d := a.dests.get(c.Destination)
	if d == nil {
		return nil, cmdErr(CodeUnknownDestination, "no destination named %s", quote(c.Destination))
	}
	if !d.cfg.Runtime {
		return nil, cmdErr(CodeConflict, "destination %s comes from the configuration; only destinations added over MQTT can be removed", d.cfg.Name)
	}
	a.dests.remove(d.cfg.Name) // its state topic is cleared after the step
	a.announce()
	return map[string]any{"destination": d.cfg.Name}, nil
}
