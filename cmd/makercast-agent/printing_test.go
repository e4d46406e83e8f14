package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/homeassistant"
	"github.com/makercast/makercast/internal/testenv"
)

type mqttMsg struct{ topic, payload string }

// klipperMacros reads each macro's publish_mqtt_topic calls.
func klipperMacros(t *testing.T) map[string][]mqttMsg {
	t.Helper()
	b, err := os.ReadFile("../../examples/3d-printing/klipper-macros.cfg")
	if err != nil {
		t.Fatal(err)
	}
	macro := regexp.MustCompile(`(?m)^\[gcode_macro (\w+)\]`)
	call := regexp.MustCompile(`publish_mqtt_topic", topic="([^"]+)", payload=(?:'([^']*)'|"([^"]*)")`)
	out := map[string][]mqttMsg{}
	idx := macro.FindAllStringSubmatchIndex(string(b), -1)
	for i, m := range idx {
		end := len(b)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		name := string(b[m[2]:m[3]])
		for _, c := range call.FindAllStringSubmatch(string(b[m[1]:end]), -1) {
			out[name] = append(out[name], mqttMsg{c[1], c[2] + c[3]})
		}
	}
	return out
}

type haAutomation struct {
	ID       string `yaml:"id"`
	Triggers []struct {
		Topic string `yaml:"topic"`
	} `yaml:"triggers"`
	Actions []struct {
		Action string `yaml:"action"`
		Data   struct {
			Topic   string `yaml:"topic"`
			Payload string `yaml:"payload"`
		} `yaml:"data"`
		Target struct {
			EntityID string `yaml:"entity_id"`
		} `yaml:"target"`
	} `yaml:"actions"`
}

// octoprintAutomations maps each OctoPrint event topic to the MQTT messages
// its automation sends (a button press becomes the button's command).
func octoprintAutomations(t *testing.T, buttons map[string]mqttMsg) map[string][]mqttMsg {
	t.Helper()
	b, err := os.ReadFile("../../examples/3d-printing/octoprint-automations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var autos []haAutomation
	if err := yaml.Unmarshal(b, &autos); err != nil {
		t.Fatal(err)
	}
	out := map[string][]mqttMsg{}
	for _, a := range autos {
		var msgs []mqttMsg
		for _, act := range a.Actions {
			switch act.Action {
			case "mqtt.publish":
				msgs = append(msgs, mqttMsg{act.Data.Topic, act.Data.Payload})
			case "button.press":
				btn, ok := buttons[act.Target.EntityID]
				if !ok {
					t.Fatalf("%s presses %s, which discovery does not announce", a.ID, act.Target.EntityID)
				}
				msgs = append(msgs, btn)
			}
		}
		for _, tr := range a.Triggers {
			out[tr.Topic] = append(out[tr.Topic], msgs...)
		}
	}
	return out
}

// discovered returns the entity ids discovery announces for pi1/test and,
// for buttons, the message a press sends.
func discovered(t *testing.T) (ids map[string]bool, buttons map[string]mqttMsg) {
	t.Helper()
	ann := homeassistant.NewAnnouncer("", homeassistant.Device{ID: "pi1"}, "makercast/pi1", true)
	ids, buttons = map[string]bool{}, map[string]mqttMsg{}
	for _, m := range ann.Configs(agent.Model{Cameras: []string{"test"}, Destinations: []agent.ModelDestination{{Name: "main", Camera: "test"}}}) {
		var cfg map[string]any
		json.Unmarshal(m.Payload, &cfg)
		id := cfg["default_entity_id"].(string)
		ids[id] = true
		if p, ok := cfg["payload_press"].(string); ok {
			buttons[id] = mqttMsg{cfg["command_topic"].(string), p}
		}
	}
	return ids, buttons
}

func TestPrintingExamplesUseRealTopicsAndEntities(t *testing.T) {
	ids, buttons := discovered(t)
	topics := agent.NewTopics("makercast", "pi1")
	check := func(where string, m mqttMsg) {
		if _, err := topics.ParseCommand(m.topic, []byte(m.payload)); err != nil {
			t.Errorf("%s: the agent refuses %s %q: %v", where, m.topic, m.payload, err)
		}
	}
	macros := klipperMacros(t)
	if len(macros) != 3 {
		t.Fatalf("found %d Klipper macros, want 3", len(macros))
	}
	for name, msgs := range macros {
		for _, m := range msgs {
			check(name, m)
		}
	}
	autos := octoprintAutomations(t, buttons)
	for topic, msgs := range autos {
		for _, m := range msgs {
			check(topic, m)
		}
	}
	b, _ := os.ReadFile("../../examples/3d-printing/octoprint-automations.yaml")
	for _, id := range regexp.MustCompile(`(?:button|camera|switch|sensor)\.makercast_[a-z0-9_]+`).FindAllString(string(b), -1) {
		if !ids[id] {
			t.Errorf("automations refer to %s, which discovery does not produce", id)
		}
	}
}

// A print replayed: OctoPrint events through the HA automations' actions,
// then a Klipper print through the macros. Each makes an MP4 with one frame
// per layer, and ends with a snapshot.
func TestPrintingReplay(t *testing.T) {
	_, buttons := discovered(t)
	r := newRig(t)
	startAgent(t, r.env(map[string]string{"MAKERCAST_SNAPSHOT_MIN_INTERVAL": "50ms"}))
	r.online(t)
	send := func(msgs []mqttMsg) {
		for _, m := range msgs {
			r.w.Publish(m.topic, []byte(m.payload), false)
		}
	}
	run := func(name string, start, layer, end []mqttMsg, layers int) {
		mark := r.w.Len()
		send(start)
		r.w.WaitFrom(mark, r.base+"/camera/test/timelapse", testenv.Contains(`"state":"ON"`), 5*time.Second)
		for i := 1; i <= layers; i++ {
			send(layer)
			r.w.WaitFrom(mark, r.base+"/camera/test/timelapse", testenv.Contains(fmt.Sprintf(`"frames":%d`, i)), 5*time.Second)
		}
		send(end)
		m, _ := r.w.WaitFrom(mark, r.base+"/camera/test/timelapse/event", testenv.Contains(`"event":"done"`), 30*time.Second)
		var ev tlEvent
		json.Unmarshal([]byte(m.Payload), &ev)
		if got := countFrames(t, ev.Path); got != fmt.Sprintf("h264,%d", layers) {
			t.Errorf("%s: video has %s, want one frame per layer (%d)", name, got, layers)
		}
		r.w.WaitFrom(mark, r.base+"/camera/test/image", nil, 5*time.Second)
	}
	autos := octoprintAutomations(t, buttons)
	run("octoprint", autos["octoPrint/event/PrintStarted"], autos["octoPrint/event/ZChange"], autos["octoPrint/event/PrintDone"], 5)
	m := klipperMacros(t)
	run("klipper", m["MAKERCAST_TIMELAPSE_START"], m["MAKERCAST_TIMELAPSE_FRAME"], m["MAKERCAST_TIMELAPSE_STOP"], 4)
}
