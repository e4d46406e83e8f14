package homeassistant

// Device is the Home Assistant device every entity belongs to.
type Device struct {
	ID           string // device id, e.g. "pi1" (a-z, 0-9, _ and -)
	Name         string // e.g. "makercast pi1"
	Model        string // board model read from the Pi; may be empty
	Manufacturer string // may be empty, then "makercast"
	SWVersion    string // makercast's version; may be empty
}

// Camera is one camera of the device.
type Camera struct{ Name string }

// Destination is one RTMP destination and the camera that feeds it.
type Destination struct{ Name, Camera string }

// Model is everything discovery is built from.
type Model struct {
	Device       Device
	Base         string // topic base "<prefix>/<device id>", e.g. "makercast/pi1"
	Cameras      []Camera
	Destinations []Destination
	// Fleet: the device runs under a fleet manager (balena): an update
	// entity and restart, reboot and identify buttons.
	Fleet bool
}

// Message is one discovery message. The caller publishes it retained.
type Message struct {
	Topic   string
	Payload []byte
}
