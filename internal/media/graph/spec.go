package graph

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/makercast/makercast/internal/secret"
	"github.com/makercast/makercast/internal/v4l2"
)

// VideoSource says where pictures come from.
type VideoSource string

const (
	VideoTest      VideoSource = "test"      // moving test pattern
	VideoV4L2      VideoSource = "v4l2"      // USB webcam (C270, C920, ...)
	VideoLibcamera VideoSource = "libcamera" // Pi camera module
)

// InputFormat is what a V4L2 camera is asked to deliver. An explicit
// format is required (the capture fails when the camera lacks it); auto
// picks the best mode the camera offers (see ChooseMode).
type InputFormat string

const (
	InputAuto  InputFormat = "auto"
	InputRaw   InputFormat = "raw"
	InputMJPEG InputFormat = "mjpeg"
	InputH264  InputFormat = "h264" // the camera's own encoder (C920): no re-encode
)

// Encoder names the H.264 encoder.
type Encoder string

const (
	EncoderAuto Encoder = "auto" // v4l2h264enc when the hardware exists, else x264
	EncoderX264 Encoder = "x264"
	EncoderV4L2 Encoder = "v4l2" // Pi 0-4 bcm2835-codec
)

// AudioSource says where sound comes from.
type AudioSource string

const (
	AudioTest    AudioSource = "test"    // a quiet 440 Hz tone
	AudioSilence AudioSource = "silence" // a silent AAC track: platforms reject video-only streams
	AudioALSA    AudioSource = "alsa"
)

// VideoSpec describes capture and encoding of one camera's video.
type VideoSpec struct {
	Source VideoSource
	Device string // /dev/videoN for v4l2, camera name for libcamera (may be empty)
	Input  InputFormat
	// PreferH264, with InputAuto, takes the camera's own H.264 when it has
	// one (no encoder needed, but no snapshots and the camera's own size).
	PreferH264  bool
	Width       int
	Height      int
	FPS         int
	BitrateKbps int
	KeyframeSec int
	Encoder     Encoder
	Preset      string // x264 speed preset
}

// AudioSpec describes capture and encoding of one camera's audio.
type AudioSpec struct {
	Source      AudioSource
	Device      string // ALSA device, e.g. hw:1,0 or plughw:CARD=C920
	BitrateKbps int
}

// CaptureSpec is everything needed to build one camera's capture pipeline.
type CaptureSpec struct {
	Video VideoSpec
	Audio AudioSpec
	// Slots is how many outputs (destinations, recorders) can attach at once.
	Slots int
	// StallTimeout ends a capture whose camera delivered frames and then
	// none for this long (0: never). A frozen camera or a dead writer
	// behind a loopback device gives no error of its own.
	StallTimeout time.Duration
}

// Presets are the x264 speed presets offered. ultrafast gives Constrained
// Baseline (no CABAC, no B-frames); the others give Main.
var presets = map[string]bool{"ultrafast": true, "superfast": true, "veryfast": true, "faster": true, "fast": true}

var (
	devicePath = regexp.MustCompile(`^/dev/[A-Za-z0-9/_.-]{1,64}$`)
	alsaDevice = regexp.MustCompile(`^[A-Za-z0-9_:,=.-]{1,64}$`)
	camName    = regexp.MustCompile(`^[A-Za-z0-9 /_:.@-]{0,128}$`)
)

// Validate checks every field, so that the graph built from it holds only
// known-safe values.
func (s CaptureSpec) Validate() error {
	v, a := s.Video, s.Audio
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("graph: "+format, args...)) }
	switch v.Source {
	case VideoTest:
	case VideoV4L2:
		if !devicePath.MatchString(v.Device) {
			add("video device %q is not a /dev path", v.Device)
		}
		switch v.Input {
		case InputAuto, InputRaw, InputMJPEG, InputH264:
		default:
			add("unknown input format %q (auto, raw, mjpeg, h264)", v.Input)
		}
	case VideoLibcamera:
		if !camName.MatchString(v.Device) {
			add("libcamera camera name %q has unexpected characters", v.Device)
		}
	default:
		add("unknown video source %q", v.Source)
	}
	if v.Width < 160 || v.Width > 3840 || v.Width%2 != 0 {
		add("width %d must be even and within 160..3840", v.Width)
	}
	if v.Height < 120 || v.Height > 2160 || v.Height%2 != 0 {
		add("height %d must be even and within 120..2160", v.Height)
	}
	if v.FPS < 1 || v.FPS > 60 {
		add("fps %d must be within 1..60", v.FPS)
	}
	if v.BitrateKbps < 100 || v.BitrateKbps > 20000 {
		add("video bitrate %d kbit/s must be within 100..20000", v.BitrateKbps)
	}
	if v.KeyframeSec < 1 || v.KeyframeSec > 10 {
		add("keyframe interval %d s must be within 1..10", v.KeyframeSec)
	}
	switch v.Encoder {
	case EncoderAuto, EncoderX264, EncoderV4L2:
	default:
		add("unknown encoder %q", v.Encoder)
	}
	if !presets[v.Preset] {
		add("unknown x264 preset %q", v.Preset)
	}
	switch a.Source {
	case AudioTest, AudioSilence:
	case AudioALSA:
		if !alsaDevice.MatchString(a.Device) {
			add("alsa device %q has unexpected characters", a.Device)
		}
	default:
		add("unknown audio source %q", a.Source)
	}
	if a.BitrateKbps < 32 || a.BitrateKbps > 320 {
		add("audio bitrate %d kbit/s must be within 32..320", a.BitrateKbps)
	}
	if s.Slots < 1 || s.Slots > 16 {
		add("slots %d must be within 1..16", s.Slots)
	}
	if s.StallTimeout < 0 {
		add("stall timeout %s must not be negative", s.StallTimeout)
	}
	return errors.Join(errs...)
}

// Available reports whether an element factory exists. The engine passes the
// real registry; tests pass a map.
type Available func(factory string) bool

// Resolved is what the builder chose, for state reports.
type Resolved struct {
	Encoder      string // element doing the H.264 (or "camera" for passthrough)
	AudioEncoder string
	Profile      string
	// Snapshots is false when the camera's own H.264 is passed through
	// (no raw frames to take a picture from).
	Snapshots bool
	// Mode is the camera mode in words, and the output it is adapted to
	// when they differ: "mjpeg 640x480@15 → 1280x720@30", "raw 640x360@30",
	// "h264 1920x1080@30" (passed through as it is), "test 1280x720@30".
	Mode string
}

// CaptureStats are a capture's running counters.
type CaptureStats struct {
	// Frames came from the camera; Encoded left the encoder (fewer or more
	// than Frames when the camera's rate is adapted to the configured
	// one); Dropped were thrown away before the encoder because it could
	// not keep up.
	Frames, Encoded, Dropped uint64
	// QueueLevel is how many frames wait for the encoder now.
	QueueLevel int
}

// JPEG describes one snapshot: output size (0 keeps the camera's; one of
// them 0 keeps the aspect ratio) and JPEG quality.
type JPEG struct {
	Width, Height int
	Quality       int
}

// Picture is one JPEG snapshot.
type Picture struct {
	JPEG          []byte
	Width, Height int
	// Taken is when the frame was pulled from the capture.
	Taken time.Time
}

// Validate checks a snapshot request.
func (j JPEG) Validate() error {
	switch {
	case j.Width != 0 && (j.Width < 16 || j.Width > 3840):
		return fmt.Errorf("graph: snapshot width %d must be within 16..3840", j.Width)
	case j.Height != 0 && (j.Height < 16 || j.Height > 2160):
		return fmt.Errorf("graph: snapshot height %d must be within 16..2160", j.Height)
	case j.Quality < 1 || j.Quality > 100:
		return fmt.Errorf("graph: JPEG quality %d must be within 1..100", j.Quality)
	}
	return nil
}

// JPEGGraph builds the small pipeline that turns one raw frame into a JPEG:
// appsrc, scale, size caps (set per snapshot), jpegenc, appsink.
func JPEGGraph() Graph {
	return Graph{Chains: []Chain{{Elems: []Elem{
		el("appsrc", "src", p("format", "time"), p("is-live", false)),
		el("videoscale", "scale"),
		el("videoconvert", "conv"),
		caps("size", "video/x-raw"),
		el("jpegenc", "enc"),
		el("appsink", "out", p("sync", false), p("max-buffers", 1), p("emit-signals", false), p("enable-last-sample", false)),
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
func CaptureGraph(s CaptureSpec, cam *Choice, have Available) (Graph, Resolved, error) {
	if err := s.Validate(); err != nil {
		return Graph{}, Resolved{}, err
	}
	v, a := s.Video, s.Audio
	var res Resolved
	out := fmt.Sprintf("%dx%d@%d", v.Width, v.Height, v.FPS)
	raw := fmt.Sprintf("video/x-raw,width=%d,height=%d,framerate=%d/1", v.Width, v.Height, v.FPS)
	i420 := fmt.Sprintf("video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1", v.Width, v.Height, v.FPS)

	var video []Elem
	passthrough, scale, rate := false, false, false
	switch v.Source {
	case VideoTest:
		res.Mode = "test " + out
		video = append(video,
			el("videotestsrc", "src", p("is-live", true), p("pattern", "smpte"), p("horizontal-speed", 4)),
			caps("srccaps", i420))
	case VideoV4L2:
		if cam == nil {
			return Graph{}, Resolved{}, fmt.Errorf("graph: v4l2 camera %s: no camera mode chosen", v.Device)
		}
		if err := cam.validate(); err != nil {
			return Graph{}, Resolved{}, err
		}
		if v.Input != InputAuto && v4l2.Format(v.Input) != cam.Format {
			return Graph{}, Resolved{}, fmt.Errorf("graph: v4l2 camera %s: %s asked for, %s chosen", v.Device, v.Input, cam.Format)
		}
		video = append(video, el("v4l2src", "src", p("device", v.Device)), caps("srccaps", cam.Caps()))
		res.Mode = cam.String()
		switch cam.Format {
		case v4l2.MJPEG:
			video = append(video, el("jpegdec", "jpegdec"))
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
	case VideoLibcamera:
		res.Mode = "raw " + out
		src := el("libcamerasrc", "src")
		if v.Device != "" {
			src.Props = append(src.Props, p("camera-name", v.Device))
		}
		video = append(video, src, caps("srccaps", raw))
	}

	if passthrough {
		res.Encoder, res.Profile = "camera", "camera"
	} else {
		// Cameras deliver YUY2, NV12 or MJPEG; x264 would pick 4:2:2 or 10-bit
		// if offered, which players reject: always hand it 8-bit 4:2:0.
		video = append(video,
			el("queue", "capq", p("leaky", "downstream"), p("max-size-buffers", 2), p("max-size-bytes", 0), p("max-size-time", 0)))
		if rate {
			// Before conversion and scaling, so that dropped frames cost
			// nothing; duplicates are references, not copies.
			video = append(video, el("videorate", RateAdapter))
		}
		video = append(video, el("videoconvert", "conv"))
		encCaps := i420
		if scale {
			// Square pixels out: a 4:3 camera in a 16:9 stream is
			// pillar-boxed, not stretched (and the other way round).
			video = append(video, el("videoscale", "scale", p("add-borders", true)))
			encCaps += ",pixel-aspect-ratio=1/1"
		}
		video = append(video,
			caps("enccaps", encCaps),
			el("tee", RawTee),
			el("queue", "encq", p("max-size-buffers", 2), p("max-size-bytes", 0), p("max-size-time", 0)))
		res.Snapshots = true
		enc := v.Encoder
		if enc == EncoderAuto {
			enc = EncoderX264
			if have("v4l2h264enc") {
				enc = EncoderV4L2
			}
		}
		gop := v.FPS * v.KeyframeSec
		switch enc {
		case EncoderX264:
			res.Encoder = "x264enc"
			res.Profile = "main"
			if v.Preset == "ultrafast" {
				res.Profile = "constrained-baseline"
			}
			video = append(video,
				el("x264enc", "venc",
					p("tune", "zerolatency"), p("speed-preset", v.Preset), p("bitrate", v.BitrateKbps),
					p("vbv-buf-capacity", 1000), p("key-int-max", gop), p("pass", "cbr"),
					// No extra keyframes on scene changes: platforms want
					// one exactly every keyframe interval.
					p("option-string", "scenecut=0")),
				caps("h264caps", "video/x-h264,profile="+res.Profile))
		case EncoderV4L2:
			res.Encoder = "v4l2h264enc"
			res.Profile = "main"
			video = append(video,
				el("v4l2h264enc", "venc", p("extra-controls",
					fmt.Sprintf("controls,video_bitrate=%d,video_bitrate_mode=1,h264_i_frame_period=%d,repeat_sequence_header=1",
						v.BitrateKbps*1000, gop))),
				caps("h264caps", "video/x-h264,level=(string)4,profile=(string)main"))
		}
	}
	// config-interval=-1 repeats SPS/PPS before every IDR, so an output that
	// attaches mid-stream can decode from its first keyframe.
	video = append(video, el("h264parse", VideoParse, p("config-interval", -1)),
		// Outputs get AVC (length-prefixed, what flvmux takes): cameras and
		// v4l2h264enc give Annex B byte-stream, which h264parse converts only
		// when told, and an output attached later cannot renegotiate it.
		caps("h264out", "video/x-h264,stream-format=avc,alignment=au"), el("tee", videoTee, p("allow-not-linked", true)))

	var audio []Elem
	switch a.Source {
	case AudioTest:
		audio = append(audio, el("audiotestsrc", "asrc", p("is-live", true), p("wave", "sine"), p("freq", 440), p("volume", "0.1")))
	case AudioSilence:
		audio = append(audio, el("audiotestsrc", "asrc", p("is-live", true), p("wave", "silence")))
	case AudioALSA:
		audio = append(audio, el("alsasrc", "asrc", p("device", a.Device)))
	}
	audio = append(audio,
		el("queue", "aq", p("leaky", "downstream"), p("max-size-time", 200_000_000), p("max-size-buffers", 0), p("max-size-bytes", 0)),
		el("audioconvert", "aconv"), el("audioresample", "ares"),
		caps("acaps", "audio/x-raw,rate=44100,channels=2"))
	switch {
	case have("avenc_aac"):
		res.AudioEncoder = "avenc_aac"
		audio = append(audio, el("avenc_aac", "aenc", p("bitrate", a.BitrateKbps*1000)))
	default:
		res.AudioEncoder = "voaacenc"
		audio = append(audio, el("voaacenc", "aenc", p("bitrate", a.BitrateKbps*1000)))
	}
	audio = append(audio, el("aacparse", "aparse"), el("tee", audioTee, p("allow-not-linked", true)))

	g := Graph{Chains: []Chain{{Elems: video}, {Elems: audio}}}
	if res.Snapshots {
		// The newest raw frame, held for snapshots: a leaky one-frame queue
		// into an appsink that keeps only the latest and never blocks (async
		// false: a sink nobody pulls from must not hold up the pipeline).
		g.Chains = append(g.Chains, Chain{From: RawTee, Elems: []Elem{
			el("queue", "snapq", p("leaky", "downstream"), p("max-size-buffers", 1), p("max-size-bytes", 0), p("max-size-time", 0)),
			el("appsink", SnapshotSink, p("max-buffers", 1), p("drop", true), p("sync", false), p("async", false),
				p("enable-last-sample", false), p("emit-signals", false)),
		}})
	}
	// Slots are bare proxysinks: with no sender attached they drop at once
	// (no thread, no queue); an attached sender's proxysrc queues in its
	// own leaky queue (see SlotQueueBuffers), so a stuck or dead output
	// can never block the tee.
	for i := 0; i < s.Slots; i++ {
		g.Chains = append(g.Chains,
			Chain{From: videoTee, Elems: []Elem{el("proxysink", SlotVideo(i))}},
			Chain{From: audioTee, Elems: []Elem{el("proxysink", SlotAudio(i))}},
		)
	}
	return g, res, nil
}

// SlotQueueBuffers is how many buffers a sender's proxysrc holds (video,
// audio: about 3 s) before it drops the oldest.
var SlotQueueBuffers = [2]int{90, 150}

// Scheme is an RTMP transport.
type Scheme string

const (
	RTMP  Scheme = "rtmp"
	RTMPS Scheme = "rtmps"
)

// Target is one RTMP(S) endpoint in typed form. Stream (the key) and
// Password are secrets: callers must never log them.
type Target struct {
	Scheme      Scheme
	Host        string
	Port        int
	Application string
	Stream      secret.Secret
	Username    string
	Password    secret.Secret
}

// SendHooks are called from the sender's own goroutine, never from
// GStreamer's threads.
type SendHooks struct {
	// Live is called once, when media bytes are flowing to the server.
	Live func()
	// Bytes reports the running total of bytes written to the server.
	Bytes func(total uint64)
}

// SenderGraph builds one destination's sender: proxysrc pair into flvmux
// into rtmp2sink. The target's fields go into typed properties, so nothing in
// them can alter the pipeline.
func SenderGraph(t Target) Graph {
	sink := el("rtmp2sink", "sink",
		p("scheme", string(t.Scheme)), p("host", t.Host), p("port", t.Port),
		p("application", t.Application), p("stream", t.Stream.Reveal()), p("async-connect", true), p("timeout", 5))
	if t.Username != "" {
		sink.Props = append(sink.Props, p("username", t.Username), p("password", t.Password.Reveal()), p("authmod", "auto"))
	}
	return Graph{Chains: []Chain{
		{Elems: []Elem{el("flvmux", "mux", p("streamable", true), p("latency", 100_000_000)), sink}},
		{Elems: []Elem{el("proxysrc", "vsrc")}, To: "mux.video"},
		{Elems: []Elem{el("proxysrc", "asrc")}, To: "mux.audio"},
	}}
}

// TimelapseGraph turns numbered JPEG frames (pattern like
// /media/tl/frame-%06d.jpg) into an H.264 MP4 at fps frames per second.
func TimelapseGraph(pattern string, fps int, out string) Graph {
	return Graph{Chains: []Chain{{Elems: []Elem{
		el("multifilesrc", "src", p("location", pattern), p("index", 0), p("caps", fmt.Sprintf("image/jpeg,framerate=%d/1", fps))),
		el("jpegdec", "dec"),
		el("videoconvert", "conv"),
		caps("i420", "video/x-raw,format=I420"),
		el("x264enc", "enc", p("speed-preset", "veryfast"), p("key-int-max", fps*2)),
		caps("h264caps", "video/x-h264,profile=main"),
		el("h264parse", "parse"),
		el("mp4mux", "mux"),
		el("filesink", "sink", p("location", out)),
	}}}}
}
