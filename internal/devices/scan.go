// Package devices finds the cameras and microphones plugged into the machine
// (MAKERCAST_CAMERAS=auto, MAKERCAST_AUDIO=auto) and watches for changes:
// the kernel's uevents say at once when a camera or a sound card comes or
// goes, and a slow rescan catches what raises no uevent (a v4l2loopback
// node turning into a camera when its writer starts).
//
// A camera is a video node that can capture (V4L2_CAP_VIDEO_CAPTURE), on
// any bus, except the Pi's codec and ISP nodes; the Pi camera module
// (unicam, rp1-cfe) is reported once, as a libcamera camera. A microphone is
// a capture PCM of a sound card, named by the card's id (plughw:CARD=C920,
// DEV=0) so that renumbered cards do not matter. Cameras and microphones
// carry the bus they are plugged into, so that a webcam's own microphone
// can be paired with it (package agent does the pairing and the naming).
package devices

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/makercast/makercast/agent"
)

// Node is what a video node says of itself (VIDIOC_QUERYCAP).
type Node struct {
	Card, Bus string
	// Capture is true when the node can deliver video (not an output-only
	// loopback, a codec or a metadata node).
	Capture bool
}

// Scanner reads the machine's devices. Root is the filesystem root
// (os.DirFS("/") in the agent; a testdata tree in tests): it reads
// sys/class/video4linux, dev/v4l, proc/asound/cards and dev/snd. Query asks a
// video node (/dev/videoN) for its capabilities: internal/v4l2 in the
// agent. A Scanner is used by one goroutine at a time.
type Scanner struct {
	Root  fs.FS
	Query func(dev string) (Node, error)

	// cache holds the answers of capture nodes and of USB nodes, by node
	// name, with the node's device number: a camera is not opened again on
	// every scan (opening a USB camera wakes it up, its metadata node too).
	// Answers of other nodes are not kept: a loopback node becomes a camera
	// without any uevent.
	cache map[string]cached
}

type cached struct {
	devnum string
	node   Node
}

// Pi nodes that are not cameras: the codecs and the ISP.
var piInternal = []string{"bcm2835-codec", "bcm2835-isp", "rpivid", "pispbe", "rpi-hevc", "rpi-hevc-dec"}

// The Pi camera module's receivers: libcamera drives them.
var piCamera = []string{"unicam", "rp1-cfe"}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Forget drops what is known of a node (a uevent says it changed); "*"
// drops everything (uevents were lost).
func (s *Scanner) Forget(node string) {
	if node == "*" {
		clear(s.cache)
		return
	}
	delete(s.cache, node)
}

// Scan lists the cameras and microphones present now. A node that cannot
// be queried is left out (it may be going away); when no node could be
// queried at all, the error says why, beside what was found.
func (s *Scanner) Scan() (agent.Inventory, error) {
	var inv agent.Inventory
	cams, err := s.cameras()
	inv.Cameras = cams
	inv.Mics = s.mics()
	return inv, err
}

var videoNode = regexp.MustCompile(`^video(\d+)$`)

func (s *Scanner) cameras() ([]agent.DetectedCamera, error) {
	if s.cache == nil {
		s.cache = map[string]cached{}
	}
	entries, err := fs.ReadDir(s.Root, "sys/class/video4linux")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // no video drivers at all
		}
		return nil, fmt.Errorf("devices: %w", err)
	}
	aliases := s.aliases()
	type found struct {
		cam   agent.DetectedCamera
		index int
		num   int
	}
	var list []found
	var queryErrs []error
	libcamera := false
	seen := map[string]bool{}
	for _, e := range entries {
		m := videoNode.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		node := e.Name()
		seen[node] = true
		dir := "sys/class/video4linux/" + node
		name := readTrim(s.Root, dir+"/name")
		switch {
		case hasAnyPrefix(name, piCamera):
			libcamera = true
			continue
		case hasAnyPrefix(name, piInternal):
			continue
		}
		devnum := readTrim(s.Root, dir+"/dev")
		c, ok := s.cache[node]
		if !ok || c.devnum != devnum {
			n, err := s.Query("/dev/" + node)
			if err != nil {
				delete(s.cache, node)
				queryErrs = append(queryErrs, err)
				continue
			}
			c = cached{devnum: devnum, node: n}
			if n.Capture || strings.HasPrefix(n.Bus, "usb-") {
				s.cache[node] = c
			} else {
				delete(s.cache, node)
			}
		}
		if !c.node.Capture {
			continue
		}
		card := c.node.Card
		if card == "" {
			card = name
		}
		index, _ := strconv.Atoi(readTrim(s.Root, dir+"/index"))
		num, _ := strconv.Atoi(m[1])
		list = append(list, found{index: index, num: num, cam: agent.DetectedCamera{
			Source: agent.VideoV4L2, Device: "/dev/" + node, Aliases: aliases[node], Card: card, Bus: c.node.Bus,
		}})
	}
	for node := range s.cache {
		if !seen[node] {
			delete(s.cache, node)
		}
	}
	// One camera per device: a webcam or capture card with several capture
	// nodes is opened through its first.
	sort.Slice(list, func(i, j int) bool {
		if list[i].index != list[j].index {
			return list[i].index < list[j].index
		}
		return list[i].num < list[j].num
	})
	var cams []agent.DetectedCamera
	byBus := map[string]bool{}
	for _, f := range list {
		key := f.cam.Bus
		if key == "" {
			key = f.cam.Device
		}
		if byBus[key] {
			continue
		}
		byBus[key] = true
		cams = append(cams, f.cam)
	}
	sort.Slice(cams, func(i, j int) bool {
		if cams[i].Bus != cams[j].Bus {
			return cams[i].Bus < cams[j].Bus
		}
		return cams[i].Device < cams[j].Device
	})
	if libcamera {
		cams = append([]agent.DetectedCamera{{Source: agent.VideoLibcamera, Card: "Pi camera"}}, cams...)
	}
	if len(list) == 0 && len(queryErrs) > 0 {
		// No USB camera found, and nodes that could not be asked: say why
		// (the agent's user not in the video group gives EACCES here).
		return cams, fmt.Errorf("devices: no video node could be asked what it is: %w", errors.Join(queryErrs...))
	}
	return cams, nil
}

// aliases maps node names to the stable links udev made to them.
func (s *Scanner) aliases() map[string][]string {
	out := map[string][]string{}
	for _, dir := range []string{"dev/v4l/by-id", "dev/v4l/by-path"} {
		entries, err := fs.ReadDir(s.Root, dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			target, err := fs.ReadLink(s.Root, dir+"/"+e.Name())
			if err != nil {
				continue
			}
			node := path.Base(target)
			out[node] = append(out[node], "/"+dir+"/"+e.Name())
		}
	}
	return out
}

var (
	// " 1 [C920           ]: USB-Audio - HD Pro Webcam C920"
	cardLine = regexp.MustCompile(`^\s*(\d+)\s+\[([^\]]+)\]:\s*(.*)$`)
	// "HD Pro Webcam C920 at usb-0000:01:00.0-1.2, high speed"
	usbAt      = regexp.MustCompile(` at (usb-[^ ,]+)`)
	capturePCM = regexp.MustCompile(`^pcmC(\d+)D(\d+)c$`)
	cardID     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
)

type card struct {
	id, name, bus string
}

// mics lists every capture PCM of every sound card, by card id.
func (s *Scanner) mics() []agent.DetectedMic {
	cards := map[int]card{}
	b, err := fs.ReadFile(s.Root, "proc/asound/cards")
	if err != nil {
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	last := -1
	for sc.Scan() {
		line := sc.Text()
		if m := cardLine.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			name := m[3]
			if _, after, ok := strings.Cut(name, " - "); ok {
				name = after
			}
			cards[n] = card{id: strings.TrimSpace(m[2]), name: strings.TrimSpace(name)}
			last = n
			continue
		}
		if last >= 0 { // the long name, under its card
			c := cards[last]
			if m := usbAt.FindStringSubmatch(line); m != nil {
				c.bus = m[1]
			}
			cards[last] = c
			last = -1
		}
	}
	entries, err := fs.ReadDir(s.Root, "dev/snd")
	if err != nil {
		return nil
	}
	type pcm struct{ card, dev int }
	var pcms []pcm
	for _, e := range entries {
		if m := capturePCM.FindStringSubmatch(e.Name()); m != nil {
			c, _ := strconv.Atoi(m[1])
			d, _ := strconv.Atoi(m[2])
			pcms = append(pcms, pcm{c, d})
		}
	}
	sort.Slice(pcms, func(i, j int) bool {
		if pcms[i].card != pcms[j].card {
			return pcms[i].card < pcms[j].card
		}
		return pcms[i].dev < pcms[j].dev
	})
	var out []agent.DetectedMic
	for _, p := range pcms {
		c, ok := cards[p.card]
		if !ok || !cardID.MatchString(c.id) {
			continue // gone meanwhile, or an id ALSA would not accept as CARD=
		}
		out = append(out, agent.DetectedMic{
			Device: fmt.Sprintf("plughw:CARD=%s,DEV=%d", c.id, p.dev), Card: c.name, Bus: c.bus,
		})
	}
	return out
}

func readTrim(root fs.FS, name string) string {
	b, err := fs.ReadFile(root, name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
