package homeassistant

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"

	"github.com/makercast/makercast/agent"
)

// DefaultPrefix is Home Assistant's default discovery prefix.
const DefaultPrefix = "homeassistant"

// The agent's availability payloads (internal/mqtt: Online, Offline).
const (
	payloadOnline  = "online"
	payloadOffline = "offline"
)

// Origin facts published with every entity.
const (
	originName = "makercast"
	supportURL = "https://github.com/makercast/makercast"
)

// entity is one discovered entity before it is encoded.
type entity struct {
	component string         // Home Assistant platform: switch, sensor, ...
	objectID  string         // <object_id> of the config topic
	config    map[string]any // the discovery payload
}

// Discovery returns the retained discovery messages for m, one per entity,
// in a stable order (cameras, then destinations, each sorted by name). An
// empty prefix means DefaultPrefix. Names in m are expected to be valid
// makercast names (a-z, 0-9, _ and -), as the agent enforces.
func Discovery(prefix string, m Model) []Message {
	ents := entities(m)
	msgs := make([]Message, 0, len(ents))
	for _, e := range ents {
		msgs = append(msgs, Message{
			Topic:   configTopic(prefix, e.component, m.Device.ID, e.objectID),
			Payload: encode(e.config),
		})
	}
	return msgs
}

// Topics returns the config topics Discovery(prefix, m) publishes, in the
// same order.
func Topics(prefix string, m Model) []string {
	ents := entities(m)
	topics := make([]string, 0, len(ents))
	for _, e := range ents {
		topics = append(topics, configTopic(prefix, e.component, m.Device.ID, e.objectID))
	}
	return topics
}

// NodeFilter returns the MQTT subscription filter that matches every config
// topic of the device: <prefix>/+/makercast_<id>/+/config.
func NodeFilter(prefix, deviceID string) string {
	return orDefault(prefix) + "/+/" + nodeID(deviceID) + "/+/config"
}

// Stale returns, sorted and without duplicates, the topics of existing that
// are config topics of this device (they match NodeFilter) but are not
// published by current: entities that no longer exist, to be cleared with an
// empty retained payload. existing is what a subscription to NodeFilter saw
// retained on the broker; topics with an empty payload there are already
// cleared and should not be passed in.
func Stale(prefix string, deviceID string, existing []string, current []Message) []string {
	keep := make(map[string]bool, len(current))
	for _, m := range current {
		keep[m.Topic] = true
	}
	seen := map[string]bool{}
	var stale []string
	for _, t := range existing {
		if keep[t] || seen[t] || !matchesNode(prefix, deviceID, t) {
			continue
		}
		seen[t] = true
		stale = append(stale, t)
	}
	sort.Strings(stale)
	return stale
}

// matchesNode reports whether topic matches NodeFilter(prefix, deviceID).
func matchesNode(prefix, deviceID, topic string) bool {
	rest, ok := strings.CutPrefix(topic, orDefault(prefix)+"/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 4 && parts[0] != "" && parts[1] == nodeID(deviceID) &&
		parts[2] != "" && parts[3] == "config"
}

func orDefault(prefix string) string {
	if prefix == "" {
		return DefaultPrefix
	}
	return prefix
}

func nodeID(deviceID string) string { return "makercast_" + deviceID }

func configTopic(prefix, component, deviceID, objectID string) string {
	return orDefault(prefix) + "/" + component + "/" + nodeID(deviceID) + "/" + objectID + "/config"
}

// encode renders a payload as compact JSON with sorted keys (encoding/json
// sorts map keys), so the same model always gives the same bytes.
func encode(v map[string]any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only strings, bools, numbers, slices and maps are put in; this
		// cannot fail.
		panic("homeassistant: encode discovery payload: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Options of the enum sensors, in the agent's order.
var (
	captureOptions     = []string{agent.CaptureIdle, agent.CaptureStarting, agent.CaptureRunning, agent.CaptureError}
	destinationOptions = []string{agent.StateIdle, agent.StateConnecting, agent.StateLive, agent.StateRetrying, agent.StateError}
)

// jsonField renders a value_template that reads one field of a JSON state.
// A destination's state topic is cleared with an empty retained payload when
// the destination is removed: then value_json is undefined, and the template
// yields "None", which the MQTT switch and sensor platforms take as "state
// unknown" instead of logging a template error.
func jsonField(field string) string {
	return "{{ value_json." + field + " if value_json is defined and value_json." + field +
		" is defined else 'None' }}"
}

// builder holds what every entity of one model shares.
type builder struct {
	m      Model
	topics agent.Topics
	device map[string]any
	origin map[string]any
}

func newBuilder(m Model) builder {
	manufacturer := m.Device.Manufacturer
	if manufacturer == "" {
		manufacturer = "makercast"
	}
	device := map[string]any{
		"identifiers":  []string{nodeID(m.Device.ID)},
		"manufacturer": manufacturer,
	}
	if m.Device.Name != "" {
		device["name"] = m.Device.Name
	}
	if m.Device.Model != "" {
		device["model"] = m.Device.Model
	}
	if m.Device.SWVersion != "" {
		device["sw_version"] = m.Device.SWVersion
	}
	origin := map[string]any{"name": originName, "support_url": supportURL}
	if m.Device.SWVersion != "" {
		origin["sw_version"] = m.Device.SWVersion
	}
	return builder{m: m, topics: agent.Topics{Base: m.Base}, device: device, origin: origin}
}

// entity starts an entity of component about subject (a camera or
// destination name): what names the entity's role ("stream", "live", ...)
// and name is its has_entity_name name, without the device name.
func (b builder) entity(component, subject, what, name string) entity {
	uniqueID := nodeID(b.m.Device.ID) + "_" + subject + "_" + what
	return entity{
		component: component,
		objectID:  subject + "_" + what,
		config: map[string]any{
			"name":                  name,
			"unique_id":             uniqueID,
			"default_entity_id":     component + "." + slug(uniqueID),
			"availability_topic":    b.topics.Availability(),
			"payload_available":     payloadOnline,
			"payload_not_available": payloadOffline,
			"device":                b.device,
			"origin":                b.origin,
		},
	}
}

// entities lists every entity of the model.
func entities(m Model) []entity {
	b := newBuilder(m)
	cams := append([]Camera(nil), m.Cameras...)
	sort.Slice(cams, func(i, j int) bool { return cams[i].Name < cams[j].Name })
	dests := append([]Destination(nil), m.Destinations...)
	sort.Slice(dests, func(i, j int) bool { return dests[i].Name < dests[j].Name })

	var out []entity
	out = append(out, b.health()...)
	for _, c := range cams {
		out = append(out, b.cameraStream(c), b.cameraCapture(c), b.cameraImage(c), b.snapshotButton(c),
			b.timelapseSwitch(c), b.timelapseFrames(c), b.recordingSwitch(c))
		out = append(out, b.cameraStats(c)...)
	}
	for _, d := range dests {
		out = append(out, b.destinationLive(d), b.destinationState(d), b.destinationReconnects(d), b.destinationBitrate(d))
	}
	if m.Fleet {
		out = append(out, b.fleet()...)
	}
	return out
}

// fleet are the fleet manager's (balena's) entities: the release as an
// update entity (install = the supervisor's update, refused while a stream
// is on), and buttons to restart the agent, reboot the device and blink
// its LED.
func (b builder) fleet() []entity {
	u := b.entity("update", "fleet", "update", "release")
	u.config["state_topic"] = b.topics.FleetUpdate()
	u.config["command_topic"] = b.topics.FleetSet("update")
	u.config["payload_install"] = "install"
	u.config["device_class"] = "firmware"
	u.config["entity_category"] = "config"
	u.config["title"] = "makercast"
	button := func(action, name, class string) entity {
		e := b.entity("button", "fleet", action, name)
		e.config["command_topic"] = b.topics.FleetSet(action)
		e.config["payload_press"] = "PRESS"
		e.config["device_class"] = class
		e.config["entity_category"] = "config"
		return e
	}
	return []entity{u, button("restart", "restart agent", "restart"), button("reboot", "reboot device", "restart"),
		button("identify", "identify", "identify")}
}

// cameraStream is the device's main control: ON goes live on every
// destination of the camera. Its state topic is plain ON/OFF.
func (b builder) cameraStream(c Camera) entity {
	e := b.entity("switch", c.Name, "stream", c.Name+" stream")
	e.config["command_topic"] = b.topics.CameraStreamSet(c.Name)
	e.config["state_topic"] = b.topics.CameraStream(c.Name)
	e.config["payload_on"] = "ON"
	e.config["payload_off"] = "OFF"
	e.config["optimistic"] = false
	e.config["icon"] = "mdi:broadcast"
	// The camera's state JSON (capture, encoder, mode, device, mic,
	// last_error) as attributes.
	e.config["json_attributes_topic"] = b.topics.CameraState(c.Name)
	return e
}

// cameraCapture is the capture pipeline's state, a diagnostic.
func (b builder) cameraCapture(c Camera) entity {
	e := b.entity("sensor", c.Name, "capture", c.Name+" capture")
	e.config["state_topic"] = b.topics.CameraState(c.Name)
	e.config["value_template"] = jsonField("capture")
	e.config["device_class"] = "enum"
	e.config["options"] = captureOptions
	e.config["entity_category"] = "diagnostic"
	e.config["icon"] = "mdi:camera"
	// What the camera was opened as: device, mode ("mjpeg 640x480@15 →
	// 1280x720@30"), microphone, plugged in or not, the last error.
	e.config["json_attributes_topic"] = b.topics.CameraState(c.Name)
	return e
}

// cameraImage shows the latest snapshot: the JPEG bytes retained on the
// camera's image topic.
func (b builder) cameraImage(c Camera) entity {
	e := b.entity("camera", c.Name, "image", c.Name+" picture")
	e.config["topic"] = b.topics.CameraImage(c.Name)
	e.config["icon"] = "mdi:camera-image"
	return e
}

// snapshotButton takes a snapshot from the running stream (or opens the
// camera for one).
func (b builder) snapshotButton(c Camera) entity {
	e := b.entity("button", c.Name, "snapshot", c.Name+" snapshot")
	e.config["command_topic"] = b.topics.CameraSnapshotSet(c.Name)
	e.config["payload_press"] = "PRESS"
	e.config["icon"] = "mdi:camera-iris"
	return e
}

// timelapseSwitch starts (interval mode, default interval) and stops a
// timelapse; its JSON state (mode, started, last_error) is the attributes.
func (b builder) timelapseSwitch(c Camera) entity {
	e := b.entity("switch", c.Name, "timelapse", c.Name+" timelapse")
	e.config["command_topic"] = b.topics.CameraTimelapseSet(c.Name)
	e.config["state_topic"] = b.topics.CameraTimelapse(c.Name)
	e.config["value_template"] = jsonField("state")
	e.config["payload_on"] = "ON"
	e.config["payload_off"] = "OFF"
	e.config["optimistic"] = false
	e.config["icon"] = "mdi:timelapse"
	e.config["json_attributes_topic"] = b.topics.CameraTimelapse(c.Name)
	return e
}

// timelapseFrames counts the frames of the running (or last) timelapse.
func (b builder) timelapseFrames(c Camera) entity {
	e := b.entity("sensor", c.Name, "timelapse_frames", c.Name+" timelapse frames")
	e.config["state_topic"] = b.topics.CameraTimelapse(c.Name)
	e.config["value_template"] = jsonField("frames")
	e.config["state_class"] = "measurement"
	e.config["icon"] = "mdi:filmstrip"
	return e
}

// recordingSwitch starts and stops the camera's local recording; its JSON
// state (status, file, duration, bytes, segments, last_error) is the
// attributes.
func (b builder) recordingSwitch(c Camera) entity {
	e := b.entity("switch", c.Name, "recording", c.Name+" recording")
	e.config["command_topic"] = b.topics.CameraRecordingSet(c.Name)
	e.config["state_topic"] = b.topics.CameraRecording(c.Name)
	e.config["value_template"] = jsonField("state")
	e.config["payload_on"] = "ON"
	e.config["payload_off"] = "OFF"
	e.config["optimistic"] = false
	e.config["icon"] = "mdi:record-rec"
	e.config["json_attributes_topic"] = b.topics.CameraRecording(c.Name)
	return e
}

// destinationLive switches one destination on and off; its state is the
// "switch" field of the destination's state JSON, whose other fields (url,
// last_error, reconnects, ...) become the entity's attributes.
func (b builder) destinationLive(d Destination) entity {
	e := b.entity("switch", d.Name, "live", d.Name+" live")
	e.config["command_topic"] = b.topics.DestinationSet(d.Name)
	e.config["state_topic"] = b.topics.DestinationState(d.Name)
	e.config["value_template"] = jsonField("switch")
	e.config["payload_on"] = "ON"
	e.config["payload_off"] = "OFF"
	e.config["optimistic"] = false
	e.config["icon"] = "mdi:access-point"
	e.config["json_attributes_topic"] = b.topics.DestinationState(d.Name)
	return e
}

// destinationState is where the destination's stream is: idle, connecting,
// live, retrying or error.
func (b builder) destinationState(d Destination) entity {
	e := b.entity("sensor", d.Name, "state", d.Name+" state")
	e.config["state_topic"] = b.topics.DestinationState(d.Name)
	e.config["value_template"] = jsonField("state")
	e.config["device_class"] = "enum"
	e.config["options"] = destinationOptions
	e.config["icon"] = "mdi:list-status"
	return e
}

// destinationReconnects counts how often a live or connecting stream fell to
// retrying or error since the agent started.
//
// It is disabled by default: the same number is already an attribute of the
// destination's live switch, and an enabled total_increasing sensor makes
// Home Assistant keep long-term statistics for every destination. Whoever
// wants a graph of a flaky uplink enables it in the entity settings.
func (b builder) destinationReconnects(d Destination) entity {
	e := b.entity("sensor", d.Name, "reconnects", d.Name+" reconnects")
	e.config["state_topic"] = b.topics.DestinationState(d.Name)
	e.config["value_template"] = jsonField("reconnects")
	e.config["state_class"] = "total_increasing"
	e.config["entity_category"] = "diagnostic"
	e.config["enabled_by_default"] = false
	e.config["icon"] = "mdi:restart"
	return e
}

// guarded renders a health field, or None (unknown in Home Assistant) when
// the report lacks it: a source this machine does not have.
func guarded(path, expr string) string {
	cond := "value_json is defined"
	parts := strings.Split(path, ".")
	for i := range parts {
		cond += " and value_json." + strings.Join(parts[:i+1], ".") + " is defined"
	}
	return "{% if " + cond + " and value_json." + path + " is not none %}{{ " + expr + " }}{% else %}None{% endif %}"
}

// problem renders a throttling flag as ON/OFF, None when unknown (a Pi
// Zero cannot tell under-voltage).
func problem(path string) string {
	return guarded(path, "'ON' if value_json."+path+" else 'OFF'")
}

// health lists the device's health entities; they read the health JSON.
func (b builder) health() []entity {
	topic := b.topics.Health()
	sensor := func(what, name, path, expr string, extra map[string]any) entity {
		e := b.entity("sensor", "health", what, name)
		e.config["state_topic"] = topic
		e.config["value_template"] = guarded(path, expr)
		for k, v := range extra {
			e.config[k] = v
		}
		return e
	}
	flag := func(what, name, path string, extra map[string]any) entity {
		e := b.entity("binary_sensor", "health", what, name)
		e.config["state_topic"] = topic
		e.config["value_template"] = problem(path)
		e.config["payload_on"] = "ON"
		e.config["payload_off"] = "OFF"
		e.config["device_class"] = "problem"
		for k, v := range extra {
			e.config[k] = v
		}
		return e
	}
	diag := "diagnostic"
	return []entity{
		// The whole health report (every thermal zone, board, serial, ...)
		// as the temperature's attributes.
		sensor("cpu_temp", "CPU temperature", "cpu_temp_c", "value_json.cpu_temp_c | round(1)", map[string]any{
			"device_class": "temperature", "unit_of_measurement": "°C", "state_class": "measurement",
			"json_attributes_topic": topic}),
		flag("under_voltage", "Under-voltage", "throttling.now.under_voltage", nil),
		flag("throttled", "CPU throttled", "throttling.now.throttled", nil),
		flag("freq_capped", "CPU frequency capped", "throttling.now.freq_capped", map[string]any{"entity_category": diag}),
		flag("under_voltage_since_boot", "Under-voltage since boot", "throttling.since_boot.under_voltage", map[string]any{"entity_category": diag}),
		sensor("cpu_usage", "CPU usage", "cpu_percent", "value_json.cpu_percent", map[string]any{
			"unit_of_measurement": "%", "state_class": "measurement", "entity_category": diag, "icon": "mdi:cpu-64-bit"}),
		sensor("load", "Load (1 min)", "load", "value_json.load.load1", map[string]any{
			"state_class": "measurement", "entity_category": diag, "enabled_by_default": false, "icon": "mdi:gauge"}),
		sensor("memory", "Memory used", "memory", "value_json.memory.used_percent", map[string]any{
			"unit_of_measurement": "%", "state_class": "measurement", "entity_category": diag, "icon": "mdi:memory"}),
		sensor("disk_free", "Media disk free", "disk", "(value_json.disk.free_bytes / 1000000000) | round(2)", map[string]any{
			"device_class": "data_size", "unit_of_measurement": "GB", "state_class": "measurement", "entity_category": diag}),
		sensor("wifi_signal", "Wi-Fi signal", "wifi.signal_dbm", "value_json.wifi.signal_dbm", map[string]any{
			"device_class": "signal_strength", "unit_of_measurement": "dBm", "state_class": "measurement", "entity_category": diag}),
		sensor("wifi_quality", "Wi-Fi link quality", "wifi.link_quality", "value_json.wifi.link_quality", map[string]any{
			"unit_of_measurement": "%", "state_class": "measurement", "entity_category": diag, "enabled_by_default": false, "icon": "mdi:wifi"}),
		sensor("uptime", "Uptime", "uptime_s", "value_json.uptime_s | int", map[string]any{
			"device_class": "duration", "unit_of_measurement": "s", "entity_category": diag, "enabled_by_default": false}),
	}
}

// cameraStats are a running camera's frame rates and drops (noisy: the
// rates are disabled by default).
func (b builder) cameraStats(c Camera) []entity {
	topic := b.topics.CameraStats(c.Name)
	mk := func(what, name, field string, extra map[string]any) entity {
		e := b.entity("sensor", c.Name, what, name)
		e.config["state_topic"] = topic
		e.config["value_template"] = jsonField(field)
		e.config["entity_category"] = "diagnostic"
		for k, v := range extra {
			e.config[k] = v
		}
		return e
	}
	return []entity{
		mk("capture_fps", c.Name+" capture fps", "capture_fps", map[string]any{"unit_of_measurement": "fps", "state_class": "measurement", "enabled_by_default": false, "icon": "mdi:camera-timer"}),
		mk("encoder_fps", c.Name+" encoder fps", "encoder_fps", map[string]any{"unit_of_measurement": "fps", "state_class": "measurement", "enabled_by_default": false, "icon": "mdi:speedometer"}),
		mk("dropped_frames", c.Name+" dropped frames", "dropped_frames", map[string]any{"state_class": "total_increasing", "icon": "mdi:filmstrip-off"}),
	}
}

// destinationBitrate is the bitrate actually sent to the destination.
func (b builder) destinationBitrate(d Destination) entity {
	e := b.entity("sensor", d.Name, "bitrate", d.Name+" bitrate")
	e.config["state_topic"] = b.topics.DestinationState(d.Name)
	e.config["value_template"] = jsonField("bitrate_kbps")
	e.config["device_class"] = "data_rate"
	e.config["unit_of_measurement"] = "kbit/s"
	e.config["state_class"] = "measurement"
	return e
}

// slug turns s into an entity id's object part: lower case, runs of
// anything but a-z and 0-9 become one "_", none at either end (Home
// Assistant's entity ids allow neither "__" nor a leading or trailing "_").
func slug(s string) string {
	var b strings.Builder
	pending := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if pending && b.Len() > 0 {
				b.WriteByte('_')
			}
			pending = false
			b.WriteRune(r)
			continue
		}
		pending = true
	}
	return b.String()
}
