package agent

import "sort"

// discoveryState is what the agent knows of its Home Assistant discovery
// configs: the ones seen retained on the broker and the ones the current
// model publishes.
type discoveryState struct {
	seen, current map[string]bool
}

// model is what discovery describes.
func (a *Agent) model() Model {
	m := Model{Fleet: a.s.Fleet != nil}
	m.Cameras = append(m.Cameras, a.cams.order...)
	a.dests.each(func(d *destination) {
		m.Destinations = append(m.Destinations, ModelDestination{Name: d.cfg.Name, Camera: d.cfg.Camera})
	})
	return m
}

// announce publishes the discovery configs of the current model and, a
// moment later (once the broker has delivered what it retains), clears the
// configs of entities that no longer exist.
func (a *Agent) announce() {
	d := a.s.Discovery
	if d == nil {
		return
	}
	ds := &a.parts.discovery
	clear(ds.current)
	for _, m := range d.Configs(a.model()) {
		ds.current[m.Topic] = true
		a.out.put(m.Topic, m.Payload, true)
	}
	a.after("discovery cleanup", a.s.CleanupDelay, a.clearStale)
}

func (a *Agent) clearStale() {
	ds := &a.parts.discovery
	var stale []string
	for t := range ds.seen {
		if !ds.current[t] {
			stale = append(stale, t)
		}
	}
	sort.Strings(stale)
	for _, t := range stale {
		a.log.Info("removing a stale Home Assistant entity", "topic", t)
		a.out.put(t, nil, true)
		delete(ds.seen, t)
	}
}

// discoveryMessage notes Home Assistant's birth message (announcing again
// on "online") and this device's retained configs; it reports whether m
// was one of them.
func (a *Agent) discoveryMessage(m Message) bool {
	d := a.s.Discovery
	if d == nil {
		return false
	}
	switch {
	case m.Topic == d.BirthTopic():
		if string(m.Payload) == "online" {
			a.log.Info("Home Assistant is online; announcing again")
			a.announce()
			a.shown.resendAll()
		}
		return true
	case d.Owns(m.Topic):
		if len(m.Payload) == 0 {
			delete(a.parts.discovery.seen, m.Topic)
		} else {
			a.parts.discovery.seen[m.Topic] = true
		}
		return true
	}
	return false
}
