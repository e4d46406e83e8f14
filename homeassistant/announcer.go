package homeassistant

import "github.com/makercast/makercast/agent"

// Announcer adapts Discovery to the agent's Discovery port.
type Announcer struct {
	prefix  string
	device  Device
	base    string
	enabled bool
}

var _ agent.Discovery = Announcer{}

// NewAnnouncer announces device, whose topics are under base, with the
// discovery prefix. With enabled false it announces nothing, so the agent
// clears whatever an earlier run published.
func NewAnnouncer(prefix string, device Device, base string, enabled bool) Announcer {
	return Announcer{prefix: orDefault(prefix), device: device, base: base, enabled: enabled}
}

// Configs returns the discovery messages for the agent's model.
func (a Announcer) Configs(m agent.Model) []agent.Message {
	if !a.enabled {
		return nil
	}
	hm := Model{Device: a.device, Base: a.base, Fleet: m.Fleet}
	for _, c := range m.Cameras {
		hm.Cameras = append(hm.Cameras, Camera{Name: c})
	}
	for _, d := range m.Destinations {
		hm.Destinations = append(hm.Destinations, Destination{Name: d.Name, Camera: d.Camera})
	}
	var out []agent.Message
	for _, msg := range Discovery(a.prefix, hm) {
		out = append(out, agent.Message{Topic: msg.Topic, Payload: msg.Payload})
	}
	return out
}

// Filter matches every config topic of the device.
func (a Announcer) Filter() string { return NodeFilter(a.prefix, a.device.ID) }

// Owns reports whether topic is a config topic of the device.
func (a Announcer) Owns(topic string) bool { return matchesNode(a.prefix, a.device.ID, topic) }

// BirthTopic is Home Assistant's status topic.
func (a Announcer) BirthTopic() string { return a.prefix + "/status" }
