package graph

import (
	"strings"
	"testing"

	. "github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/v4l2"
)

func spec() CaptureSpec {
	return CaptureSpec{
		Video: VideoSpec{Source: VideoTest, Width: 1280, Height: 720, FPS: 30, BitrateKbps: 2500, KeyframeSec: 2, Encoder: EncoderAuto, Preset: "veryfast"},
		Audio: AudioSpec{Source: AudioSilence, BitrateKbps: 128},
		Slots: 2,
	}
}

func have(names ...string) Available {
	return func(f string) bool {
		for _, n := range names {
			if n == f {
				return true
			}
		}
		return false
	}
}

func prop(t *testing.T, g Graph, elem, name string) string {
	t.Helper()
	e, ok := g.Find(elem)
	if !ok {
		t.Fatalf("no element %s in %s", elem, g)
	}
	for _, p := range e.Props {
		if p.Name == name {
			return p.Value
		}
	}
	t.Fatalf("%s has no %s", elem, name)
	return ""
}

func TestCaptureGraphX264(t *testing.T) {
	g, res, err := CaptureGraph(spec(), nil, have("avenc_aac"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Encoder != "x264enc" || res.Profile != "main" || res.AudioEncoder != "avenc_aac" {
		t.Errorf("resolved %+v", res)
	}
	// 8-bit 4:2:0 right before the encoder: never let x264 pick 4:4:4 10-bit.
	if c := prop(t, g, "enccaps", "caps"); c != "video/x-raw,format=I420,width=1280,height=720,framerate=30/1" {
		t.Errorf("encoder input caps %s", c)
	}
	if k := prop(t, g, "venc", "key-int-max"); k != "60" {
		t.Errorf("key-int-max %s, want 60 (2 s at 30 fps)", k)
	}
	if prop(t, g, "venc", "option-string") != "scenecut=0" {
		t.Error("x264 may add keyframes at scene changes")
	}
	if prop(t, g, "venc", "pass") != "cbr" || prop(t, g, "venc", "tune") != "zerolatency" || prop(t, g, "venc", "bitrate") != "2500" {
		t.Errorf("x264 settings %s", g)
	}
	if prop(t, g, "vparse", "config-interval") != "-1" {
		t.Error("SPS/PPS not repeated at every IDR")
	}
	if prop(t, g, "asrc", "wave") != "silence" {
		t.Error("no silent audio track without a microphone")
	}
	for i := 0; i < 2; i++ {
		if _, ok := g.Find(SlotVideo(i)); !ok {
			t.Errorf("slot %d missing", i)
		}
		if e, _ := g.Find(SlotVideo(i)); e.Factory != "proxysink" {
			t.Errorf("slot %d is %s, want a bare proxysink (the sender's proxysrc queues, leaky)", i, e.Factory)
		}
	}
	if _, ok := g.Find(SlotVideo(2)); ok {
		t.Error("more slots than asked for")
	}
}

func TestCaptureGraphChoices(t *testing.T) {
	s := spec()
	s.Video.Preset = "ultrafast"
	_, res, _ := CaptureGraph(s, nil, have())
	if res.Profile != "constrained-baseline" || res.AudioEncoder != "voaacenc" {
		t.Errorf("ultrafast: %+v", res)
	}
	g, res, err := CaptureGraph(spec(), nil, have("v4l2h264enc"))
	if err != nil || res.Encoder != "v4l2h264enc" {
		t.Fatalf("auto with the Pi's encoder present: %+v %v", res, err)
	}
	if c := prop(t, g, "venc", "extra-controls"); !strings.Contains(c, "video_bitrate=2500000") || !strings.Contains(c, "h264_i_frame_period=60") {
		t.Errorf("v4l2h264enc controls %s", c)
	}
	s = spec()
	s.Video.Source, s.Video.Device, s.Video.Input = VideoV4L2, "/dev/video0", InputMJPEG
	g, _, err = CaptureGraph(s, &Choice{Format: v4l2.MJPEG, FourCC: "MJPG", Width: 1280, Height: 720, Rate: v4l2.Rate{Num: 30, Den: 1}}, have())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Find("jpegdec"); !ok || prop(t, g, "src", "device") != "/dev/video0" {
		t.Errorf("mjpeg webcam graph %s", g)
	}
	s.Video.Input = InputH264
	g, res, _ = CaptureGraph(s, &Choice{Format: v4l2.H264, FourCC: "H264", Width: 1280, Height: 720, Rate: v4l2.Rate{Num: 30, Den: 1}}, have("v4l2h264enc"))
	if _, ok := g.Find("venc"); ok || res.Encoder != "camera" {
		t.Errorf("h264 camera is re-encoded: %s", g)
	}
	s = spec()
	s.Audio.Source, s.Audio.Device = AudioALSA, "plughw:1,0"
	g, _, _ = CaptureGraph(s, nil, have())
	if prop(t, g, "asrc", "device") != "plughw:1,0" {
		t.Error("alsa device not set")
	}
}

func TestValidateRejectsUnsafeValues(t *testing.T) {
	bad := []func(*CaptureSpec){
		func(s *CaptureSpec) {
			s.Video.Source, s.Video.Device, s.Video.Input = VideoV4L2, "/dev/video0 ! filesink location=x", InputRaw
		},
		func(s *CaptureSpec) { s.Video.Source, s.Video.Device, s.Video.Input = VideoV4L2, "video0", InputRaw },
		func(s *CaptureSpec) { s.Audio.Source, s.Audio.Device = AudioALSA, "hw:1 ! x" },
		func(s *CaptureSpec) { s.Video.Width = 641 },
		func(s *CaptureSpec) { s.Video.FPS = 0 },
		func(s *CaptureSpec) { s.Video.Preset = "placebo" },
		func(s *CaptureSpec) { s.Video.Encoder = "nvenc" },
		func(s *CaptureSpec) { s.Slots = 0 },
	}
	for i, mut := range bad {
		s := spec()
		mut(&s)
		if _, _, err := CaptureGraph(s, nil, have()); err == nil {
			t.Errorf("case %d accepted: %+v", i, s)
		}
	}
}
