package agent

import (
	"slices"
	"strings"
)

// consumerID names one consumer of a camera's encoding: one of its
// destinations or its recording (later: pre-roll, a program mix).
type consumerID string

func destinationConsumer(name string) consumerID { return consumerID("destination " + name) }

// recordingConsumer is a camera's recording.
const recordingConsumer consumerID = "recording"

// destinationName is the destination a consumer id names ("" for other
// consumers).
func (id consumerID) destinationName() string {
	n, _ := strings.CutPrefix(string(id), "destination ")
	if n == string(id) {
		return ""
	}
	return n
}

// consumer is one output a camera should feed now. gen changes each time it
// is switched on, so that the events of an older sender (an old URL or key)
// can never be taken for the new one's.
type consumer struct {
	id  consumerID
	out Output
	gen uint64
}

// demand is why a camera is open: the consumers it should feed and whether
// snapshots keep it warm (later: motion analysis, pre-roll). The agent
// derives it after every step (Agent.demandOf); the runner keeps the camera
// open exactly while it says so.
type demand struct {
	consumers map[consumerID]consumer
	warm      bool
}

// open: the camera has a reason to be open.
func (d demand) open() bool { return len(d.consumers) > 0 || d.warm }

// reasons name why, for the log: "destination main", "recording",
// "snapshots kept warm".
func (d demand) reasons() []string {
	var r []string
	for id := range d.consumers {
		r = append(r, string(id))
	}
	slices.Sort(r)
	if d.warm {
		r = append(r, "snapshots kept warm")
	}
	return r
}

// same reports whether two demands ask for the same consumers, each at the
// same generation.
func (d demand) same(o demand) bool {
	if d.warm != o.warm || len(d.consumers) != len(o.consumers) {
		return false
	}
	for id, c := range d.consumers {
		if oc, ok := o.consumers[id]; !ok || oc.gen != c.gen {
			return false
		}
	}
	return true
}

// camerasConsumers are the consumers a camera has besides its destinations.
var cameraConsumers = []consumerID{recordingConsumer}

// consumerSlots is how many outputs one camera can feed at once, which is
// how many slots its capture has: every destination it may have
// (MAKERCAST_MAX_OUTPUTS) and each consumer of its own (the recording).
func consumerSlots(maxDestinations int) int { return maxDestinations + len(cameraConsumers) }
