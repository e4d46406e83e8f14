package graph

import (
	"fmt"
	. "github.com/makercast/makercast/agent"
	"strings"
	"testing"

	"github.com/makercast/makercast/internal/v4l2"
)

func rates(fps ...float64) []v4l2.Rate {
	var out []v4l2.Rate
	for _, f := range fps {
		if f == float64(int(f)) {
			out = append(out, v4l2.Rate{Num: int(f), Den: 1})
		} else {
			out = append(out, v4l2.Rate{Num: int(f * 2), Den: 2}) // 12.5, 7.5
		}
	}
	return out
}

func mode(fourcc string, w, h int, fps ...float64) v4l2.Mode {
	f, ok := v4l2.Classify(fourcc)
	if !ok {
		panic(fourcc)
	}
	return v4l2.Mode{Format: f, FourCC: fourcc, Width: w, Height: h, Rates: rates(fps...)}
}

// Cameras as their drivers list them (shortened).
var (
	// A camera with one MJPEG mode only (the lab's C270 stand-in).
	mjpegOnly = []v4l2.Mode{mode("MJPG", 640, 480, 15)}
	// Logitech C270: raw up to 640x480@30, 720p raw only at 7.5 fps, MJPEG
	// 720p at 30 fps.
	c270 = []v4l2.Mode{
		mode("YUYV", 640, 480, 30, 25, 20, 15, 10, 7.5, 5),
		mode("YUYV", 1280, 720, 7.5, 5),
		mode("MJPG", 640, 480, 30, 25, 20, 15, 10, 7.5, 5),
		mode("MJPG", 1280, 720, 30, 25, 20, 15, 10, 7.5, 5),
	}
	// Logitech C920 with its H.264 endpoint (uvcvideo before 4.x, or UVC 1.5).
	c920 = []v4l2.Mode{
		mode("YUYV", 640, 480, 30, 15),
		mode("YUYV", 1280, 720, 10, 5),
		mode("YUYV", 1920, 1080, 5),
		mode("MJPG", 640, 480, 30, 15),
		mode("MJPG", 1280, 720, 30, 15),
		mode("MJPG", 1920, 1080, 30, 15),
		mode("H264", 640, 480, 30, 15),
		mode("H264", 1280, 720, 30, 15),
		mode("H264", 1920, 1080, 30, 15),
	}
	// vivid: raw only, one frame-rate ceiling per size (what the lab measured).
	vivid = []v4l2.Mode{
		mode("YUYV", 320, 180, 50, 40, 30, 25, 15, 12.5, 10, 5),
		mode("YUYV", 640, 360, 40, 30, 25, 15, 12.5, 10, 5),
		mode("YUYV", 640, 480, 25, 15, 12.5, 10, 5),
		mode("YUYV", 1280, 720, 12.5, 10, 5),
		mode("YUYV", 1920, 1080, 5, 4, 2),
		mode("NV12", 640, 360, 40, 30, 25, 15, 12.5, 10, 5),
		mode("NV12", 1280, 720, 12.5, 10, 5),
	}
	// A USB 3 camera whose raw 720p30 USB 2 cannot carry.
	usbHighRes = []v4l2.Mode{
		mode("YUYV", 1280, 720, 30),
		mode("MJPG", 1280, 720, 30),
	}
)

func video(input InputFormat, w, h, fps int) VideoSpec {
	return VideoSpec{Source: VideoV4L2, Device: "/dev/video0", Input: input, Width: w, Height: h, FPS: fps,
		BitrateKbps: 2500, KeyframeSec: 2, Encoder: EncoderX264, Preset: "veryfast"}
}

func TestChooseMode(t *testing.T) {
	prefer := func(v VideoSpec) VideoSpec { v.PreferH264 = true; return v }
	cases := []struct {
		name    string
		offered []v4l2.Mode
		v       VideoSpec
		usb     bool
		want    string // Choice.String plus fourcc
	}{
		{"mjpeg-only camera, 720p30 asked: its one mode, scaled and rate-adapted",
			mjpegOnly, video(InputAuto, 1280, 720, 30), true, "mjpeg 640x480@15 MJPG"},
		{"C270 720p30: MJPEG (raw 720p is 7.5 fps)", c270, video(InputAuto, 1280, 720, 30), true, "mjpeg 1280x720@30 MJPG"},
		{"C270 480p30: raw, 640x480@30 is just within USB 2", c270, video(InputAuto, 640, 480, 30), true, "raw 640x480@30 YUYV"},
		{"C270 360p30: raw 640x480 scaled down beats MJPEG", c270, video(InputAuto, 640, 360, 30), true, "raw 640x480@30 YUYV"},
		{"C270 480p15: the lowest rate that meets 15", c270, video(InputAuto, 640, 480, 15), true, "raw 640x480@15 YUYV"},
		{"C270 raw required at 720p30: fps first, 640x480@30 upscaled", c270, video(InputRaw, 1280, 720, 30), true, "raw 640x480@30 YUYV"},
		{"C920 with PreferH264: its own H.264", c920, prefer(video(InputAuto, 1280, 720, 30)), true, "h264 1280x720@30 H264"},
		{"C920 without PreferH264: MJPEG", c920, video(InputAuto, 1280, 720, 30), true, "mjpeg 1280x720@30 MJPG"},
		{"C920 H.264 required at 1080p", c920, video(InputH264, 1920, 1080, 30), true, "h264 1920x1080@30 H264"},
		{"C920 H.264 at an odd size: the closest, never scaled", c920, video(InputH264, 1024, 576, 30), true, "h264 1280x720@30 H264"},
		{"C920 H.264 at 15 fps: the camera's 15", c920, video(InputH264, 640, 480, 15), true, "h264 640x480@15 H264"},
		{"vivid 360p30: raw NV12 (cheaper than YUYV), 30 of 40", vivid, video(InputAuto, 640, 360, 30), false, "raw 640x360@30 NV12"},
		{"vivid 720p30: fps first, 640x360@30 upscaled", vivid, video(InputAuto, 1280, 720, 30), false, "raw 640x360@30 NV12"},
		{"vivid 720p10: 720p at its own 10", vivid, video(InputAuto, 1280, 720, 10), false, "raw 1280x720@10 NV12"},
		{"vivid 1080p5", vivid, video(InputAuto, 1920, 1080, 5), false, "raw 1920x1080@5 YUYV"},
		{"a 12.5 fps camera close to 15", []v4l2.Mode{mode("YUYV", 1280, 720, 12.5, 5)}, video(InputAuto, 1280, 720, 15), false, "raw 1280x720@12.5 YUYV"},
		{"12.5 fps (close) beats 7.5 fps at the same size", []v4l2.Mode{mode("YUYV", 1280, 720, 7.5), mode("NV12", 1280, 720, 12.5)}, video(InputAuto, 1280, 720, 15), false, "raw 1280x720@12.5 NV12"},
		{"all too slow: the fastest first", []v4l2.Mode{mode("YUYV", 1280, 720, 5), mode("YUYV", 640, 480, 10)}, video(InputAuto, 1280, 720, 30), false, "raw 640x480@10 YUYV"},
		{"USB raw 720p30 is too much: MJPEG", usbHighRes, video(InputAuto, 1280, 720, 30), true, "mjpeg 1280x720@30 MJPG"},
		{"the same camera off USB: raw", usbHighRes, video(InputAuto, 1280, 720, 30), false, "raw 1280x720@30 YUYV"},
		{"USB raw required: raw even so", usbHighRes, video(InputRaw, 1280, 720, 30), true, "raw 1280x720@30 YUYV"},
		{"raw-only webcam with auto: raw, not an assumed MJPEG", []v4l2.Mode{mode("YUYV", 640, 480, 30)}, video(InputAuto, 1280, 720, 30), true, "raw 640x480@30 YUYV"},
		{"H.264-only camera with auto: H.264", []v4l2.Mode{mode("H264", 1920, 1080, 30)}, video(InputAuto, 1280, 720, 30), true, "h264 1920x1080@30 H264"},
		{"PreferH264 on a camera without: falls back", c270, prefer(video(InputAuto, 1280, 720, 30)), true, "mjpeg 1280x720@30 MJPG"},
		{"unlisted rates: taken over a known slow one", []v4l2.Mode{{Format: v4l2.Raw, FourCC: "YUYV", Width: 640, Height: 480}, mode("YUYV", 1280, 720, 5)}, video(InputAuto, 640, 480, 30), false, "raw 640x480 YUYV"},
		{"4:3 camera, 16:9 output: the covering 4:3 size", []v4l2.Mode{mode("MJPG", 640, 480, 30), mode("MJPG", 1280, 960, 30), mode("MJPG", 1600, 1200, 30)}, video(InputAuto, 1280, 720, 30), true, "mjpeg 1280x960@30 MJPG"},
		{"v4l2loopback's JPEG fourcc", []v4l2.Mode{mode("JPEG", 640, 480, 30)}, video(InputMJPEG, 640, 480, 15), false, "mjpeg 640x480@30 JPEG"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ChooseMode(c.offered, c.v, c.usb)
			if err != nil {
				t.Fatal(err)
			}
			if s := got.String() + " " + got.FourCC; s != c.want {
				t.Errorf("chose %s, want %s", s, c.want)
			}
		})
	}
}

func TestChooseModeErrorsNameTheOffers(t *testing.T) {
	offers := []v4l2.Mode{mode("MJPG", 640, 480, 15), mode("YUYV", 640, 480, 30, 15), mode("YUYV", 1280, 720, 10)}
	cases := []struct {
		offered []v4l2.Mode
		v       VideoSpec
		want    string
	}{
		{offers, video(InputH264, 1280, 720, 30),
			"graph: /dev/video0 offers no H.264; it offers MJPEG 640x480@15, YUYV 640x480@30, YUYV 1280x720@10"},
		{[]v4l2.Mode{mode("YUYV", 1280, 720, 12.5)}, video(InputMJPEG, 1280, 720, 30),
			"graph: /dev/video0 offers no MJPEG; it offers YUYV 1280x720@12.5"},
		{[]v4l2.Mode{mode("MJPG", 1280, 720, 30)}, video(InputRaw, 1280, 720, 30),
			"graph: /dev/video0 offers no raw video; it offers MJPEG 1280x720@30"},
		{nil, video(InputAuto, 1280, 720, 30),
			"graph: /dev/video0 offers no usable video mode; it offers no modes at all"},
	}
	for _, c := range cases {
		if _, err := ChooseMode(c.offered, c.v, true); err == nil || err.Error() != c.want {
			t.Errorf("got %v\nwant %s", err, c.want)
		}
	}
	var many []v4l2.Mode
	for i := 0; i < 20; i++ {
		many = append(many, mode("YUYV", 320+16*i, 240, 30))
	}
	_, err := ChooseMode(many, video(InputH264, 1280, 720, 30), true)
	if err == nil || !strings.HasSuffix(err.Error(), "YUYV 496x240@30, and 8 more") {
		t.Errorf("long offer list: %v", err)
	}
}

func v4l2Spec(v VideoSpec) CaptureSpec {
	s := spec()
	s.Video = v
	return s
}

func TestCaptureGraphAdaptsTheCameraMode(t *testing.T) {
	cases := []struct {
		name     string
		offered  []v4l2.Mode
		v        VideoSpec
		mode     string
		srccaps  string
		elements []string // in the video chain, in order, after the source caps
		enccaps  string
	}{
		{"C270-like MJPEG 640x480@15 to 1280x720@30", mjpegOnly, video(InputAuto, 1280, 720, 30),
			"mjpeg 640x480@15 → 1280x720@30", "image/jpeg,width=640,height=480,framerate=15/1",
			[]string{"jpegdec", "queue", "videorate", "videoconvert", "videoscale", "capsfilter"},
			"video/x-raw,format=I420,width=1280,height=720,framerate=30/1,pixel-aspect-ratio=1/1"},
		{"exact raw mode: nothing to adapt", vivid, video(InputAuto, 640, 360, 30),
			"raw 640x360@30", "video/x-raw,format=NV12,width=640,height=360,framerate=30/1",
			[]string{"queue", "videoconvert", "capsfilter"},
			"video/x-raw,format=I420,width=640,height=360,framerate=30/1"},
		{"12.5 fps to 15: rate only", []v4l2.Mode{mode("YUYV", 1280, 720, 12.5)}, video(InputAuto, 1280, 720, 15),
			"raw 1280x720@12.5 → 1280x720@15", "video/x-raw,format=YUY2,width=1280,height=720,framerate=25/2",
			[]string{"queue", "videorate", "videoconvert", "capsfilter"},
			"video/x-raw,format=I420,width=1280,height=720,framerate=15/1"},
		{"unlisted rate: rate-adapted, the camera picks its own", []v4l2.Mode{{Format: v4l2.Raw, FourCC: "YU12", Width: 640, Height: 480}}, video(InputAuto, 640, 480, 30),
			"raw 640x480 → 640x480@30", "video/x-raw,format=I420,width=640,height=480",
			[]string{"queue", "videorate", "videoconvert", "capsfilter"},
			"video/x-raw,format=I420,width=640,height=480,framerate=30/1"},
		{"camera H.264 passed through at its own size", c920, func() VideoSpec { v := video(InputAuto, 1024, 576, 30); v.PreferH264 = true; return v }(),
			"h264 1280x720@30", "video/x-h264,width=1280,height=720,framerate=30/1",
			[]string{"h264parse"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, err := ChooseMode(c.offered, c.v, true)
			if err != nil {
				t.Fatal(err)
			}
			g, res, err := CaptureGraph(v4l2Spec(c.v), &ch, have())
			if err != nil {
				t.Fatal(err)
			}
			if res.Mode != c.mode {
				t.Errorf("Mode %q, want %q", res.Mode, c.mode)
			}
			if got := prop(t, g, "srccaps", "caps"); got != c.srccaps {
				t.Errorf("source caps %s, want %s", got, c.srccaps)
			}
			var chain []string
			for _, e := range g.Chains[0].Elems[2:] {
				if e.Name == "enccaps" || e.Factory == "h264parse" {
					chain = append(chain, e.Factory)
					break
				}
				chain = append(chain, e.Factory)
			}
			if fmt.Sprint(chain) != fmt.Sprint(c.elements) {
				t.Errorf("chain %v, want %v\n%s", chain, c.elements, g)
			}
			if c.enccaps != "" {
				if got := prop(t, g, "enccaps", "caps"); got != c.enccaps {
					t.Errorf("encoder caps %s, want %s", got, c.enccaps)
				}
			}
			if e, ok := g.Find("scale"); ok && prop(t, g, e.Name, "add-borders") != "true" {
				t.Error("scaling without borders stretches the picture")
			}
		})
	}
}

func TestCaptureGraphModeOfOtherSources(t *testing.T) {
	_, res, _ := CaptureGraph(spec(), nil, have())
	if res.Mode != "test 1280x720@30" {
		t.Errorf("test source mode %q", res.Mode)
	}
	s := spec()
	s.Video.Source = VideoLibcamera
	_, res, _ = CaptureGraph(s, nil, have())
	if res.Mode != "raw 1280x720@30" {
		t.Errorf("libcamera mode %q", res.Mode)
	}
}

func TestCaptureGraphV4L2NeedsAValidMode(t *testing.T) {
	s := v4l2Spec(video(InputAuto, 1280, 720, 30))
	if _, _, err := CaptureGraph(s, nil, have()); err == nil {
		t.Error("v4l2 without a chosen mode accepted")
	}
	for _, bad := range []Choice{
		{Format: v4l2.Raw, FourCC: "BA81", Width: 640, Height: 480},
		{Format: "vp8", FourCC: "VP80", Width: 640, Height: 480},
		{Format: v4l2.MJPEG, FourCC: "MJPG", Width: 0, Height: 480},
		{Format: v4l2.MJPEG, FourCC: "MJPG", Width: 640, Height: 480, Rate: v4l2.Rate{Num: 30, Den: 0}},
	} {
		if _, _, err := CaptureGraph(s, &bad, have()); err == nil {
			t.Errorf("mode %+v accepted", bad)
		}
	}
	s.Video.Input = InputRaw
	if _, _, err := CaptureGraph(s, &Choice{Format: v4l2.MJPEG, FourCC: "MJPG", Width: 640, Height: 480}, have()); err == nil {
		t.Error("an MJPEG mode accepted where raw is required")
	}
}

func TestValidateInputsAndStallTimeout(t *testing.T) {
	for _, in := range []InputFormat{InputAuto, InputRaw, InputMJPEG, InputH264} {
		if err := v4l2Spec(video(in, 1280, 720, 30)).Validate(); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
	for _, in := range []InputFormat{"", "yuyv"} {
		if err := v4l2Spec(video(in, 1280, 720, 30)).Validate(); err == nil {
			t.Errorf("input %q accepted", in)
		}
	}
	s := spec()
	s.StallTimeout = -1
	if err := s.Validate(); err == nil {
		t.Error("negative stall timeout accepted")
	}
}
