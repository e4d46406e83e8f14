package agent

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// The vocabulary of cameras and what is made of them. The media adapter
// (internal/media) builds pipelines from these values; they are validated
// here, so that the pipelines hold only known-safe values.

// VideoSource says where pictures come from.
type VideoSource string

const (
	VideoTest      VideoSource = "test"      // moving test pattern
	VideoV4L2      VideoSource = "v4l2"      // USB webcam (C270, C920, ...)
	VideoLibcamera VideoSource = "libcamera" // Pi camera module
)

// InputFormat is what a V4L2 camera is asked to deliver. An explicit format
// is required (the capture fails when the camera lacks it); auto picks the
// best mode the camera offers.
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

// CaptureSpec is everything needed to open one camera: its source, one
// H.264 and one AAC encoder, and the output slots its consumers attach to.
type CaptureSpec struct {
	Video VideoSpec
	Audio AudioSpec
	// Slots is how many outputs (destinations, a recording) can be attached
	// at once; the agent counts them (consumerSlots).
	Slots int
	// StallTimeout ends a capture whose camera delivered frames and then
	// none for this long (0: never). A frozen camera or a dead writer
	// behind a loopback device gives no error of its own.
	StallTimeout time.Duration
}

// X264Presets are the x264 speed presets offered. ultrafast gives
// Constrained Baseline (no CABAC, no B-frames); the others give Main.
var X264Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast"}

var (
	devicePattern = regexp.MustCompile(`^/dev/[A-Za-z0-9/_.:-]{1,128}$`)
	alsaPattern   = regexp.MustCompile(`^[A-Za-z0-9_:,=.-]{1,64}$`)
	libcamPattern = regexp.MustCompile(`^[A-Za-z0-9 /_:.@-]{0,128}$`)
)

// ValidDevicePath reports whether s can name a V4L2 node: a /dev path,
// udev's by-id and by-path links included (they hold colons).
func ValidDevicePath(s string) bool { return devicePattern.MatchString(s) }

// ValidALSADevice reports whether s can name an ALSA capture device
// (hw:1,0, plughw:CARD=C920,DEV=0, null).
func ValidALSADevice(s string) bool { return alsaPattern.MatchString(s) }

// ValidLibcameraName reports whether s can name a libcamera camera ("" is
// the first one).
func ValidLibcameraName(s string) bool { return libcamPattern.MatchString(s) }

// Validate checks every field of the spec.
func (s CaptureSpec) Validate() error {
	v, a := s.Video, s.Audio
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("agent: "+format, args...)) }
	switch v.Source {
	case VideoTest:
	case VideoV4L2:
		if !ValidDevicePath(v.Device) {
			add("video device %q is not a /dev path", v.Device)
		}
		switch v.Input {
		case InputAuto, InputRaw, InputMJPEG, InputH264:
		default:
			add("unknown input format %q (auto, raw, mjpeg, h264)", v.Input)
		}
	case VideoLibcamera:
		if !ValidLibcameraName(v.Device) {
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
	if !contains(X264Presets, v.Preset) {
		add("unknown x264 preset %q", v.Preset)
	}
	switch a.Source {
	case AudioTest, AudioSilence:
	case AudioALSA:
		if !ValidALSADevice(a.Device) {
			add("alsa device %q has unexpected characters", a.Device)
		}
	default:
		add("unknown audio source %q", a.Source)
	}
	if a.BitrateKbps < 32 || a.BitrateKbps > 320 {
		add("audio bitrate %d kbit/s must be within 32..320", a.BitrateKbps)
	}
	if s.Slots < 1 || s.Slots > 32 {
		add("slots %d must be within 1..32", s.Slots)
	}
	if s.StallTimeout < 0 {
		add("stall timeout %s must not be negative", s.StallTimeout)
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Resolved is what the media adapter chose when it opened a camera, for
// state reports.
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

// SnapshotOptions describe one snapshot: output size (0 keeps the camera's;
// one of them 0 keeps the aspect ratio) and JPEG quality.
type SnapshotOptions struct {
	Width, Height int
	Quality       int
}

// Validate checks a snapshot request.
func (o SnapshotOptions) Validate() error {
	switch {
	case o.Width != 0 && (o.Width < 16 || o.Width > 3840):
		return fmt.Errorf("agent: snapshot width %d must be within 16..3840", o.Width)
	case o.Height != 0 && (o.Height < 16 || o.Height > 2160):
		return fmt.Errorf("agent: snapshot height %d must be within 16..2160", o.Height)
	case o.Quality < 1 || o.Quality > 100:
		return fmt.Errorf("agent: JPEG quality %d must be within 1..100", o.Quality)
	}
	return nil
}

// Picture is one JPEG snapshot.
type Picture struct {
	JPEG          []byte
	Width, Height int
	// Taken is when the frame was pulled from the capture.
	Taken time.Time
}
