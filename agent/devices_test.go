package agent

import (
	"reflect"
	"testing"
)

func TestCameraNamesAreStable(t *testing.T) {
	c920 := DetectedCamera{Source: VideoV4L2, Device: "/dev/video0", Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2"}
	c270a := DetectedCamera{Source: VideoV4L2, Device: "/dev/video2", Card: "UVC Camera (046d:0825)", Bus: "usb-0000:01:00.0-1.3"}
	c270b := DetectedCamera{Source: VideoV4L2, Device: "/dev/video4", Card: "UVC Camera (046d:0825)", Bus: "usb-0000:01:00.0-1.4"}
	picam := DetectedCamera{Source: VideoLibcamera, Card: "Pi camera"}
	none := func(string) bool { return false }

	names := map[string]string{}
	cameraNames([]DetectedCamera{c920, c270a, c270b, picam}, names, none)
	want := map[string]string{
		c920.identity():  "hd_pro_webcam_c920",
		c270a.identity(): "uvc_camera_046d_0825_1-3",
		c270b.identity(): "uvc_camera_046d_0825_1-4",
		picam.identity(): "picam",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("names %v\nwant  %v", names, want)
	}
	// Replugged into another /dev node (renumbered), unplugged and back:
	// the same names.
	c920.Device = "/dev/video6"
	cameraNames([]DetectedCamera{c920}, names, none)
	cameraNames([]DetectedCamera{c270b, c920, c270a}, names, none)
	if !reflect.DeepEqual(names, want) {
		t.Errorf("after replugs %v", names)
	}
	// The only C920, moved to another port while the agent runs: same name.
	names = map[string]string{}
	cameraNames([]DetectedCamera{c920}, names, none)
	moved := c920
	moved.Bus, moved.Device = "usb-0000:01:00.0-1.4", "/dev/video8"
	cameraNames([]DetectedCamera{moved}, names, none)
	if n := names[moved.identity()]; n != "hd_pro_webcam_c920" {
		t.Errorf("moved to another port: %q", n)
	}
	// A second one of the model, plugged in beside it, gets its port.
	cameraNames([]DetectedCamera{moved, c920}, names, none)
	if n := names[c920.identity()]; n != "hd_pro_webcam_c920_1-2" {
		t.Errorf("second of the model: %q", n)
	}
	// A name the configuration uses is not given to a detected camera.
	names = map[string]string{}
	cameraNames([]DetectedCamera{c920}, names, func(n string) bool { return n == "hd_pro_webcam_c920" })
	if n := names[c920.identity()]; n != "hd_pro_webcam_c920_1-2" || !ValidName(n) {
		t.Errorf("name next to a configured one: %q", n)
	}
	// Odd card names still give valid names.
	odd := DetectedCamera{Source: VideoV4L2, Card: "  ÄÖÜ!!! ", Bus: "platform:vivid-000"}
	long := DetectedCamera{Source: VideoV4L2, Card: "A Very Long Camera Name From Some Vendor Inc.", Bus: "usb-x-1"}
	names = map[string]string{}
	cameraNames([]DetectedCamera{odd, long}, names, none)
	for id, n := range names {
		if !ValidName(n) || len(n) > 24 {
			t.Errorf("%s named %q", id, n)
		}
	}
}

func TestPairMics(t *testing.T) {
	c920 := DetectedCamera{Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2"}
	c270 := DetectedCamera{Card: "C270", Bus: "usb-0000:01:00.0-1.3"}
	vivid := DetectedCamera{Card: "vivid", Bus: "platform:vivid-000"}
	test := DetectedCamera{} // a camera the inventory does not know
	mics := []DetectedMic{
		{Device: "plughw:CARD=Snowball,DEV=0", Bus: "usb-0000:01:00.0-1.4"},
		{Device: "plughw:CARD=C270,DEV=0", Bus: "usb-0000:01:00.0-1.3"},
		{Device: "plughw:CARD=C920,DEV=0", Bus: "usb-0000:01:00.0-1.2"},
		{Device: "plughw:CARD=Loopback,DEV=0"},
	}
	cases := []struct {
		name string
		cams []DetectedCamera
		mics []DetectedMic
		want []string
	}{
		{"each webcam its own mic, whatever the order", []DetectedCamera{c270, c920}, mics,
			[]string{"plughw:CARD=C270,DEV=0", "plughw:CARD=C920,DEV=0"}},
		{"a camera without a mic gets a free one, not another webcam's", []DetectedCamera{vivid, c920, c270}, mics,
			[]string{"plughw:CARD=Snowball,DEV=0", "plughw:CARD=C920,DEV=0", "plughw:CARD=C270,DEV=0"}},
		{"free mics one each, then silence", []DetectedCamera{vivid, test, {Card: "x", Bus: "platform:x"}}, []DetectedMic{mics[0], mics[3]},
			[]string{"plughw:CARD=Snowball,DEV=0", "plughw:CARD=Loopback,DEV=0", ""}},
		{"the mic of a webcam that is not one of the cameras is free", []DetectedCamera{vivid}, mics[1:],
			[]string{"plughw:CARD=C270,DEV=0"}},
		{"a webcam whose mic is gone takes a free mic", []DetectedCamera{c920}, mics[:2],
			[]string{"plughw:CARD=Snowball,DEV=0"}},
		{"no mics", []DetectedCamera{c920, vivid}, nil, []string{"", ""}},
	}
	for _, c := range cases {
		if got := pairMics(c.cams, c.mics, nil); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// A camera keeps the microphone it had: when that one comes back (another
// card number, after a free one was lent meanwhile), it is used again,
// unless a webcam's own microphone claims it.
func TestPairMicsPrefersTheEarlierMic(t *testing.T) {
	vivid := DetectedCamera{Card: "vivid", Bus: "platform:vivid-000"}
	loop := DetectedMic{Device: "plughw:CARD=Loopback,DEV=0"}
	dummy := DetectedMic{Device: "plughw:CARD=Dummy,DEV=0"}
	if got := pairMics([]DetectedCamera{vivid}, []DetectedMic{dummy, loop}, []string{loop.Device}); got[0] != loop.Device {
		t.Errorf("back after a renumbering: got %q, want the loopback again", got[0])
	}
	if got := pairMics([]DetectedCamera{vivid}, []DetectedMic{dummy}, []string{loop.Device}); got[0] != dummy.Device {
		t.Errorf("while it is away: got %q, want the free dummy", got[0])
	}
	c920 := DetectedCamera{Card: "C920", Bus: "usb-1"}
	own := DetectedMic{Device: "plughw:CARD=C920,DEV=0", Bus: "usb-1"}
	if got := pairMics([]DetectedCamera{vivid, c920}, []DetectedMic{own, dummy}, []string{"", own.Device}); got[1] != own.Device || got[0] != dummy.Device {
		t.Errorf("own mic: got %q", got)
	}
	if got := pairMics([]DetectedCamera{vivid, c920}, []DetectedMic{own, dummy}, []string{own.Device, ""}); got[0] != dummy.Device || got[1] != own.Device {
		t.Errorf("a webcam's own mic is not lent away by a preference: got %q", got)
	}
}
