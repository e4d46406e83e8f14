package homeassistant

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"testing"

	"gopkg.in/yaml.v3"
)

// entityRef finds entity ids of the platforms makercast may publish.
var entityRef = regexp.MustCompile(`\b(?:binary_sensor|sensor|switch|button|camera|image)\.[a-z0-9_]+\b`)

// actionKeys hold actions (switch.turn_on), not entity ids.
var actionKeys = map[string]bool{"action": true, "service": true}

// yamlEntityRefs returns the entity ids the scalars of a YAML document
// mention, skipping the values of action keys.
func yamlEntityRefs(n *yaml.Node, key string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			yamlEntityRefs(c, key, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			yamlEntityRefs(n.Content[i+1], n.Content[i].Value, out)
		}
	case yaml.ScalarNode:
		if actionKeys[key] {
			return
		}
		for _, id := range entityRef.FindAllString(n.Value, -1) {
			out[id] = true
		}
	}
}

// TestShippedYAMLReferencesDiscoveredEntities checks that dashboard.yaml
// and automations.yaml only name entities Discovery creates for the device
// they are written for, and that they name the ones they are meant to.
func TestShippedYAMLReferencesDiscoveredEntities(t *testing.T) {
	m := Model{
		Device:       Device{ID: "pi1"},
		Base:         "makercast/pi1",
		Cameras:      []Camera{{Name: "test"}},
		Destinations: []Destination{{Name: "main", Camera: "test"}},
	}
	discovered := map[string]bool{}
	for _, msg := range Discovery("", m) {
		var cfg struct {
			DefaultEntityID string `json:"default_entity_id"`
		}
		if err := json.Unmarshal(msg.Payload, &cfg); err != nil {
			t.Fatal(err)
		}
		discovered[cfg.DefaultEntityID] = true
	}

	for file, mustUse := range map[string][]string{
		"dashboard.yaml": {
			"switch.makercast_pi1_test_stream",
			"switch.makercast_pi1_main_live",
			"sensor.makercast_pi1_main_state",
		},
		"automations.yaml": {"switch.makercast_pi1_test_stream"},
	} {
		t.Run(file, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal(src, &doc); err != nil {
				t.Fatalf("%s does not parse: %v", file, err)
			}
			refs := map[string]bool{}
			yamlEntityRefs(&doc, "", refs)
			var ids []string
			for id := range refs {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				if !discovered[id] {
					t.Errorf("%s names %s, which discovery does not create", file, id)
				}
			}
			for _, id := range mustUse {
				if !refs[id] {
					t.Errorf("%s does not use %s", file, id)
				}
			}
		})
	}
}

func TestAutomationsShape(t *testing.T) {
	src, err := os.ReadFile("automations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var autos []struct {
		ID       string `yaml:"id"`
		Alias    string `yaml:"alias"`
		Triggers []struct {
			Trigger  string `yaml:"trigger"`
			Event    string `yaml:"event"`
			Offset   string `yaml:"offset"`
			EntityID string `yaml:"entity_id"`
		} `yaml:"triggers"`
		Actions []any `yaml:"actions"`
	}
	if err := yaml.Unmarshal(src, &autos); err != nil {
		t.Fatal(err)
	}
	if len(autos) == 0 {
		t.Fatal("no automation")
	}
	events := map[string]bool{}
	for _, a := range autos {
		if a.ID == "" || a.Alias == "" || len(a.Triggers) == 0 || len(a.Actions) == 0 {
			t.Errorf("automation %+v lacks an id, alias, trigger or action", a)
		}
		for _, tr := range a.Triggers {
			if tr.Trigger == "calendar" && tr.EntityID == "calendar.makerspace_events" && tr.Offset == "0:0:0" {
				events[tr.Event] = true
			}
		}
	}
	if !events["start"] || !events["end"] {
		t.Errorf("want calendar triggers on calendar.makerspace_events for start and end at offset 0, got %v", events)
	}
}
