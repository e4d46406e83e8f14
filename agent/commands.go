package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/makercast/makercast/internal/secret"
)

// MaxPayload is the largest command payload accepted.
const MaxPayload = 4096

// Command names, also the last level of their request and response topics.
const (
	CmdStream            = "stream"
	CmdDestination       = "destination"
	CmdStatus            = "status"
	CmdSnapshot          = "snapshot"
	CmdTimelapse         = "timelapse"
	CmdTimelapseFrame    = "timelapse_frame"
	CmdAddDestination    = "add_destination"
	CmdRemoveDestination = "remove_destination"
)

// Error codes in responses: stable strings for automations to test.
const (
	CodeBadPayload         = "bad_payload"
	CodePayloadTooLarge    = "payload_too_large"
	CodeUnknownCommand     = "unknown_command"
	CodeUnknownCamera      = "unknown_camera"
	CodeUnknownDestination = "unknown_destination"
	CodeBadValue           = "bad_value"
	CodeConflict           = "conflict"
	CodeBusy               = "busy"
	CodeUnavailable        = "unavailable"
)

// Command is one parsed command.
type Command struct {
	Name        string
	Camera      string
	Destination string
	On          bool
	Transaction string
	// add_destination only.
	URL string
	Key secret.Secret
	// snapshot only: 0 = default.
	Width, Height, Quality int
	// timelapse only: seconds between frames (0 = default), or manual.
	Interval int
	Manual   bool
}

// CommandError is a rejected command: a stable code and a human message.
type CommandError struct {
	Code    string
	Message string
}

func (e *CommandError) Error() string { return "agent: " + e.Code + ": " + e.Message }

func cmdErr(code, format string, args ...any) *CommandError {
	return &CommandError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// request is the JSON form of every command. Unknown fields are rejected so
// that a typo ("sate") is an error, not a silent no-op.
type request struct {
	State       *string `json:"state"`
	Camera      *string `json:"camera"`
	Destination *string `json:"destination"`
	Name        *string `json:"name"`
	URL         *string `json:"url"`
	Key         *string `json:"key"`
	Width       *int    `json:"width"`
	Height      *int    `json:"height"`
	Quality     *int    `json:"quality"`
	Interval    *int    `json:"interval"`
	Mode        *string `json:"mode"`
	Transaction *string `json:"transaction"`
}

var cmdNamePattern = regexp.MustCompile(`^[a-z_]{1,32}$`)

// ResponseName is the command name to answer on for a topic, even when the
// command itself is rejected: known names answer on their own response
// topic, anything else on response/error.
func (t Topics) ResponseName(topic string) string {
	kind, subject, ok := t.route(topic)
	switch {
	case !ok:
		return "error"
	case kind == "request":
		if cmdNamePattern.MatchString(subject) {
			return subject
		}
		return "error"
	default:
		return kind
	}
}

// ParseCommand turns an MQTT message into a Command. Set topics take ON/OFF
// (any case) or JSON {"state":"ON"}; request topics take JSON.
func (t Topics) ParseCommand(topic string, payload []byte) (Command, error) {
	kind, subject, ok := t.route(topic)
	if !ok {
		return Command{}, cmdErr(CodeUnknownCommand, "topic is not a command topic")
	}
	if len(payload) > MaxPayload {
		return Command{}, cmdErr(CodePayloadTooLarge, "payload is %d bytes, the limit is %d", len(payload), MaxPayload)
	}
	var cmd Command
	switch kind {
	case "snapshot":
		cmd.Name, cmd.Camera = CmdSnapshot, subject
		trimmed := bytes.TrimSpace(payload)
		if len(trimmed) == 0 || trimmed[0] != '{' {
			// Any plain payload is a press: PRESS from HA, ON, 1, ...
			return cmd, nil
		}
		r, err := decode(trimmed)
		if err != nil {
			return Command{}, err
		}
		if r.Camera != nil || r.Destination != nil || r.Name != nil || r.URL != nil || r.Key != nil || r.State != nil {
			return Command{}, cmdErr(CodeBadPayload, "a snapshot topic takes only width, height, quality and transaction")
		}
		return snapshotOptions(cmd, r)
	case "timelapse_frame":
		// Any payload: a layer change, a button.
		return Command{Name: CmdTimelapseFrame, Camera: subject}, nil
	case CmdFleetUpdate, CmdFleetRestart, CmdFleetReboot, CmdFleetIdentify:
		return fleetPress(kind, payload)
	case "timelapse":
		cmd.Name, cmd.Camera = CmdTimelapse, subject
		trimmed := bytes.TrimSpace(payload)
		if len(trimmed) > 0 && trimmed[0] == '{' {
			r, err := decode(trimmed)
			if err != nil {
				return Command{}, err
			}
			if r.Camera != nil || r.Destination != nil || r.Name != nil || r.URL != nil || r.Key != nil || r.Width != nil || r.Height != nil || r.Quality != nil {
				return Command{}, cmdErr(CodeBadPayload, "a timelapse topic takes only state, interval, mode and transaction")
			}
			return timelapseOptions(cmd, r)
		}
		on, err := parseOnOff(string(trimmed))
		if err != nil {
			return cmd, err
		}
		cmd.On = on
		return cmd, nil
	case "stream", "destination":
		cmd.Name = kind
		if kind == "stream" {
			cmd.Camera = subject
		} else {
			cmd.Destination = subject
		}
		trimmed := bytes.TrimSpace(payload)
		if len(trimmed) > 0 && trimmed[0] == '{' {
			r, err := decode(trimmed)
			if err != nil {
				return Command{}, err
			}
			if r.Camera != nil || r.Destination != nil || r.Name != nil || r.URL != nil || r.Key != nil {
				return Command{}, cmdErr(CodeBadPayload, "a set topic takes only state and transaction")
			}
			if r.Transaction != nil {
				cmd.Transaction = *r.Transaction
			}
			if r.State == nil {
				return cmd, cmdErr(CodeBadPayload, "missing state (ON or OFF)")
			}
			trimmed = []byte(*r.State)
		}
		on, err := parseOnOff(string(trimmed))
		if err != nil {
			return cmd, err
		}
		cmd.On = on
		return cmd, nil
	}
	// request/<name>
	cmd.Name = subject
	var r request
	if len(bytes.TrimSpace(payload)) > 0 {
		var err error
		if r, err = decode(payload); err != nil {
			return Command{}, err
		}
	}
	if r.Transaction != nil {
		cmd.Transaction = *r.Transaction
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch subject {
	case CmdStream, CmdDestination:
		cmd.Camera, cmd.Destination = str(r.Camera), str(r.Destination)
		if subject == CmdDestination && cmd.Destination == "" {
			return cmd, cmdErr(CodeBadPayload, "missing destination")
		}
		if r.State == nil {
			return cmd, cmdErr(CodeBadPayload, "missing state (ON or OFF)")
		}
		on, err := parseOnOff(*r.State)
		if err != nil {
			return cmd, err
		}
		cmd.On = on
	case CmdStatus:
	case CmdFleetUpdate, CmdFleetRestart, CmdFleetReboot, CmdFleetIdentify:
		if r.State != nil || r.Camera != nil || r.Destination != nil || r.Name != nil || r.URL != nil || r.Key != nil ||
			r.Width != nil || r.Height != nil || r.Quality != nil || r.Interval != nil || r.Mode != nil {
			return cmd, cmdErr(CodeBadPayload, "%s takes only transaction", subject)
		}
	case CmdSnapshot:
		cmd.Camera = str(r.Camera)
		return snapshotOptions(cmd, r)
	case CmdTimelapse:
		cmd.Camera = str(r.Camera)
		return timelapseOptions(cmd, r)
	case CmdAddDestination:
		cmd.Destination, cmd.Camera, cmd.URL, cmd.Key = str(r.Name), str(r.Camera), str(r.URL), secret.Secret(str(r.Key))
		if cmd.Destination == "" || cmd.URL == "" {
			return cmd, cmdErr(CodeBadPayload, "add_destination needs name and url (and key, unless the URL ends with it)")
		}
	case CmdRemoveDestination:
		cmd.Destination = str(r.Name)
		if cmd.Destination == "" {
			return cmd, cmdErr(CodeBadPayload, "remove_destination needs name")
		}
	default:
		return cmd, cmdErr(CodeUnknownCommand, "unknown command %s (stream, destination, snapshot, timelapse, status, add_destination, remove_destination, fleet_update, fleet_restart, fleet_reboot, fleet_identify)", quote(subject))
	}
	return cmd, nil
}

func decode(b []byte) (request, error) {
	var r request
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, cmdErr(CodeBadPayload, "payload is not a valid JSON command: %s", quote(strings.TrimPrefix(err.Error(), "json: ")))
	}
	if dec.More() {
		return r, cmdErr(CodeBadPayload, "payload has data after the JSON object")
	}
	if r.Transaction != nil && len(*r.Transaction) > 64 {
		return r, cmdErr(CodeBadValue, "transaction is longer than 64 characters")
	}
	return r, nil
}

func parseOnOff(s string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "ON":
		return true, nil
	case "OFF":
		return false, nil
	}
	return false, cmdErr(CodeBadValue, "state must be ON or OFF, got %s", quote(s))
}

// quote shows user text in an error safely: quoted, escaped, cut short.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// snapshotOptions copies width, height and quality; width and height 0
// keep the camera's, quality must be given as 1..100 or left out.
func snapshotOptions(cmd Command, r request) (Command, error) {
	if r.Transaction != nil {
		cmd.Transaction = *r.Transaction
	}
	if r.Quality != nil && (*r.Quality < 1 || *r.Quality > 100) {
		return cmd, cmdErr(CodeBadValue, "quality %d must be within 1..100", *r.Quality)
	}
	if r.Width != nil {
		cmd.Width = *r.Width
	}
	if r.Height != nil {
		cmd.Height = *r.Height
	}
	if r.Quality != nil {
		cmd.Quality = *r.Quality
	}
	return cmd, nil
}

// timelapseOptions reads state, interval (seconds, 1..86400) and mode
// (interval or manual).
func timelapseOptions(cmd Command, r request) (Command, error) {
	if r.Transaction != nil {
		cmd.Transaction = *r.Transaction
	}
	if r.State == nil {
		return cmd, cmdErr(CodeBadPayload, "missing state (ON or OFF)")
	}
	on, err := parseOnOff(*r.State)
	if err != nil {
		return cmd, err
	}
	cmd.On = on
	if r.Interval != nil {
		if *r.Interval < 1 || *r.Interval > 86400 {
			return cmd, cmdErr(CodeBadValue, "interval %d s must be within 1..86400", *r.Interval)
		}
		cmd.Interval = *r.Interval
	}
	if r.Mode != nil {
		switch *r.Mode {
		case "interval":
		case "manual":
			if r.Interval != nil {
				return cmd, cmdErr(CodeBadValue, "manual mode takes no interval")
			}
			cmd.Manual = true
		default:
			return cmd, cmdErr(CodeBadValue, "mode must be interval or manual, got %s", quote(*r.Mode))
		}
	}
	return cmd, nil
}

// fleetPress reads a fleet/<action>/set message: any plain payload but an
// empty one presses it (HA's button sends PRESS, its update entity
// "install"); JSON may carry only a transaction.
func fleetPress(name string, payload []byte) (Command, error) {
	cmd := Command{Name: name}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		// What a subscriber gets when a retained message is cleared.
		return cmd, cmdErr(CodeBadPayload, "an empty payload presses nothing (send PRESS)")
	}
	if trimmed[0] != '{' {
		return cmd, nil
	}
	r, err := decode(trimmed)
	if err != nil {
		return Command{}, err
	}
	if r.State != nil || r.Camera != nil || r.Destination != nil || r.Name != nil || r.URL != nil || r.Key != nil ||
		r.Width != nil || r.Height != nil || r.Quality != nil || r.Interval != nil || r.Mode != nil {
		return Command{}, cmdErr(CodeBadPayload, "a fleet topic takes only transaction")
	}
	if r.Transaction != nil {
		cmd.Transaction = *r.Transaction
	}
	return cmd, nil
}
