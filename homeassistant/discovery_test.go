package homeassistant

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/makercast/makercast/internal/mqtt"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// pi1 is the model the dashboard, the automations and the first golden file
// are written for.
var pi1 = Model{
	Device: Device{ID: "pi1", Name: "makercast pi1", Model: "Raspberry Pi 4 Model B Rev 1.4", SWVersion: "0.3.0"},
	Base:   "makercast/pi1",
	Cameras: []Camera{
		{Name: "test"},
	},
	Destinations: []Destination{
		{Name: "main", Camera: "test"},
	},
}

// studio has two cameras and three destinations, given out of order.
var studio = Model{
	Device: Device{ID: "studio-2", Name: "makercast studio", Manufacturer: "Raspberry Pi Ltd", SWVersion: "0.3.0"},
	Base:   "makercast/studio-2",
	Cameras: []Camera{
		{Name: "workbench"},
		{Name: "overhead"},
	},
	Destinations: []Destination{
		{Name: "youtube", Camera: "workbench"},
		{Name: "twitch", Camera: "overhead"},
		{Name: "backup-nas", Camera: "workbench"},
	},
}

// render writes messages as the golden files hold them: "# topic", then the
// payload exactly as published, then a blank line.
func render(msgs []Message) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString("# " + m.Topic + "\n")
		b.Write(m.Payload)
		b.WriteString("\n\n")
	}
	return b.Bytes()
}

// balenaPi is pi1 running under balena: the fleet entities too.
var balenaPi = func() Model { m := pi1; m.Fleet = true; return m }()

func TestDiscoveryGolden(t *testing.T) {
	for _, tc := range []struct {
		file   string
		prefix string
		model  Model
	}{
		{"one_camera_one_destination.golden", "", pi1},
		{"two_cameras_three_destinations.golden", "ha", studio},
		{"balena_fleet.golden", "", balenaPi},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := render(Discovery(tc.prefix, tc.model))
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./homeassistant/ -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Discovery differs from %s (go test ./homeassistant/ -update rewrites it):\ngot:\n%s", path, got)
			}
		})
	}
}

func TestDiscoveryPassesCheck(t *testing.T) {
	bare := Model{ // only what is required: no name, model or version
		Device:       Device{ID: "x"},
		Base:         "mc/x",
		Cameras:      []Camera{{Name: "cam-1"}},
		Destinations: []Destination{{Name: "a_b", Camera: "cam-1"}},
	}
	for name, m := range map[string]Model{"pi1": pi1, "studio": studio, "bare": bare, "balena": balenaPi} {
		for _, prefix := range []string{"", "homeassistant", "ha/discovery"} {
			msgs := Discovery(prefix, m)
			fleet := 0
			if m.Fleet {
				fleet = 4 // update entity; restart, reboot and identify buttons
			}
			if want := 12 + 10*len(m.Cameras) + 4*len(m.Destinations) + fleet; len(msgs) != want {
				t.Errorf("%s: %d messages, want %d", name, len(msgs), want)
			}
			for _, msg := range msgs {
				if err := Check(msg.Topic, msg.Payload); err != nil {
					t.Errorf("%s: %v\n%s", name, err, msg.Payload)
				}
			}
		}
	}
}

// TestDiscoveryEntities pins the shape of every entity of pi1: component,
// name, unique_id, default_entity_id and the topics it uses.
func TestDiscoveryEntities(t *testing.T) {
	type ent struct {
		topic, name, uniqueID, entityID, state, command string
	}
	want := []ent{
		{"homeassistant/sensor/makercast_pi1/health_cpu_temp/config", "CPU temperature", "makercast_pi1_health_cpu_temp",
			"sensor.makercast_pi1_health_cpu_temp", "makercast/pi1/health", ""},
		{"homeassistant/binary_sensor/makercast_pi1/health_under_voltage/config", "Under-voltage", "makercast_pi1_health_under_voltage",
			"binary_sensor.makercast_pi1_health_under_voltage", "makercast/pi1/health", ""},
		{"homeassistant/binary_sensor/makercast_pi1/health_throttled/config", "CPU throttled", "makercast_pi1_health_throttled",
			"binary_sensor.makercast_pi1_health_throttled", "makercast/pi1/health", ""},
		{"homeassistant/binary_sensor/makercast_pi1/health_freq_capped/config", "CPU frequency capped", "makercast_pi1_health_freq_capped",
			"binary_sensor.makercast_pi1_health_freq_capped", "makercast/pi1/health", ""},
		{"homeassistant/binary_sensor/makercast_pi1/health_under_voltage_since_boot/config", "Under-voltage since boot", "makercast_pi1_health_under_voltage_since_boot",
			"binary_sensor.makercast_pi1_health_under_voltage_since_boot", "makercast/pi1/health", ""},
		{"homeassistant/sensor/makercast_pi1/health_cpu_usage/config", "CPU usage", "makercast_pi1_health_cpu_usage",
			"sensor.makercast_pi1_health_cpu_usage", "makercast/pi1/health", ""},
		{"homeassistant/sensor/makercast_pi1/health_load/config", "Load (1 min)", "makercast_pi1_health_load",
			"sensor.makercast_pi1_health_load", "makercast/pi1/health", ""},
		{"homeassistant/sensor/makercast_pi1/health_memory/config", "Memory used", "makercast_pi1_health_memory",
			"sensor.makercast_pi1_health_memory", "makercast/pi1/health", ""},
		{"homeassistant/sensor/makercast_pi1/health_disk_free/config", "Media disk free", "makercast_pi1_health_disk_free",
			"sensor.makercast_pi1_health_disk_free", "makercast/pi1/health", ""},
		{"homeassistant/sensor/makercast_pi1/health_wifi_signal/config", "Wi-Fi signal", "makercast_pi1_health_wifi_signal",
			"sensor.makercast_pi1_health_wifi_signal", "makercast/pi1/health", ""},
		{"homeassistant/sensor/makercast_pi1/health_wifi_quality/config", "Wi-Fi link quality", "makercast_pi1_health_wifi_quality",
			"sensor.makercast_pi1_health_wifi_quality", "makercast/pi1/health", ""},
		{"homeassistant/sensor/makercast_pi1/health_uptime/config", "Uptime", "makercast_pi1_health_uptime",
			"sensor.makercast_pi1_health_uptime", "makercast/pi1/health", ""},
		{"homeassistant/switch/makercast_pi1/test_stream/config", "test stream", "makercast_pi1_test_stream",
			"switch.makercast_pi1_test_stream", "makercast/pi1/camera/test/stream", "makercast/pi1/camera/test/stream/set"},
		{"homeassistant/sensor/makercast_pi1/test_capture/config", "test capture", "makercast_pi1_test_capture",
			"sensor.makercast_pi1_test_capture", "makercast/pi1/camera/test/state", ""},
		{"homeassistant/camera/makercast_pi1/test_image/config", "test picture", "makercast_pi1_test_image",
			"camera.makercast_pi1_test_image", "", ""},
		{"homeassistant/button/makercast_pi1/test_snapshot/config", "test snapshot", "makercast_pi1_test_snapshot",
			"button.makercast_pi1_test_snapshot", "", "makercast/pi1/camera/test/snapshot/set"},
		{"homeassistant/switch/makercast_pi1/test_timelapse/config", "test timelapse", "makercast_pi1_test_timelapse",
			"switch.makercast_pi1_test_timelapse", "makercast/pi1/camera/test/timelapse", "makercast/pi1/camera/test/timelapse/set"},
		{"homeassistant/sensor/makercast_pi1/test_timelapse_frames/config", "test timelapse frames", "makercast_pi1_test_timelapse_frames",
			"sensor.makercast_pi1_test_timelapse_frames", "makercast/pi1/camera/test/timelapse", ""},
		{"homeassistant/switch/makercast_pi1/test_recording/config", "test recording", "makercast_pi1_test_recording",
			"switch.makercast_pi1_test_recording", "makercast/pi1/camera/test/recording", "makercast/pi1/camera/test/recording/set"},
		{"homeassistant/sensor/makercast_pi1/test_capture_fps/config", "test capture fps", "makercast_pi1_test_capture_fps",
			"sensor.makercast_pi1_test_capture_fps", "makercast/pi1/camera/test/stats", ""},
		{"homeassistant/sensor/makercast_pi1/test_encoder_fps/config", "test encoder fps", "makercast_pi1_test_encoder_fps",
			"sensor.makercast_pi1_test_encoder_fps", "makercast/pi1/camera/test/stats", ""},
		{"homeassistant/sensor/makercast_pi1/test_dropped_frames/config", "test dropped frames", "makercast_pi1_test_dropped_frames",
			"sensor.makercast_pi1_test_dropped_frames", "makercast/pi1/camera/test/stats", ""},
		{"homeassistant/switch/makercast_pi1/main_live/config", "main live", "makercast_pi1_main_live",
			"switch.makercast_pi1_main_live", "makercast/pi1/destination/main/state", "makercast/pi1/destination/main/set"},
		{"homeassistant/sensor/makercast_pi1/main_state/config", "main state", "makercast_pi1_main_state",
			"sensor.makercast_pi1_main_state", "makercast/pi1/destination/main/state", ""},
		{"homeassistant/sensor/makercast_pi1/main_reconnects/config", "main reconnects", "makercast_pi1_main_reconnects",
			"sensor.makercast_pi1_main_reconnects", "makercast/pi1/destination/main/state", ""},
		{"homeassistant/sensor/makercast_pi1/main_bitrate/config", "main bitrate", "makercast_pi1_main_bitrate",
			"sensor.makercast_pi1_main_bitrate", "makercast/pi1/destination/main/state", ""},
	}
	var got []ent
	for _, m := range Discovery("", pi1) {
		var cfg map[string]any
		if err := json.Unmarshal(m.Payload, &cfg); err != nil {
			t.Fatal(err)
		}
		str := func(k string) string { s, _ := cfg[k].(string); return s }
		got = append(got, ent{m.Topic, str("name"), str("unique_id"), str("default_entity_id"), str("state_topic"), str("command_topic")})
		if str("availability_topic") != "makercast/pi1/availability" {
			t.Errorf("%s: availability_topic %q", m.Topic, str("availability_topic"))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entities:\n got %+v\nwant %+v", got, want)
	}
}

func TestDiscoveryIsStable(t *testing.T) {
	shuffled := studio
	shuffled.Cameras = []Camera{studio.Cameras[1], studio.Cameras[0]}
	shuffled.Destinations = []Destination{studio.Destinations[2], studio.Destinations[0], studio.Destinations[1]}
	if a, b := render(Discovery("", studio)), render(Discovery("", shuffled)); !bytes.Equal(a, b) {
		t.Error("the order of cameras and destinations changes the messages")
	}
}

func TestDiscoveryIDsAreUnique(t *testing.T) {
	seen := map[string]string{}
	topics := map[string]bool{}
	for _, m := range Discovery("", studio) {
		var cfg map[string]any
		if err := json.Unmarshal(m.Payload, &cfg); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"unique_id", "default_entity_id"} {
			id := cfg[k].(string)
			if other, dup := seen[id]; dup {
				t.Errorf("%s %q of %s is also used by %s", k, id, m.Topic, other)
			}
			seen[id] = m.Topic
		}
		if topics[m.Topic] {
			t.Errorf("topic %s twice", m.Topic)
		}
		topics[m.Topic] = true
	}
}

func TestDeviceBlock(t *testing.T) {
	for _, tc := range []struct {
		dev  Device
		want map[string]any
	}{
		{Device{ID: "pi1"}, map[string]any{"identifiers": []any{"makercast_pi1"}, "manufacturer": "makercast"}},
		{Device{ID: "pi1", Name: "n", Model: "m", Manufacturer: "f", SWVersion: "1"},
			map[string]any{"identifiers": []any{"makercast_pi1"}, "name": "n", "model": "m", "manufacturer": "f", "sw_version": "1"}},
	} {
		msgs := Discovery("", Model{Device: tc.dev, Base: "makercast/pi1", Cameras: []Camera{{Name: "c"}}})
		var cfg map[string]any
		if err := json.Unmarshal(msgs[0].Payload, &cfg); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cfg["device"], tc.want) {
			t.Errorf("device %+v: block %v, want %v", tc.dev, cfg["device"], tc.want)
		}
		origin := cfg["origin"].(map[string]any)
		if origin["name"] != "makercast" || origin["support_url"] != "https://github.com/makercast/makercast" {
			t.Errorf("origin %v", origin)
		}
	}
}

func TestAvailabilityPayloadsMatchTheAgent(t *testing.T) {
	if payloadOnline != mqtt.Online || payloadOffline != mqtt.Offline {
		t.Errorf("payloads %q/%q, the agent publishes %q/%q", payloadOnline, payloadOffline, mqtt.Online, mqtt.Offline)
	}
}

func TestTopics(t *testing.T) {
	for _, m := range []Model{pi1, studio} {
		var want []string
		for _, msg := range Discovery("ha", m) {
			want = append(want, msg.Topic)
		}
		if got := Topics("ha", m); !reflect.DeepEqual(got, want) {
			t.Errorf("Topics = %v, Discovery publishes %v", got, want)
		}
	}
}

func TestNodeFilter(t *testing.T) {
	for _, tc := range []struct{ prefix, id, want string }{
		{"", "pi1", "homeassistant/+/makercast_pi1/+/config"},
		{"homeassistant", "pi1", "homeassistant/+/makercast_pi1/+/config"},
		{"ha/disc", "studio-2", "ha/disc/+/makercast_studio-2/+/config"},
	} {
		if got := NodeFilter(tc.prefix, tc.id); got != tc.want {
			t.Errorf("NodeFilter(%q, %q) = %q, want %q", tc.prefix, tc.id, got, tc.want)
		}
	}
	// Every topic Discovery publishes matches the filter.
	for _, topic := range Topics("", pi1) {
		if !matchesNode("", "pi1", topic) {
			t.Errorf("%s does not match %s", topic, NodeFilter("", "pi1"))
		}
	}
}

func TestStale(t *testing.T) {
	current := Discovery("", pi1)
	cur := func(i int) string { return current[i].Topic }
	for _, tc := range []struct {
		name     string
		prefix   string
		existing []string
		want     []string
	}{
		{"nothing on the broker", "", nil, nil},
		{"all current", "", Topics("", pi1), nil},
		{"removed destination", "", []string{
			cur(0),
			"homeassistant/switch/makercast_pi1/old_live/config",
			"homeassistant/sensor/makercast_pi1/old_state/config",
			"homeassistant/sensor/makercast_pi1/old_reconnects/config",
		}, []string{
			"homeassistant/sensor/makercast_pi1/old_reconnects/config",
			"homeassistant/sensor/makercast_pi1/old_state/config",
			"homeassistant/switch/makercast_pi1/old_live/config",
		}},
		{"duplicates reported once", "", []string{
			"homeassistant/switch/makercast_pi1/old_live/config",
			"homeassistant/switch/makercast_pi1/old_live/config",
		}, []string{"homeassistant/switch/makercast_pi1/old_live/config"}},
		{"other devices and foreign topics are left alone", "", []string{
			"homeassistant/switch/makercast_pi2/old_live/config",
			"homeassistant/switch/makercast_pi10/old_live/config",
			"homeassistant/switch/other_pi1/old_live/config",
			"homeassistant/switch/makercast_pi1/old_live/state",
			"homeassistant/switch/makercast_pi1/a/b/config",
			"homeassistant/switch/old_live/config",
			"other/switch/makercast_pi1/old_live/config",
			"makercast/pi1/availability",
		}, nil},
		{"prefix is honoured", "ha", []string{
			"homeassistant/switch/makercast_pi1/old_live/config",
			"ha/switch/makercast_pi1/old_live/config",
		}, []string{"ha/switch/makercast_pi1/old_live/config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := current
			if tc.prefix != "" {
				cur = Discovery(tc.prefix, pi1)
			}
			got := Stale(tc.prefix, "pi1", tc.existing, cur)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Stale = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"makercast_pi1_test_stream":     "makercast_pi1_test_stream",
		"makercast_studio-2_a-b_live":   "makercast_studio_2_a_b_live",
		"makercast_x__y_state":          "makercast_x_y_state",
		"-Cam--1_":                      "cam_1",
		"makercast_pi1_backup-nas_live": "makercast_pi1_backup_nas_live",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValueTemplatesGuardEmptyPayloads(t *testing.T) {
	for _, m := range Discovery("", pi1) {
		var cfg map[string]any
		if err := json.Unmarshal(m.Payload, &cfg); err != nil {
			t.Fatal(err)
		}
		tpl, ok := cfg["value_template"].(string)
		if !ok {
			continue
		}
		if !strings.Contains(tpl, "value_json is defined") || !(strings.Contains(tpl, "else 'None'") || strings.Contains(tpl, "{% else %}None{% endif %}")) {
			t.Errorf("%s: value_template %q does not survive an empty state payload", m.Topic, tpl)
		}
	}
}
