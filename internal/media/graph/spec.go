package graph

import (
	"fmt"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/v4l2"
)

// Available reports whether an element factory exists. The engine passes the
// real registry; tests pass a map.
type Available func(factory string) bool

// JPEGGraph builds the small pipeline that turns one raw frame into a JPEG:
// appsrc, scale, size caps (set per snapshot), jpegenc, appsink.
func JPEGGraph() Graph {
	return Graph{Chains: []Chain{{Elems: []Elem{
		El("appsrc", "src", P("format", "time"), P("is-live", false)),
		El("videoscale", "scale"),
		El("videoconvert", "conv"),
		Caps("size", "video/x-raw"),
		El("jpegenc", "enc"),
		El("appsink", "out", P("sync", false), P("max-buffers", 1), P("emit-signals", false), P("enable-last-sample", false)),
	}}}}
}

// Element names shared by the capture graph and the engine.
const (
	videoTee = "vt"
	audioTee = "at"
	// VideoParse is the H.264 parser that feeds the video tee (through the
	// AVC caps).
	VideoParse = "vparse"
	// RawTee splits raw I420 frames between the encoder and snapshots.
	RawTee = "rt"
	// SnapshotSink holds the newest raw frame.
	SnapshotSink = "snap"
	// RateAdapter is the videorate of a camera whose rate differs from the
	// configured one; it counts the camera's frames ("in").
	RateAdapter = "rate"
)

// SlotVideo and SlotAudio name the proxysinks of output slot i.
func SlotVideo(i int) string { return fmt.Sprintf("vslot%d", i) }

// SlotAudio: see SlotVideo.
func SlotAudio(i int) string { return fmt.Sprintf("aslot%d", i) }

// CaptureGraph builds the capture pipeline: source, one H.264 encoder and one
// AAC encoder, each into a tee; every slot is a leaky queue into a proxysink
// so a stuck or dead output can never back-pressure the encoders.
//
// cam is the V4L2 camera's mode (from ChooseMode); it is required for a
// V4L2 source and ignored for the others. The source asks for exactly that
// mode; when its size or rate differs from the configured one, the graph
// scales (black borders keep the aspect ratio) and duplicates or drops
// frames, except for the camera's own H.264, which is passed through as
// it is.
func CaptureGraph(s agent.CaptureSpec, cam *Choice, have Available) (Graph, agent.Resolved, error) {
	if err := s.Validate(); err != nil {
		return Graph{}, agent.Resolved{}, err
	}
	v, a := s.Video, s.Audio
	var res agent.Resolved
	out := fmt.Sprintf("%dx%d@%d", v.Width, v.Height, v.FPS)
	raw := fmt.Sprintf("video/x-raw,width=%d,height=%d,framerate=%d/1", v.Width, v.Height, v.FPS)
	i420 := fmt.Sprintf("video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1", v.Width, v.Height, v.FPS)

	var video []Elem
	passthrough, scale, rate := false, false, false
	switch v.Source {
	case agent.VideoTest:
		res.Mode = "test " + out
		video = append(video,
			El("videotestsrc", "src", P("is-live", true), P("pattern", "smpte"), P("horizontal-speed", 4)),
			Caps("srccaps", i420))
	case agent.VideoV4L2:
		if cam == nil {
			return Graph{}, agent.Resolved{}, fmt.Errorf("graph: v4l2 camera %s: no camera mode chosen", v.Device)
		}
		if err := cam.validate(); err != nil {
			return Graph{}, agent.Resolved{}, err
		}
		if v.Input != agent.InputAuto && v4l2.Format(v.Input) != cam.Format {
			return Graph{}, agent.Resolved{}, fmt.Errorf("graph: v4l2 camera %s: %s asked for, %s chosen", v.Device, v.Input, cam.Format)
		}
		video = append(video, El("v4l2src", "src", P("device", v.Device)), Caps("srccaps", cam.Caps()))
		res.Mode = cam.String()
		switch cam.Format {
		case v4l2.MJPEG:
			video = append(video, El("jpegdec", "jpegdec"))
		case v4l2.H264:
			passthrough = true
		}
		if !passthrough {
			scale = cam.Width != v.Width || cam.Height != v.Height
			rate = !cam.Rate.Known() || cam.Rate.Cmp(v4l2.Rate{Num: v.FPS, Den: 1}) != 0
			if scale || rate {
				res.Mode += " → " + out
			}
		}
	case agent.VideoLibcamera:
		res.Mode = "raw " + out
		src := El("libcamerasrc", "src")
		if v.Device != "" {
			src.Props = append(src.Props, P("camera-name", v.Device))
		}
		video = append(video, src, Caps("srccaps", raw))
	}

	if passthrough {
		res.Encoder, res.Profile = "camera", "camera"
	} else {
		// Cameras deliver YUY2, NV12 or MJPEG; x264 would pick 4:2:2 or 10-bit
		// if offered, which players reject: always hand it 8-bit 4:2:0.
		video = append(video,
			El("queue", "capq", P("leaky", "downstream"), P("max-size-buffers", 2), P("max-size-bytes", 0), P("max-size-time", 0)))
		if rate {
			// Before conversion and scaling, so that dropped frames cost
			// nothing; duplicates are references, not copies.
			video = append(video, El("videorate", RateAdapter))
		}
		video = append(video, El("videoconvert", "conv"))
		encCaps := i420
		if scale {
			// Square pixels out: a 4:3 camera in a 16:9 stream is
			// pillar-boxed, not stretched (and the other way round).
			video = append(video, El("videoscale", "scale", P("add-borders", true)))
			encCaps += ",pixel-aspect-ratio=1/1"
		}
		video = append(video,
			Caps("enccaps", encCaps),
			El("tee", RawTee),
			El("queue", "encq", P("max-size-buffers", 2), P("max-size-bytes", 0), P("max-size-time", 0)))
		res.Snapshots = true
		enc := v.Encoder
		if enc == agent.EncoderAuto {
			enc = agent.EncoderX264
			if have("v4l2h264enc") {
				enc = agent.EncoderV4L2
			}
		}
		gop := v.FPS * v.KeyframeSec
		switch enc {
		case agent.EncoderX264:
			res.Encoder = "x264enc"
			res.Profile = "main"
			if v.Preset == "ultrafast" {
				res.Profile = "constrained-baseline"
			}
			video = append(video,
				El("x264enc", "venc",
					P("tune", "zerolatency"), P("speed-preset", v.Preset), P("bitrate", v.BitrateKbps),
					P("vbv-buf-capacity", 1000), P("key-int-max", gop), P("pass", "cbr"),
					// No extra keyframes on scene changes: platforms want
					// one exactly every keyframe interval.
					P("option-string", "scenecut=0")),
				Caps("h264caps", "video/x-h264,profile="+res.Profile))
		case agent.EncoderV4L2:
			res.Encoder = "v4l2h264enc"
			res.Profile = "main"
			video = append(video,
				El("v4l2h264enc", "venc", P("extra-controls",
					fmt.Sprintf("controls,video_bitrate=%d,video_bitrate_mode=1,h264_i_frame_period=%d,repeat_sequence_header=1",
						v.BitrateKbps*1000, gop))),
				Caps("h264caps", "video/x-h264,level=(string)4,profile=(string)main"))
		}
	}
	// config-interval=-1 repeats SPS/PPS before every IDR, so an output that
	// attaches mid-stream can decode from its first keyframe.
	video = append(video, El("h264parse", VideoParse, P("config-interval", -1)),
		// Outputs get AVC (length-prefixed, what flvmux takes): cameras and
		// v4l2h264enc give Annex B byte-stream, which h264parse converts only
		// when told, and an output attached later cannot renegotiate it.
		Caps("h264out", "video/x-h264,stream-format=avc,alignment=au"), El("tee", videoTee, P("allow-not-linked", true)))

	var audio []Elem
	switch a.Source {
	case agent.AudioTest:
		audio = append(audio, El("audiotestsrc", "asrc", P("is-live", true), P("wave", "sine"), P("freq", 440), P("volume", "0.1")))
	case agent.AudioSilence:
		audio = append(audio, El("audiotestsrc", "asrc", P("is-live", true), P("wave", "silence")))
	case agent.AudioALSA:
		audio = append(audio, El("alsasrc", "asrc", P("device", a.Device)))
	}
	audio = append(audio,
		El("queue", "aq", P("leaky", "downstream"), P("max-size-time", 200_000_000), P("max-size-buffers", 0), P("max-size-bytes", 0)),
		El("audioconvert", "aconv"), El("audioresample", "ares"),
		Caps("acaps", "audio/x-raw,rate=44100,channels=2"))
	switch {
	case have("avenc_aac"):
		res.AudioEncoder = "avenc_aac"
		audio = append(audio, El("avenc_aac", "aenc", P("bitrate", a.BitrateKbps*1000)))
	default:
		res.AudioEncoder = "voaacenc"
		audio = append(audio, El("voaacenc", "aenc", P("bitrate", a.BitrateKbps*1000)))
	}
	audio = append(audio, El("aacparse", "aparse"), El("tee", audioTee, P("allow-not-linked", true)))

	g := Graph{Chains: []Chain{{Elems: video}, {Elems: audio}}}
	if res.Snapshots {
		// The newest raw frame, held for snapshots: a leaky one-frame queue
		// into an appsink that keeps only the latest and never blocks (async
		// false: a sink nobody pulls from must not hold up the pipeline).
		g.Chains = append(g.Chains, Chain{From: RawTee, Elems: []Elem{
			El("queue", "snapq", P("leaky", "downstream"), P("max-size-buffers", 1), P("max-size-bytes", 0), P("max-size-time", 0)),
			El("appsink", SnapshotSink, P("max-buffers", 1), P("drop", true), P("sync", false), P("async", false),
				P("enable-last-sample", false), P("emit-signals", false)),
		}})
	}
	// Slots are bare proxysinks: with no sender attached they drop at once
	// (no thread, no queue); an attached sender's proxysrc queues in its
	// own leaky queue (see SlotQueueBuffers), so a stuck or dead output
	// can never block the tee.
	for i := 0; i < s.Slots; i++ {
		g.Chains = append(g.Chains,
			Chain{From: videoTee, Elems: []Elem{El("proxysink", SlotVideo(i))}},
			Chain{From: audioTee, Elems: []Elem{El("proxysink", SlotAudio(i))}},
		)
	}
	return g, res, nil
}

// SlotQueueBuffers is how many buffers a sender's proxysrc holds (video,
// audio: about 3 s) before it drops the oldest.
var SlotQueueBuffers = [2]int{90, 150}

// TimelapseGraph turns numbered JPEG frames (pattern like
// /media/tl/frame-%06d.jpg) into an H.264 MP4 at fps frames per second.
func TimelapseGraph(pattern string, fps int, out string) Graph {
	return Graph{Chains: []Chain{{Elems: []Elem{
		El("multifilesrc", "src", P("location", pattern), P("index", 0), P("caps", fmt.Sprintf("image/jpeg,framerate=%d/1", fps))),
		El("jpegdec", "dec"),
		El("videoconvert", "conv"),
		Caps("i420", "video/x-raw,format=I420"),
		El("x264enc", "enc", P("speed-preset", "veryfast"), P("key-int-max", fps*2)),
		Caps("h264caps", "video/x-h264,profile=main"),
		El("h264parse", "parse"),
		El("mp4mux", "mux"),
		El("filesink", "sink", P("location", out)),
	}}}}
}
