package agent

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Inventory is what is plugged into the machine now: capture-capable video
// nodes and microphones (internal/devices finds them and reports every
// change: a camera or microphone plugged in or pulled out, cards renumbered).
type Inventory struct {
	Cameras []DetectedCamera
	Mics    []DetectedMic
}

// DetectedCamera is one camera found on the machine.
type DetectedCamera struct {
	// Source is VideoV4L2 or VideoLibcamera (the Pi camera module).
	Source VideoSource
	// Device is the node to open now (/dev/videoN); Aliases are the stable
	// links udev made to it (/dev/v4l/by-id/..., /dev/v4l/by-path/...).
	Device  string
	Aliases []string
	// Card is the driver's name for the camera ("HD Pro Webcam C920");
	// Bus is where it is plugged in ("usb-0000:01:00.0-1.2"), the same
	// string for the camera and the microphone of one USB webcam.
	Card, Bus string
}

// DetectedMic is one capture device of a sound card.
type DetectedMic struct {
	// Device is the ALSA name, by card id so that renumbering does not
	// matter: plughw:CARD=C920,DEV=0.
	Device string
	// Card is the card's name; Bus as in DetectedCamera ("" when the card
	// is not on USB).
	Card, Bus string
}

// identity is what makes a detected camera the same camera after a replug
// or a reboot: its name and the port it is plugged into, not the /dev node
// number the kernel happened to give it.
func (d DetectedCamera) identity() string { return string(d.Source) + "|" + d.Card + "|" + d.Bus }

func (d DetectedCamera) String() string {
	if d.Source == VideoLibcamera {
		return "Pi camera (libcamera)"
	}
	return fmt.Sprintf("%s at %s (%s)", d.Card, d.Bus, d.Device)
}

// matches reports whether the detected camera is the node a configured
// camera names (its /dev path or one of udev's stable links).
func (d DetectedCamera) matches(device string) bool {
	if d.Device == device {
		return true
	}
	for _, a := range d.Aliases {
		if a == device {
			return true
		}
	}
	return false
}

var nameJunk = regexp.MustCompile(`[^a-z0-9]+`)

// baseName turns a camera's card name into a camera name for topics and
// Home Assistant ids: "HD Pro Webcam C920" becomes hd_pro_webcam_c920.
func baseName(d DetectedCamera) string {
	if d.Source == VideoLibcamera {
		return "picam"
	}
	s := strings.Trim(nameJunk.ReplaceAllString(strings.ToLower(d.Card), "_"), "_")
	if len(s) > 24 {
		s = strings.TrimRight(s[:24], "_")
	}
	if s == "" {
		s = "camera"
	}
	return s
}

// portSuffix names the port a camera is plugged into, for telling two
// cameras of the same model apart: usb-0000:01:00.0-1.2 gives 1-2,
// platform:vivid-001 gives vivid-001.
func portSuffix(bus string) string {
	if i := strings.LastIndexAny(bus, "-:"); strings.HasPrefix(bus, "usb-") && i > 0 {
		bus = bus[i+1:]
	} else if _, after, ok := strings.Cut(bus, ":"); ok {
		bus = after
	}
	return strings.Trim(nameJunk.ReplaceAllString(strings.ToLower(bus), "-"), "-")
}

// cameraNames gives every detected camera its stable name. names holds the
// names given so far (identity → name) and is extended; a name once given
// stays with its camera for the life of the agent, plugged in or not. A
// camera is named after its model; when two of one model are plugged in,
// the one found second (or both, when found together) get the port as a
// suffix, so two identical C270s become c270_1-2 and c270_1-3. A camera
// plugged into another port, while no other of its model is there, keeps
// its name. taken are names that must not be reused (configured cameras).
func cameraNames(found []DetectedCamera, names map[string]string, taken func(string) bool) {
	byBase := map[string]int{}
	present := map[string]bool{}
	for _, d := range found {
		byBase[baseName(d)]++
		present[d.identity()] = true
	}
	// The only camera of its model, back on another port: it takes over
	// the name it had there.
	for _, d := range found {
		id, base := d.identity(), baseName(d)
		if _, ok := names[id]; ok || byBase[base] != 1 {
			continue
		}
		for old, n := range names {
			if n == base && !present[old] && strings.HasPrefix(old, string(d.Source)+"|"+d.Card+"|") {
				delete(names, old)
				names[id] = n
				break
			}
		}
	}
	inUse := map[string]bool{}
	for _, n := range names {
		inUse[n] = true
	}
	sorted := append([]DetectedCamera(nil), found...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].identity() < sorted[j].identity() })
	for _, d := range sorted {
		id := d.identity()
		if _, ok := names[id]; ok {
			continue
		}
		base := baseName(d)
		name := base
		if byBase[base] > 1 || inUse[name] || taken(name) {
			name = base + "_" + portSuffix(d.Bus)
		}
		for i := 2; inUse[name] || taken(name) || !ValidName(name); i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		names[id] = name
		inUse[name] = true
	}
}

// pairMics gives each camera (in the order given) its microphone: the one
// on the same USB device (a webcam's own mic) first; then the microphone
// the camera had before (prefer[i], when it is plugged in again: a camera
// keeps its microphone across replugs and renumbered cards); then one that
// belongs to no camera (a USB or HAT mic), one each, since an ALSA capture
// device can be opened only once. "" means none: the camera sends a silent
// track.
func pairMics(cams []DetectedCamera, mics []DetectedMic, prefer []string) []string {
	out := make([]string, len(cams))
	owned := map[string]bool{} // buses with a camera
	for _, c := range cams {
		if c.Bus != "" {
			owned[c.Bus] = true
		}
	}
	used := map[string]bool{}
	for i, c := range cams {
		for _, m := range mics {
			if c.Bus != "" && m.Bus == c.Bus && !used[m.Device] {
				out[i], used[m.Device] = m.Device, true
				break
			}
		}
	}
	for i := range cams {
		if out[i] != "" || i >= len(prefer) || prefer[i] == "" {
			continue
		}
		for _, m := range mics {
			if m.Device == prefer[i] && !used[m.Device] {
				out[i], used[m.Device] = m.Device, true
				break
			}
		}
	}
	for i := range cams {
		if out[i] != "" {
			continue
		}
		for _, m := range mics {
			if !used[m.Device] && (m.Bus == "" || !owned[m.Bus]) {
				out[i], used[m.Device] = m.Device, true
				break
			}
		}
	}
	return out
}
