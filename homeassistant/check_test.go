package homeassistant

import (
	"encoding/json"
	"strings"
	"testing"
)

// del, as a value given to with, removes the key.
type deleteKey struct{}

var del = deleteKey{}

// with returns a copy of cfg with the key/value pairs of kv set.
func with(cfg map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(cfg))
	for k, v := range cfg {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == del {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

// entityOf is a valid skeleton of a device-linked entity of component.
func entityOf(component, what string) map[string]any {
	return map[string]any{
		"name":               what,
		"unique_id":          "makercast_pi1_" + what,
		"default_entity_id":  component + ".makercast_pi1_" + what,
		"availability_topic": "makercast/pi1/availability",
		"device":             map[string]any{"identifiers": []any{"makercast_pi1"}, "name": "makercast pi1"},
		"origin":             map[string]any{"name": "makercast"},
	}
}

// fromDiscovery decodes the message of pi1's discovery with unique_id id.
func fromDiscovery(t *testing.T, id string) (string, map[string]any) {
	t.Helper()
	for _, m := range Discovery("", pi1) {
		var cfg map[string]any
		if err := json.Unmarshal(m.Payload, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg["unique_id"] == id {
			return m.Topic, cfg
		}
	}
	t.Fatalf("no entity %s", id)
	return "", nil
}

func TestCheck(t *testing.T) {
	switchTopic, sw := fromDiscovery(t, "makercast_pi1_test_stream")
	enumTopic, enum := fromDiscovery(t, "makercast_pi1_test_capture")
	countTopic, count := fromDiscovery(t, "makercast_pi1_main_reconnects")
	liveTopic, live := fromDiscovery(t, "makercast_pi1_main_live")
	const (
		bsTopic     = "homeassistant/binary_sensor/makercast_pi1/test_problem/config"
		buttonTopic = "homeassistant/button/makercast_pi1/restart/config"
		cameraTopic = "homeassistant/camera/makercast_pi1/test_snapshot/config"
		imageTopic  = "homeassistant/image/makercast_pi1/test_snapshot/config"
		selectTopic = "homeassistant/select/makercast_pi1/test_mode/config"
		numberTopic = "homeassistant/number/makercast_pi1/test_delay/config"
		updateTopic = "homeassistant/update/makercast_pi1/firmware/config"
	)
	problem := with(entityOf("binary_sensor", "test_problem"),
		"state_topic", "makercast/pi1/camera/test/state",
		"value_template", "{{ 'ON' if value_json.capture == 'error' else 'OFF' }}",
		"device_class", "problem", "entity_category", "diagnostic")
	button := with(entityOf("button", "restart"),
		"command_topic", "makercast/pi1/request/restart", "device_class", "restart",
		"payload_press", "{}", "entity_category", "config")
	camera := with(entityOf("camera", "test_snapshot"), "topic", "makercast/pi1/camera/test/snapshot", "image_encoding", "b64")
	image := with(entityOf("image", "test_snapshot"), "url_topic", "makercast/pi1/camera/test/snapshot_url")
	sel := with(entityOf("select", "test_mode"),
		"command_topic", "makercast/pi1/camera/test/mode/set", "state_topic", "makercast/pi1/camera/test/mode",
		"options", []any{"720p", "1080p"}, "entity_category", "config")
	number := with(entityOf("number", "test_delay"),
		"command_topic", "makercast/pi1/camera/test/delay/set", "min", 0, "max", 10, "step", 0.5,
		"mode", "slider", "unit_of_measurement", "s", "device_class", "duration")
	upd := with(entityOf("update", "firmware"),
		"state_topic", "makercast/pi1/version", "latest_version_topic", "makercast/latest",
		"command_topic", "makercast/pi1/request/upgrade", "payload_install", "{}", "device_class", "firmware")

	for _, tc := range []struct {
		name  string
		topic string
		cfg   map[string]any // encoded as the payload unless raw is set
		raw   string
		want  string // "" for a valid message, else part of the error
	}{
		// Valid messages, one per platform table.
		{"switch from discovery", switchTopic, sw, "", ""},
		{"enum sensor from discovery", enumTopic, enum, "", ""},
		{"counter sensor from discovery", countTopic, count, "", ""},
		{"binary_sensor problem flag", bsTopic, problem, "", ""},
		{"button", buttonTopic, button, "", ""},
		{"camera", cameraTopic, camera, "", ""},
		{"image", imageTopic, image, "", ""},
		{"select", selectTopic, sel, "", ""},
		{"number", numberTopic, number, "", ""},
		{"update", updateTopic, upd, "", ""},
		{"topic without node_id", "homeassistant/switch/test_stream/config", sw, "", ""},
		{"prefix with a level", "a/b/switch/makercast_pi1/test_stream/config", sw, "", ""},
		{"null name is the main feature", switchTopic, with(sw, "name", nil), "", ""},
		{"availability list", switchTopic, with(sw, "availability_topic", del, "availability_mode", "all",
			"availability", []any{map[string]any{"topic": "makercast/pi1/availability", "payload_available": "online"}}), "", ""},
		{"device with connections only", switchTopic, with(sw, "device",
			map[string]any{"connections": []any{[]any{"mac", "02:5b:26:a8:dc:12"}}}), "", ""},
		{"device identifiers as a string", switchTopic, with(sw, "device", map[string]any{"identifiers": "makercast_pi1"}), "", ""},
		{"no device, no unique_id", switchTopic, with(sw, "device", del, "unique_id", del), "", ""},

		// Topics.
		{"not a config topic", "homeassistant/switch/makercast_pi1/test_stream", sw, "", "not <prefix>"},
		{"bad object_id", "homeassistant/switch/makercast_pi1/test.stream/config", sw, "", "may only hold"},
		{"bad node_id", "homeassistant/switch/maker cast/test_stream/config", sw, "", "may only hold"},
		{"unknown component", "homeassistant/lamp/makercast_pi1/test_stream/config", sw, "", `component "lamp"`},
		{"device-based discovery", "homeassistant/device/makercast_pi1/config", sw, "", "device-based"},
		{"no prefix", "switch/makercast_pi1/test_stream/config", sw, "", "no discovery prefix"},
		{"component without rules", "homeassistant/light/makercast_pi1/test_stream/config", sw, "", "no rules"},

		// Payload shape.
		{"empty payload", switchTopic, nil, "", "empty payload"},
		{"not JSON", switchTopic, nil, "{", "not JSON"},
		{"JSON array", switchTopic, nil, "[]", "not a JSON object"},

		// Keys.
		{"switch without command_topic", switchTopic, with(sw, "command_topic", del), "", "switch needs command_topic"},
		{"sensor without state_topic", enumTopic, with(enum, "state_topic", del), "", "sensor needs state_topic"},
		{"camera without topic", cameraTopic, with(camera, "topic", del), "", "camera needs topic"},
		{"select without options", selectTopic, with(sel, "options", del), "", "select needs options"},
		{"unknown key", switchTopic, with(sw, "colour", "red"), "", `unknown key "colour"`},
		{"abbreviated key", switchTopic, with(sw, "stat_t", "x"), "", `unknown key "stat_t"`},
		{"key of another platform", switchTopic, with(sw, "state_class", "measurement"), "", `unknown key "state_class"`},
		{"object_id", switchTopic, with(sw, "object_id", "x"), "", "use default_entity_id"},
		{"wrong type", switchTopic, with(sw, "optimistic", "false"), "", "optimistic must be true or false"},
		{"qos out of range", switchTopic, with(sw, "qos", 3), "", "qos must be 0, 1 or 2"},
		{"icon without prefix", switchTopic, with(sw, "icon", "broadcast"), "", "prefix:name"},

		// Device classes and categories.
		{"bad switch device_class", switchTopic, with(sw, "device_class", "door"), "", "not a switch device class"},
		{"bad sensor device_class", enumTopic, with(enum, "device_class", "colour"), "", "not a sensor device class"},
		{"bad binary_sensor device_class", bsTopic, with(problem, "device_class", "error"), "", "not a binary_sensor device class"},
		{"bad button device_class", buttonTopic, with(button, "device_class", "reboot"), "", "not a button device class"},
		{"camera has no device_class", cameraTopic, with(camera, "device_class", "x"), "", "camera has no device_class"},
		{"bad entity_category", switchTopic, with(sw, "entity_category", "system"), "", "not config or diagnostic"},
		{"sensor in config category", countTopic, with(count, "entity_category", "config"), "", "cannot have entity_category config"},
		{"binary_sensor in config category", bsTopic, with(problem, "entity_category", "config"), "", "cannot have entity_category config"},

		// Sensor rules.
		{"enum with unit", enumTopic, with(enum, "unit_of_measurement", "x"), "", "options cannot be used with"},
		{"enum with state_class", enumTopic, with(enum, "state_class", "measurement"), "", "options cannot be used with"},
		{"enum without options", enumTopic, with(enum, "options", del), "", "must list its options"},
		{"options without enum", enumTopic, with(enum, "device_class", del), "", "options need device_class enum"},
		{"empty options", enumTopic, with(enum, "options", []any{}), "", "non-empty list"},
		{"timestamp with unit", countTopic, with(count, "device_class", "timestamp", "state_class", del, "unit_of_measurement", "s"), "", "takes no state_class"},
		{"bad state_class", countTopic, with(count, "state_class", "sum"), "", `state_class "sum"`},
		{"last_reset without total", countTopic, with(count, "last_reset_value_template", "{{ now() }}"), "", "needs state_class total"},

		// Other platform rules.
		{"camera image_encoding", cameraTopic, with(camera, "image_encoding", "raw"), "", "only knows b64"},
		{"image with both topics", imageTopic, with(image, "image_topic", "x/y"), "", "exclude each other"},
		{"image without a topic", imageTopic, with(image, "url_topic", del), "", "needs image_topic or url_topic"},
		{"number min above max", numberTopic, with(number, "min", 11), "", "must be >= min"},
		{"number tiny step", numberTopic, with(number, "step", 0.0001), "", "step"},
		{"number bad mode", numberTopic, with(number, "mode", "dial"), "", "not auto, box or slider"},

		// Device, origin, unique_id and name.
		{"device without unique_id", switchTopic, with(sw, "unique_id", del), "", "needs a unique_id"},
		{"device without identifiers", switchTopic, with(sw, "device", map[string]any{"name": "x"}), "", "identifiers or connections"},
		{"device with empty identifiers", switchTopic, with(sw, "device", map[string]any{"identifiers": []any{}}), "", "non-empty list"},
		{"unknown device key", switchTopic, with(sw, "device", map[string]any{"identifiers": []any{"a"}, "mdl": "x"}), "", `unknown key "mdl" in device`},
		{"bad connections", switchTopic, with(sw, "device", map[string]any{"connections": []any{[]any{"mac"}}}), "", "[type, id] pairs"},
		{"bad configuration_url", switchTopic, with(sw, "device", map[string]any{"identifiers": []any{"a"}, "configuration_url": "pi1.local"}), "", "not an http(s) URL"},
		{"origin without name", switchTopic, with(sw, "origin", map[string]any{"sw_version": "1"}), "", "origin needs a name"},
		{"unknown origin key", switchTopic, with(sw, "origin", map[string]any{"name": "m", "url": "https://x"}), "", `unknown key "url" in origin`},
		{"name repeats the device name", switchTopic, with(sw, "name", "makercast pi1 test stream"), "", "starts with the device name"},

		// Availability.
		{"availability both ways", switchTopic, with(sw, "availability", []any{map[string]any{"topic": "a"}}), "", "exclude each other"},
		{"availability entry without topic", switchTopic, with(sw, "availability_topic", del,
			"availability", []any{map[string]any{"payload_available": "up"}}), "", "availability[0] needs a topic"},
		{"availability entry unknown key", switchTopic, with(sw, "availability_topic", del,
			"availability", []any{map[string]any{"topic": "a", "qos": 1}}), "", `unknown key "qos" in availability[0]`},
		{"bad availability_mode", switchTopic, with(sw, "availability_mode", "most"), "", "not all, any or latest"},

		// default_entity_id.
		{"default_entity_id of another domain", switchTopic, with(sw, "default_entity_id", "sensor.makercast_pi1_test_stream"), "", `must start with "switch."`},
		{"default_entity_id without domain", switchTopic, with(sw, "default_entity_id", "makercast_pi1_test_stream"), "", "not a valid entity id"},
		{"default_entity_id upper case", switchTopic, with(sw, "default_entity_id", "switch.Makercast"), "", "not a valid entity id"},
		{"default_entity_id with dash", switchTopic, with(sw, "default_entity_id", "switch.studio-2_x"), "", "not a valid entity id"},
		{"default_entity_id with double underscore", switchTopic, with(sw, "default_entity_id", "switch.a__b"), "", "not a valid entity id"},

		// Templates and topics inside the payload.
		{"unclosed expression", liveTopic, with(live, "value_template", "{{ value_json.switch "), "", "never closed"},
		{"stray closer", liveTopic, with(live, "value_template", "value_json.switch }}"), "", "stray }}"},
		{"nested opener", liveTopic, with(live, "value_template", "{{ a {% b %} }}"), "", "opens before"},
		{"unclosed statement", liveTopic, with(live, "value_template", "{% if x ON"), "", "never closed"},
		{"template not a string", liveTopic, with(live, "value_template", 1), "", "must be a template string"},
		{"wildcard in command_topic", switchTopic, with(sw, "command_topic", "makercast/+/set"), "", "holds a wildcard"},
		{"misused wildcard in state_topic", switchTopic, with(sw, "state_topic", "makercast/#/x"), "", "misuses a wildcard"},
		{"empty state_topic", switchTopic, with(sw, "state_topic", ""), "", "non-empty string"},
		{"wildcard filter is fine to subscribe", switchTopic, with(sw, "json_attributes_topic", "makercast/+/camera/#"), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := []byte(tc.raw)
			if tc.cfg != nil {
				var err error
				if payload, err = json.Marshal(tc.cfg); err != nil {
					t.Fatal(err)
				}
			}
			err := Check(tc.topic, payload)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("Check accepted it, want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("Check: %v\nwant an error containing %q", err, tc.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "homeassistant: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestCheckTemplate(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"", true},
		{"plain", true},
		{"{{ value_json.a }}", true},
		{"{%- if x -%}ON{%- else -%}OFF{%- endif -%}", true},
		{"{# note #}{{ x }}", true},
		{"{{ x }", false},
		{"{{ x }}}}", false},
		{"{% if %}{{ x }}", true},
		{"%}", false},
	} {
		if err := checkTemplate(tc.in); (err == nil) != tc.ok {
			t.Errorf("checkTemplate(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// numberDeviceClasses is a slice of sensorDeviceClasses that relies on the
// non-numeric classes coming first.
func TestNumberDeviceClassesAreTheNumericSensorClasses(t *testing.T) {
	for _, dc := range nonNumericSensorClasses {
		if contains(numberDeviceClasses, dc) {
			t.Errorf("number accepts the non-numeric device class %s", dc)
		}
	}
	if len(numberDeviceClasses)+len(nonNumericSensorClasses) != len(sensorDeviceClasses) {
		t.Error("numberDeviceClasses lost a numeric sensor class")
	}
}
