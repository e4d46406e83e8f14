package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
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
	CmdRecording         = "recording"
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

// Command is one parsed command: its name and what it said.
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

// The JSON a command takes: one request type per command and topic kind,
// built from the fields below. Decoding rejects any other field, so that a
// typo ("sate") or a field of another command ({"state":"ON","quality":5}
// on stream/set) is an error, not a silent no-op.
type (
	txField struct {
		Transaction *string `json:"transaction"`
	}
	stateField struct {
		State *string `json:"state"`
	}
	cameraField struct {
		Camera *string `json:"camera"`
	}
	snapshotFields struct {
		Width   *int `json:"width"`
		Height  *int `json:"height"`
		Quality *int `json:"quality"`
	}
	timelapseFields struct {
		stateField
		Interval *int    `json:"interval"`
		Mode     *string `json:"mode"`
	}

	// Set topics: the topic names the camera or destination.
	switchSet struct {
		stateField
		txField
	} // stream/set, destination/set, recording/set
	snapshotSet struct {
		snapshotFields
		txField
	}
	timelapseSet struct {
		timelapseFields
		txField
	}
	pressSet struct{ txField } // fleet/<action>/set

	// request/<command>: the payload names what it is about.
	streamRequest struct {
		cameraField
		stateField
		txField
	}
	destinationRequest struct {
		Destination *string `json:"destination"`
		stateField
		txField
	}
	recordingRequest struct {
		cameraField
		stateField
		txField
	}
	snapshotRequest struct {
		cameraField
		snapshotFields
		txField
	}
	timelapseRequest struct {
		cameraField
		timelapseFields
		txField
	}
	addDestinationRequest struct {
		Name   *string `json:"name"`
		Camera *string `json:"camera"`
		URL    *string `json:"url"`
		Key    *string `json:"key"`
		txField
	}
	removeDestinationRequest struct {
		Name *string `json:"name"`
		txField
	}
	emptyRequest struct{ txField } // status, fleet_*
)

// A parser reads one kind of command from its topic's subject (a camera or
// destination name, "" for requests) and payload.
type parser func(name, subject string, payload []byte) (Command, error)

// setParsers read set topics, by the kind the topic routes to.
var setParsers = map[string]parser{
	CmdStream:      parseSwitch,
	CmdDestination: parseSwitch,
	CmdRecording:   parseSwitch,
	CmdSnapshot:    parseSnapshotSet,
	CmdTimelapse:   parseTimelapseSet,
	CmdTimelapseFrame: func(name, subject string, _ []byte) (Command, error) {
		return Command{Name: name, Camera: subject}, nil
	},
	CmdFleetUpdate:   parsePress,
	CmdFleetRestart:  parsePress,
	CmdFleetReboot:   parsePress,
	CmdFleetIdentify: parsePress,
}

// requestParsers read request/<command>.
var requestParsers = map[string]parser{
	CmdStream:            parseStreamRequest,
	CmdDestination:       parseDestinationRequest,
	CmdRecording:         parseRecordingRequest,
	CmdStatus:            parseEmptyRequest,
	CmdSnapshot:          parseSnapshotRequest,
	CmdTimelapse:         parseTimelapseRequest,
	CmdAddDestination:    parseAddDestination,
	CmdRemoveDestination: parseRemoveDestination,
	CmdFleetUpdate:       parseEmptyRequest,
	CmdFleetRestart:      parseEmptyRequest,
	CmdFleetReboot:       parseEmptyRequest,
	CmdFleetIdentify:     parseEmptyRequest,
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
	if kind != "request" {
		return setParsers[kind](kind, subject, payload)
	}
	p, ok := requestParsers[subject]
	if !ok {
		return Command{}, cmdErr(CodeUnknownCommand, "unknown command %s (%s)", quote(subject), strings.Join(requestNames(), ", "))
	}
	return p(subject, "", payload)
}

func requestNames() []string {
	var n []string
	for k := range requestParsers {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// isJSON: the payload is meant as a JSON object.
func isJSON(payload []byte) bool {
	t := bytes.TrimSpace(payload)
	return len(t) > 0 && t[0] == '{'
}

// decode reads a JSON object into req, rejecting fields req does not have
// (naming the fields it takes), trailing data and long transactions.
func decode[T any](name string, payload []byte, req *T) error {
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil // an empty request: every field left out
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
			return cmdErr(CodeBadPayload, "%s takes no field %s (it takes %s)", name, f, strings.Join(jsonFields(req), ", "))
		}
		return cmdErr(CodeBadPayload, "payload is not a valid JSON command: %s", quote(msg))
	}
	if dec.More() {
		return cmdErr(CodeBadPayload, "payload has data after the JSON object")
	}
	return nil
}

// jsonFields lists the JSON fields a request type takes.
func jsonFields(v any) []string {
	b, _ := json.Marshal(v) // every field is a pointer: all are present, as null
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f txField) get() (string, error) {
	if f.Transaction == nil {
		return "", nil
	}
	if len(*f.Transaction) > 64 {
		return "", cmdErr(CodeBadValue, "transaction is longer than 64 characters")
	}
	return *f.Transaction, nil
}

func (f stateField) on() (bool, error) {
	if f.State == nil {
		return false, cmdErr(CodeBadPayload, "missing state (ON or OFF)")
	}
	return parseOnOff(*f.State)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// parseSwitch reads stream/set, destination/set and recording/set: ON or
// OFF, or JSON with state and transaction.
func parseSwitch(name, subject string, payload []byte) (Command, error) {
	cmd := Command{Name: name}
	if name == CmdDestination {
		cmd.Destination = subject
	} else {
		cmd.Camera = subject
	}
	if !isJSON(payload) {
		on, err := parseOnOff(string(payload))
		cmd.On = on
		return cmd, err
	}
	var r switchSet
	if err := decode(name+"/set", payload, &r); err != nil {
		return Command{}, err
	}
	var err error
	if cmd.Transaction, err = r.get(); err != nil {
		return Command{}, err
	}
	cmd.On, err = r.on()
	return cmd, err
}

func parseSnapshotSet(name, subject string, payload []byte) (Command, error) {
	cmd := Command{Name: name, Camera: subject}
	if !isJSON(payload) {
		return cmd, nil // any plain payload is a press: PRESS from HA, ON, 1, ...
	}
	var r snapshotSet
	if err := decode("snapshot/set", payload, &r); err != nil {
		return Command{}, err
	}
	return snapshotOptions(cmd, r.txField, r.snapshotFields)
}

func parseTimelapseSet(name, subject string, payload []byte) (Command, error) {
	cmd := Command{Name: name, Camera: subject}
	if !isJSON(payload) {
		on, err := parseOnOff(string(payload))
		cmd.On = on
		return cmd, err
	}
	var r timelapseSet
	if err := decode("timelapse/set", payload, &r); err != nil {
		return Command{}, err
	}
	return timelapseOptions(cmd, r.txField, r.timelapseFields)
}

// parsePress reads a fleet/<action>/set message: any plain payload but an
// empty one presses it (HA's button sends PRESS, its update entity
// "install"); JSON may carry only a transaction.
func parsePress(name, _ string, payload []byte) (Command, error) {
	cmd := Command{Name: name}
	if len(bytes.TrimSpace(payload)) == 0 {
		// What a subscriber gets when a retained message is cleared.
		return cmd, cmdErr(CodeBadPayload, "an empty payload presses nothing (send PRESS)")
	}
	if !isJSON(payload) {
		return cmd, nil
	}
	var r pressSet
	if err := decode("a fleet topic", payload, &r); err != nil {
		return Command{}, err
	}
	var err error
	cmd.Transaction, err = r.get()
	return cmd, err
}

func parseStreamRequest(name, _ string, payload []byte) (Command, error) {
	var r streamRequest
	if err := decode(name, payload, &r); err != nil {
		return Command{}, err
	}
	return onOffRequest(Command{Name: name, Camera: str(r.Camera)}, r.txField, r.stateField)
}

func parseRecordingRequest(name, _ string, payload []byte) (Command, error) {
	var r recordingRequest
	if err := decode(name, payload, &r); err != nil {
		return Command{}, err
	}
	return onOffRequest(Command{Name: name, Camera: str(r.Camera)}, r.txField, r.stateField)
}

func parseDestinationRequest(name, _ string, payload []byte) (Command, error) {
	var r destinationRequest
	if err := decode(name, payload, &r); err != nil {
		return Command{}, err
	}
	cmd := Command{Name: name, Destination: str(r.Destination)}
	if cmd.Destination == "" {
		return cmd, cmdErr(CodeBadPayload, "missing destination")
	}
	return onOffRequest(cmd, r.txField, r.stateField)
}

func onOffRequest(cmd Command, tx txField, st stateField) (Command, error) {
	var err error
	if cmd.Transaction, err = tx.get(); err != nil {
		return Command{}, err
	}
	cmd.On, err = st.on()
	return cmd, err
}

func parseSnapshotRequest(name, _ string, payload []byte) (Command, error) {
	var r snapshotRequest
	if err := decode(name, payload, &r); err != nil {
		return Command{}, err
	}
	return snapshotOptions(Command{Name: name, Camera: str(r.Camera)}, r.txField, r.snapshotFields)
}

func parseTimelapseRequest(name, _ string, payload []byte) (Command, error) {
	var r timelapseRequest
	if err := decode(name, payload, &r); err != nil {
		return Command{}, err
	}
	return timelapseOptions(Command{Name: name, Camera: str(r.Camera)}, r.txField, r.timelapseFields)
}

func parseAddDestination(name, _ string, payload []byte) (Command, error) {
	var r addDestinationRequest
	if err := decode(name, payload, &r); err != nil {
		return Command{}, err
	}
	cmd := Command{Name: name, Destination: str(r.Name), Camera: str(r.Camera), URL: str(r.URL), Key: secret.Secret(str(r.Key))}
	var err error
	if cmd.Transaction, err = r.get(); err != nil {
		return Command{}, err
	}
	if cmd.Destination == "" || cmd.URL == "" {
		return cmd, cmdErr(CodeBadPayload, "add_destination needs name and url (and key, unless the URL ends with it)")
	}
	return cmd, nil
}

func parseRemoveDestination(name, _ string, payload []byte) (Command, error) {
	var r removeDestinationRequest
	if err := decode(name, payload, &r); err != nil {
		return Command{}, err
	}
	cmd := Command{Name: name, Destination: str(r.Name)}
	var err error
	if cmd.Transaction, err = r.get(); err != nil {
		return Command{}, err
	}
	if cmd.Destination == "" {
		return cmd, cmdErr(CodeBadPayload, "remove_destination needs name")
	}
	return cmd, nil
}

func parseEmptyRequest(name, _ string, payload []byte) (Command, error) {
	var r emptyRequest
	if err := decode(name, payload, &r); err != nil {
		return Command{}, err
	}
	tx, err := r.get()
	return Command{Name: name, Transaction: tx}, err
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
func snapshotOptions(cmd Command, tx txField, f snapshotFields) (Command, error) {
	var err error
	if cmd.Transaction, err = tx.get(); err != nil {
		return Command{}, err
	}
	if f.Quality != nil && (*f.Quality < 1 || *f.Quality > 100) {
		return cmd, cmdErr(CodeBadValue, "quality %d must be within 1..100", *f.Quality)
	}
	if f.Width != nil {
		cmd.Width = *f.Width
	}
	if f.Height != nil {
		cmd.Height = *f.Height
	}
	if f.Quality != nil {
		cmd.Quality = *f.Quality
	}
	return cmd, nil
}

// timelapseOptions reads state, interval (seconds, 1..86400) and mode
// (interval or manual).
func timelapseOptions(cmd Command, tx txField, f timelapseFields) (Command, error) {
	var err error
	if cmd.Transaction, err = tx.get(); err != nil {
		return Command{}, err
	}
	if cmd.On, err = f.on(); err != nil {
		return cmd, err
	}
	if f.Interval != nil {
		if *f.Interval < 1 || *f.Interval > 86400 {
			return cmd, cmdErr(CodeBadValue, "interval %d s must be within 1..86400", *f.Interval)
		}
		cmd.Interval = *f.Interval
	}
	if f.Mode != nil {
		switch *f.Mode {
		case "interval":
		case "manual":
			if f.Interval != nil {
				return cmd, cmdErr(CodeBadValue, "manual mode takes no interval")
			}
			cmd.Manual = true
		default:
			return cmd, cmdErr(CodeBadValue, "mode must be interval or manual, got %s", quote(*f.Mode))
		}
	}
	return cmd, nil
}
