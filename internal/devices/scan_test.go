package devices

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/makercast/makercast/agent"
)

// A Pi 4 with the camera module, a C920 (capture node, metadata node and
// its microphone), a C270 whose node answers as capture, an output-only
// loopback ("OBS Virtual Camera"), the Pi's codec nodes, and a USB
// microphone on its own. The layout follows sysfs and procfs on Raspberry
// Pi OS (bookworm); QUERYCAP answers are what uvcvideo and v4l2loopback
// give.
func pi4() (fstest.MapFS, map[string]Node) {
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	link := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: fs.ModeSymlink} }
	root := fstest.MapFS{
		"sys/class/video4linux/video0/name":                                 f("unicam-image\n"),
		"sys/class/video4linux/video0/index":                                f("0\n"),
		"sys/class/video4linux/video1/name":                                 f("HD Pro Webcam C920\n"),
		"sys/class/video4linux/video1/index":                                f("0\n"),
		"sys/class/video4linux/video1/dev":                                  f("81:1\n"),
		"sys/class/video4linux/video2/name":                                 f("HD Pro Webcam C920\n"),
		"sys/class/video4linux/video2/index":                                f("1\n"),
		"sys/class/video4linux/video3/name":                                 f("UVC Camera (046d:0825)\n"),
		"sys/class/video4linux/video3/index":                                f("0\n"),
		"sys/class/video4linux/video10/name":                                f("bcm2835-codec-decode\n"),
		"sys/class/video4linux/video10/index":                               f("0\n"),
		"sys/class/video4linux/video11/name":                                f("bcm2835-codec-encode\n"),
		"sys/class/video4linux/video11/index":                               f("0\n"),
		"sys/class/video4linux/video20/name":                                f("OBS Virtual Camera\n"),
		"sys/class/video4linux/video20/index":                               f("0\n"),
		"dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_8C5E-video-index0":       link("../../video1"),
		"dev/v4l/by-path/platform-fd500000.pcie-usb-0:1.2:1.0-video-index0": link("../../video1"),
		"proc/asound/cards": f(` 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones
                      bcm2835 Headphones
 1 [C920           ]: USB-Audio - HD Pro Webcam C920
                      HD Pro Webcam C920 at usb-0000:01:00.0-1.2, high speed
 2 [U0x46d0x825    ]: USB-Audio - USB Device 0x46d:0x825
                      USB Device 0x46d:0x825 at usb-0000:01:00.0-1.3, high speed
 3 [Mic            ]: USB-Audio - Blue Snowball
                      BLUE MICROPHONE Blue Snowball at usb-0000:01:00.0-1.4, full speed
`),
		"dev/snd/pcmC0D0p":  f(""),
		"dev/snd/pcmC1D0c":  f(""),
		"dev/snd/pcmC2D0c":  f(""),
		"dev/snd/pcmC3D0c":  f(""),
		"dev/snd/controlC1": f(""),
	}
	nodes := map[string]Node{
		"/dev/video1":  {Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2", Capture: true},
		"/dev/video2":  {Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2"}, // metadata
		"/dev/video3":  {Card: "UVC Camera (046d:0825)", Bus: "usb-0000:01:00.0-1.3", Capture: true},
		"/dev/video20": {Card: "OBS Virtual Camera", Bus: "platform:v4l2loopback-000"},
	}
	return root, nodes
}

func TestScanPi4(t *testing.T) {
	root, nodes := pi4()
	queried := map[string]int{}
	s := &Scanner{Root: root, Query: func(dev string) (Node, error) {
		queried[dev]++
		n, ok := nodes[dev]
		if !ok {
			return Node{}, errors.New("no such device")
		}
		return n, nil
	}}
	inv, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	want := agent.Inventory{
		Cameras: []agent.DetectedCamera{
			{Source: agent.VideoLibcamera, Card: "Pi camera"},
			{Source: agent.VideoV4L2, Device: "/dev/video1", Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2",
				Aliases: []string{"/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_8C5E-video-index0", "/dev/v4l/by-path/platform-fd500000.pcie-usb-0:1.2:1.0-video-index0"}},
			{Source: agent.VideoV4L2, Device: "/dev/video3", Card: "UVC Camera (046d:0825)", Bus: "usb-0000:01:00.0-1.3"},
		},
		Mics: []agent.DetectedMic{
			{Device: "plughw:CARD=C920,DEV=0", Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2"},
			{Device: "plughw:CARD=U0x46d0x825,DEV=0", Card: "USB Device 0x46d:0x825", Bus: "usb-0000:01:00.0-1.3"},
			{Device: "plughw:CARD=Mic,DEV=0", Card: "Blue Snowball", Bus: "usb-0000:01:00.0-1.4"},
		},
	}
	if !reflect.DeepEqual(inv, want) {
		t.Errorf("inventory\n got %+v\nwant %+v", inv, want)
	}
	for _, dev := range []string{"/dev/video0", "/dev/video10", "/dev/video11"} {
		if queried[dev] != 0 {
			t.Errorf("%s (a Pi camera or codec node) was opened", dev)
		}
	}
	// A second scan opens only the nodes that were not cameras (a loopback
	// may have become one); the cameras are not woken up again.
	if _, err := s.Scan(); err != nil {
		t.Fatal(err)
	}
	// The C920's metadata node (USB, not a camera) is not woken up again
	// either.
	if queried["/dev/video1"] != 1 || queried["/dev/video2"] != 1 || queried["/dev/video3"] != 1 || queried["/dev/video20"] != 2 {
		t.Errorf("queries after two scans: %v", queried)
	}
	// The loopback gets a writer: it is a camera now.
	nodes["/dev/video20"] = Node{Card: "OBS Virtual Camera", Bus: "platform:v4l2loopback-000", Capture: true}
	inv, _ = s.Scan()
	if len(inv.Cameras) != 4 || inv.Cameras[1].Device != "/dev/video20" { // platform: sorts before usb-
		t.Errorf("loopback with a writer not found: %+v", inv.Cameras)
	}
	// Forget (a uevent for the node) makes the next scan ask again.
	s.Forget("video1")
	_, _ = s.Scan()
	if queried["/dev/video1"] != 2 {
		t.Errorf("video1 not queried again after Forget: %v", queried)
	}
}

// Nodes that cannot be asked (the agent's user not in the video group)
// and no camera: the scan says why instead of finding nothing silently.
func TestScanSaysWhyNothingWasFound(t *testing.T) {
	root, _ := pi4()
	s := &Scanner{Root: root, Query: func(dev string) (Node, error) {
		return Node{}, errors.New("v4l2: " + dev + ": open: permission denied")
	}}
	inv, err := s.Scan()
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("scan with every node refused: %v", err)
	}
	if len(inv.Cameras) != 1 || inv.Cameras[0].Source != "libcamera" {
		t.Errorf("cameras %+v, want only the Pi camera (found by name)", inv.Cameras)
	}
}

func TestScanNothing(t *testing.T) {
	s := &Scanner{Root: fstest.MapFS{}, Query: func(string) (Node, error) { return Node{}, errors.New("none") }}
	inv, err := s.Scan()
	if err != nil || len(inv.Cameras) != 0 || len(inv.Mics) != 0 {
		t.Errorf("empty machine: %+v, %v", inv, err)
	}
}

// The lab's devices (tests/hwlab): vivid and two v4l2loopback cameras are
// platform devices, snd-aloop and snd-dummy cards without a bus.
func TestScanLabDevices(t *testing.T) {
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	root := fstest.MapFS{
		"sys/class/video4linux/video0/name":  f("vivid-000-vid-cap\n"),
		"sys/class/video4linux/video10/name": f("Fake C270\n"),
		"sys/class/video4linux/video11/name": f("Fake C920\n"),
		"proc/asound/cards": f(` 0 [Loopback       ]: Loopback - Loopback
                      Loopback 1
 1 [Dummy          ]: Dummy - Dummy
                      Dummy 1
`),
		"dev/snd/pcmC0D0c": f(""), "dev/snd/pcmC0D1c": f(""), "dev/snd/pcmC1D0c": f(""),
	}
	nodes := map[string]Node{
		"/dev/video0":  {Card: "vivid", Bus: "platform:vivid-000", Capture: true},
		"/dev/video10": {Card: "Fake C270", Bus: "platform:v4l2loopback-000", Capture: true},
		"/dev/video11": {Card: "Fake C920", Bus: "platform:v4l2loopback-001", Capture: true},
	}
	s := &Scanner{Root: root, Query: func(dev string) (Node, error) { return nodes[dev], nil }}
	inv, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range inv.Cameras {
		got = append(got, c.Card+"@"+c.Device)
	}
	for _, m := range inv.Mics {
		got = append(got, m.Device)
	}
	// By bus: the same order whatever numbers the kernel gave the nodes.
	want := []string{"Fake C270@/dev/video10", "Fake C920@/dev/video11", "vivid@/dev/video0",
		"plughw:CARD=Loopback,DEV=0", "plughw:CARD=Loopback,DEV=1", "plughw:CARD=Dummy,DEV=0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
