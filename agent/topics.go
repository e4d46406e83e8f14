package agent

import "strings"

// Topics names every MQTT topic the agent uses. All of them are under
// <prefix>/<device id>/; docs/mqtt-api.md documents them.
type Topics struct {
	Base string // <prefix>/<device id>
}

// NewTopics returns the topics for a device.
func NewTopics(prefix, deviceID string) Topics { return Topics{Base: prefix + "/" + deviceID} }

// Availability: retained online/offline, with offline as the last will.
func (t Topics) Availability() string { return t.Base + "/availability" }

// Health: retained JSON of the Pi's health (temperature, throttling, ...).
func (t Topics) Health() string { return t.Base + "/health" }

// CameraStats: retained JSON of a running camera's frame rates and drops.
func (t Topics) CameraStats(cam string) string { return t.Base + "/camera/" + cam + "/stats" }

// State: retained JSON of the whole device (cameras and destinations).
func (t Topics) State() string { return t.Base + "/state" }

// CameraStream: retained ON/OFF, whether the camera is streaming.
func (t Topics) CameraStream(cam string) string { return t.Base + "/camera/" + cam + "/stream" }

// CameraStreamSet: ON/OFF or JSON, goes live on every destination of the camera.
func (t Topics) CameraStreamSet(cam string) string { return t.CameraStream(cam) + "/set" }

// CameraState: retained JSON of the camera's capture.
func (t Topics) CameraState(cam string) string { return t.Base + "/camera/" + cam + "/state" }

// CameraSnapshotSet: any payload (HA's button sends PRESS) or JSON options
// takes a snapshot.
func (t Topics) CameraSnapshotSet(cam string) string {
	return t.Base + "/camera/" + cam + "/snapshot/set"
}

// CameraImage: retained JPEG bytes of the latest snapshot.
func (t Topics) CameraImage(cam string) string { return t.Base + "/camera/" + cam + "/image" }

// CameraTimelapse: retained JSON of the camera's timelapse.
func (t Topics) CameraTimelapse(cam string) string { return t.Base + "/camera/" + cam + "/timelapse" }

// CameraTimelapseSet: ON/OFF or JSON {"state":"ON","interval":10} or
// {"state":"ON","mode":"manual"}.
func (t Topics) CameraTimelapseSet(cam string) string { return t.CameraTimelapse(cam) + "/set" }

// CameraTimelapseFrame: any payload adds one frame (a 3D printer's layer
// change).
func (t Topics) CameraTimelapseFrame(cam string) string { return t.CameraTimelapse(cam) + "/frame" }

// CameraTimelapseEvent: not retained; done (path, frames, duration) or error.
func (t Topics) CameraTimelapseEvent(cam string) string { return t.CameraTimelapse(cam) + "/event" }

// CameraRecording: retained JSON of the camera's recording.
func (t Topics) CameraRecording(cam string) string { return t.Base + "/camera/" + cam + "/recording" }

// CameraRecordingSet: ON/OFF or JSON {"state":"ON"} starts and stops the
// camera's recording.
func (t Topics) CameraRecordingSet(cam string) string { return t.CameraRecording(cam) + "/set" }

// CameraRecordingEvent: not retained; a segment closed (path, start,
// duration, bytes) or the recording stopped by an error.
func (t Topics) CameraRecordingEvent(cam string) string { return t.CameraRecording(cam) + "/event" }

// DestinationState: retained JSON of one destination (switch, state, error).
func (t Topics) DestinationState(d string) string { return t.Base + "/destination/" + d + "/state" }

// DestinationSet: ON/OFF or JSON for one destination.
func (t Topics) DestinationSet(d string) string { return t.Base + "/destination/" + d + "/set" }

// FleetUpdate: retained JSON of the fleet manager's release state (Home
// Assistant's update entity).
func (t Topics) FleetUpdate() string { return t.Base + "/fleet/update" }

// FleetSet: <base>/fleet/<action>/set, action update, restart, reboot or
// identify; any payload presses it.
func (t Topics) FleetSet(action string) string { return t.Base + "/fleet/" + action + "/set" }

// Request: <base>/request/<command>, JSON with an optional transaction.
func (t Topics) Request(cmd string) string { return t.Base + "/request/" + cmd }

// Response: <base>/response/<command>, the answer to every command.
func (t Topics) Response(cmd string) string { return t.Base + "/response/" + cmd }

// Subscriptions are the filters the agent subscribes to.
func (t Topics) Subscriptions() []string {
	return []string{
		t.Base + "/camera/+/stream/set",
		t.Base + "/camera/+/snapshot/set",
		t.Base + "/camera/+/timelapse/set",
		t.Base + "/camera/+/timelapse/frame",
		t.Base + "/camera/+/recording/set",
		t.Base + "/destination/+/set",
		t.Base + "/fleet/+/set",
		t.Base + "/request/+",
	}
}

// route splits a command topic into its kind and subject. ok is false for
// topics that are not commands.
func (t Topics) route(topic string) (kind, subject string, ok bool) {
	rest, found := strings.CutPrefix(topic, t.Base+"/")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 4 && parts[0] == "camera" && parts[2] == "stream" && parts[3] == "set":
		return "stream", parts[1], true
	case len(parts) == 4 && parts[0] == "camera" && parts[2] == "snapshot" && parts[3] == "set":
		return "snapshot", parts[1], true
	case len(parts) == 4 && parts[0] == "camera" && parts[2] == "timelapse" && parts[3] == "set":
		return "timelapse", parts[1], true
	case len(parts) == 4 && parts[0] == "camera" && parts[2] == "timelapse" && parts[3] == "frame":
		return "timelapse_frame", parts[1], true
	case len(parts) == 4 && parts[0] == "camera" && parts[2] == "recording" && parts[3] == "set":
		return "recording", parts[1], true
	case len(parts) == 3 && parts[0] == "destination" && parts[2] == "set":
		return "destination", parts[1], true
	case len(parts) == 3 && parts[0] == "fleet" && parts[2] == "set" && fleetActions[parts[1]] != "":
		return fleetActions[parts[1]], "", true
	case len(parts) == 2 && parts[0] == "request":
		return "request", parts[1], true
	}
	return "", "", false
}
