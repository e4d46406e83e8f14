package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/homeassistant"
	"github.com/makercast/makercast/internal/testenv"
)

// haConfigs waits until n discovery configs are retained and returns them
// by topic; every one must pass the Home Assistant checker.
func haConfigs(t *testing.T, w *testenv.Watcher, n int) map[string]map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := map[string]map[string]any{}
		for _, m := range w.Messages() {
			if !strings.HasSuffix(m.Topic, "/config") {
				continue
			}
			if m.Payload == "" {
				delete(got, m.Topic)
				continue
			}
			if err := homeassistant.Check(m.Topic, []byte(m.Payload)); err != nil {
				t.Fatalf("Home Assistant would reject %s: %v", m.Topic, err)
			}
			var cfg map[string]any
			if err := json.Unmarshal([]byte(m.Payload), &cfg); err != nil {
				t.Fatal(err)
			}
			got[m.Topic] = cfg
		}
		if len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d discovery configs, want %d", len(got), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func byUniqueID(t *testing.T, cfgs map[string]map[string]any, id string) map[string]any {
	t.Helper()
	for _, c := range cfgs {
		if c["unique_id"] == id {
			return c
		}
	}
	t.Fatalf("no entity %s among %d configs", id, len(cfgs))
	return nil
}

var templateField = regexp.MustCompile(`value_json\.(\w+)`)

// haState renders an entity's state the way HA would for our templates: the
// raw payload, or the JSON field its value_template names.
func haState(cfg map[string]any, payload string) string {
	tmpl, _ := cfg["value_template"].(string)
	if tmpl == "" {
		return payload
	}
	var m map[string]any
	if json.Unmarshal([]byte(payload), &m) != nil {
		return "None"
	}
	f := templateField.FindStringSubmatch(tmpl)
	if f == nil {
		return "None"
	}
	return fmt.Sprint(m[f[1]])
}

// TestHomeAssistantUsesOnlyDiscoveredTopics behaves like Home Assistant:
// it knows nothing of makercast's topics and drives the device only through
// what the discovery configs announce.
func TestHomeAssistantUsesOnlyDiscoveredTopics(t *testing.T) {
	r := newRig(t)
	ha := testenv.Watch(t, r.broker.URL, "homeassistant/#")
	startAgent(t, r.env(map[string]string{
		"MAKERCAST_DESTINATIONS":           fmt.Sprintf("backup=%s", r.rtmp.URL()),
		"MAKERCAST_DESTINATION_BACKUP_KEY": "backupkey",
	}))
	// 12 health entities + 1 camera × 10 + 2 destinations × 4.
	cfgs := haConfigs(t, ha, 30)
	sw := byUniqueID(t, cfgs, "makercast_pi1_test_stream")
	live := byUniqueID(t, cfgs, "makercast_pi1_backup_live")
	state := byUniqueID(t, cfgs, "makercast_pi1_backup_state")

	// HA subscribes to what the configs name, and nothing else.
	ent := testenv.Watch(t, r.broker.URL, "#")
	avail := sw["availability_topic"].(string)
	ent.Wait(avail, testenv.Equals(sw["payload_available"].(string)), 10*time.Second)

	ent.Publish(sw["command_topic"].(string), []byte(sw["payload_on"].(string)), false)
	ent.Wait(sw["state_topic"].(string), testenv.Equals(sw["payload_on"].(string)), 10*time.Second)
	r.rtmp.WaitPublishing(t, "backupkey", 10*time.Second)
	ent.Wait(live["state_topic"].(string), func(p string) bool { return haState(live, p) == live["payload_on"] }, 10*time.Second)
	ent.Wait(state["state_topic"].(string), func(p string) bool { return haState(state, p) == "live" }, 10*time.Second)

	mark := ent.Len()
	ent.Publish(live["command_topic"].(string), []byte(live["payload_off"].(string)), false)
	r.rtmp.WaitGone(t, "backupkey", 5*time.Second)
	ent.WaitFrom(mark, state["state_topic"].(string), func(p string) bool { return haState(state, p) == "idle" }, 5*time.Second)
	if !r.rtmp.Publishing("s3cretKEY-42") {
		t.Error("switching one destination off stopped the other")
	}
	ent.Publish(sw["command_topic"].(string), []byte(sw["payload_off"].(string)), false)
	ent.WaitFrom(mark, sw["state_topic"].(string), testenv.Equals(sw["payload_off"].(string)), 5*time.Second)
	r.rtmp.WaitGone(t, "s3cretKEY-42", 5*time.Second)

	// The recording switch, the same way.
	rec := byUniqueID(t, cfgs, "makercast_pi1_test_recording")
	mark = ent.Len()
	ent.Publish(rec["command_topic"].(string), []byte(rec["payload_on"].(string)), false)
	ent.WaitFrom(mark, rec["state_topic"].(string), func(p string) bool {
		return haState(rec, p) == rec["payload_on"] && strings.Contains(p, `"status":"recording"`)
	}, 10*time.Second)
	ent.Publish(rec["command_topic"].(string), []byte(rec["payload_off"].(string)), false)
	ent.WaitFrom(mark, rec["state_topic"].(string), func(p string) bool { return haState(rec, p) == rec["payload_off"] }, 5*time.Second)

	// HA restarts: on its birth message the configs come again.
	mark = ha.Len()
	ha.Publish("homeassistant/status", []byte("online"), false)
	ha.WaitFrom(mark, "homeassistant/switch/makercast_pi1/test_stream/config", nil, 5*time.Second)
}

func TestHomeAssistantEntitiesFollowTheConfiguration(t *testing.T) {
	r := newRig(t)
	ha := testenv.Watch(t, r.broker.URL, "homeassistant/#")
	env := r.env(map[string]string{
		"MAKERCAST_DESTINATIONS":           fmt.Sprintf("backup=%s", r.rtmp.URL()),
		"MAKERCAST_DESTINATION_BACKUP_KEY": "backupkey",
	})
	a := startAgent(t, env)
	haConfigs(t, ha, 30)

	// A destination added over MQTT appears, and goes when removed.
	r.w.Publish(r.base+"/request/add_destination", []byte(`{"name":"extra","url":"`+r.rtmp.URL()+`","key":"k2"}`), false)
	haConfigs(t, ha, 34)
	r.w.Publish(r.base+"/request/remove_destination", []byte(`{"name":"extra"}`), false)
	haConfigs(t, ha, 30)

	// Restarted without "backup": its entities are removed.
	a.Stop()
	delete(env, "MAKERCAST_DESTINATIONS")
	delete(env, "MAKERCAST_DESTINATION_BACKUP_KEY")
	a = startAgent(t, env)
	cfgs := haConfigs(t, ha, 26)
	for topic := range cfgs {
		if strings.Contains(topic, "backup") {
			t.Errorf("stale entity %s kept", topic)
		}
	}
	// Discovery switched off: everything goes.
	a.Stop()
	env["MAKERCAST_HA_DISCOVERY"] = "false"
	startAgent(t, env)
	haConfigs(t, ha, 0)
}
