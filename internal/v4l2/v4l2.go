// Package v4l2 asks a Video4Linux2 device what it is and which modes it can
// deliver, with the kernel's own ioctls (VIDIOC_QUERYCAP, VIDIOC_ENUM_FMT,
// VIDIOC_ENUM_FRAMESIZES, VIDIOC_ENUM_FRAMEINTERVALS) and nothing but the
// standard library.
//
// Only formats that GStreamer's v4l2src can hand on are reported: raw
// layouts it turns into video/x-raw (YUYV, NV12, I420, RGB, grey...), JPEG
// (MJPG, JPEG) and H.264. Bayer, 10-bit, vendor and other compressed formats
// are left out, so that a caller never picks a mode the pipeline cannot use.
//
// The structures mirror include/uapi/linux/videodev2.h. They hold only
// 32-bit fields, so their layout (and with it the ioctl numbers, which
// encode the structure size) is the same on amd64, arm64 and 32-bit ARM;
// the tests assert the sizes and numbers. The ioctl number encoding used
// (_IOC with 2 direction bits at 30, 14 size bits at 16) is the generic one
// of x86, ARM and arm64; it differs on mips, powerpc, sparc and alpha,
// which this package does not support.
package v4l2

import (
	"fmt"
	"strconv"
	"strings"
)

// Device capability bits (V4L2_CAP_*).
const (
	CapVideoCapture       = 0x00000001
	CapVideoOutput        = 0x00000002
	CapVideoCaptureMPlane = 0x00001000
	CapVideoOutputMPlane  = 0x00002000
	CapVideoM2MMPlane     = 0x00004000
	CapVideoM2M           = 0x00008000
	CapMetaCapture        = 0x00800000
	CapReadWrite          = 0x01000000
	CapStreaming          = 0x04000000
	CapDeviceCaps         = 0x80000000
)

// Capability is what VIDIOC_QUERYCAP says about a device node.
type Capability struct {
	Driver  string // "uvcvideo", "vivid", "v4l2 loopback", "unicam"
	Card    string // "HD Pro Webcam C920", "vivid", "OBS Virtual Camera"
	BusInfo string // "usb-0000:01:00.0-1.3", "platform:vivid-000"
	Version uint32
	// Capabilities are those of the whole physical device; DeviceCaps
	// those of this node (valid when Capabilities has CapDeviceCaps).
	Capabilities, DeviceCaps uint32
}

// Caps returns the capabilities of this node: DeviceCaps when the driver
// fills them in, else the device-wide Capabilities (drivers older than
// Linux 3.4).
func (c Capability) Caps() uint32 {
	if c.Capabilities&CapDeviceCaps != 0 {
		return c.DeviceCaps
	}
	return c.Capabilities
}

// CanCapture reports whether this node is a streaming video capture device,
// that is something v4l2src can take pictures from.
//
// Multi-planar capture nodes count: v4l2src drives them like single-planar
// ones (it picks the buffer type from these same bits), and SoC capture
// units (Rockchip ISP, some CSI receivers) only offer that kind. Memory-to-
// memory nodes (the Pi's bcm2835-codec encoders and decoders, which some old
// drivers also mark as capture) do not count, and neither do metadata nodes
// (the second node each UVC camera has) or output-only nodes such as a
// v4l2loopback device with exclusive_caps=1 and no writer.
func (c Capability) CanCapture() bool {
	caps := c.Caps()
	if caps&(CapVideoM2M|CapVideoM2MMPlane) != 0 {
		return false
	}
	return caps&(CapVideoCapture|CapVideoCaptureMPlane) != 0 && caps&CapStreaming != 0
}

// USB reports whether the device sits on USB (a webcam) rather than on
// the SoC or a PCI card: uvcvideo's bus info starts with "usb-".
func (c Capability) USB() bool { return strings.HasPrefix(c.BusInfo, "usb-") }

// Format is how a mode's pictures are coded.
type Format string

const (
	Raw   Format = "raw"   // uncompressed frames (YUYV, NV12, ...)
	MJPEG Format = "mjpeg" // one JPEG per frame
	H264  Format = "h264"  // the camera's own H.264 encoder
)

// Rate is a frame rate as a fraction, frames per second = Num/Den: 30/1,
// 25/2 (12.5 fps), 15/2 (7.5 fps), 30000/1001 (29.97 fps). The zero Rate
// means "not known".
type Rate struct {
	Num, Den int
}

// Known reports whether r is a valid rate.
func (r Rate) Known() bool { return r.Num > 0 && r.Den > 0 }

// FPS is the rate in frames per second.
func (r Rate) FPS() float64 {
	if !r.Known() {
		return 0
	}
	return float64(r.Num) / float64(r.Den)
}

// Cmp compares two known rates by value: -1 if r is slower than o, 0 if
// equal, +1 if faster.
func (r Rate) Cmp(o Rate) int {
	a, b := int64(r.Num)*int64(o.Den), int64(o.Num)*int64(r.Den)
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String gives the rate in frames per second: "30", "12.5", "29.97".
func (r Rate) String() string {
	if !r.Known() {
		return "?"
	}
	if r.Num%r.Den == 0 {
		return strconv.Itoa(r.Num / r.Den)
	}
	s := strings.TrimRight(strconv.FormatFloat(r.FPS(), 'f', 2, 64), "0")
	return strings.TrimSuffix(s, ".")
}

// Mode is one picture size of one format, with the frame rates the device
// offers at that size.
type Mode struct {
	Format Format
	// FourCC is the pixel format as the driver names it: "YUYV", "NV12",
	// "MJPG" (a real C270), "JPEG" (v4l2loopback), "H264".
	FourCC        string
	Width, Height int
	// Rates are fastest first. Empty when the driver does not enumerate
	// frame intervals (the rate is then whatever the device runs at).
	Rates []Rate
}

// GstFormat is GStreamer's name for a raw mode's pixel layout, the format
// field of its video/x-raw caps ("YUY2" for YUYV, "I420" for YU12). It is
// empty for MJPEG and H.264 modes.
func (m Mode) GstFormat() string { return GstFormat(m.FourCC) }

// MaxRate is the fastest rate of m (the zero Rate when none is known).
func (m Mode) MaxRate() Rate {
	if len(m.Rates) == 0 {
		return Rate{}
	}
	return m.Rates[0]
}

// String gives the mode as "YUYV 640x480@30" (fastest rate), "MJPEG ..."
// or "H.264 ...".
func (m Mode) String() string {
	name := m.FourCC
	switch m.Format {
	case MJPEG:
		name = "MJPEG"
	case H264:
		name = "H.264"
	}
	s := fmt.Sprintf("%s %dx%d", name, m.Width, m.Height)
	if r := m.MaxRate(); r.Known() {
		s += "@" + r.String()
	}
	return s
}

// Classify tells how a fourcc is coded and whether GStreamer's v4l2src can
// deliver it in a form the agent's pipeline takes (raw layouts that
// videoconvert reads, JPEG, H.264).
func Classify(fourcc string) (Format, bool) {
	switch fourcc {
	case "MJPG", "JPEG":
		return MJPEG, true
	case "H264", "AVC1":
		return H264, true
	}
	if GstFormat(fourcc) != "" {
		return Raw, true
	}
	return "", false
}

// GstFormat maps a raw V4L2 fourcc to GStreamer's video format name, the
// way gst-plugins-good's gstv4l2object.c (v4l2fourcc_to_video_format) does;
// "" when the fourcc is not one of these raw layouts. The "M" variants are
// the multi-planar (non-contiguous) layouts of the same formats.
func GstFormat(fourcc string) string {
	switch fourcc {
	case "YUYV":
		return "YUY2"
	case "UYVY":
		return "UYVY"
	case "YVYU":
		return "YVYU"
	case "NV12", "NM12":
		return "NV12"
	case "NV21", "NM21":
		return "NV21"
	case "NV16", "NM16":
		return "NV16"
	case "NV61", "NM61":
		return "NV61"
	case "NV24":
		return "NV24"
	case "YU12", "YM12":
		return "I420"
	case "YV12", "YM21":
		return "YV12"
	case "422P":
		return "Y42B"
	case "411P":
		return "Y41B"
	case "GREY":
		return "GRAY8"
	case "RGB3":
		return "RGB"
	case "BGR3":
		return "BGR"
	case "RGBP":
		return "RGB16"
	case "XR24", "BGR4": // XBGR32, BGR32: bytes B, G, R, x
		return "BGRx"
	case "AR24": // ABGR32
		return "BGRA"
	case "BX24", "RGB4": // XRGB32, RGB32: bytes x, R, G, B
		return "xRGB"
	case "BA24": // ARGB32
		return "ARGB"
	case "XB24": // RGBX32
		return "RGBx"
	case "AB24": // RGBA32
		return "RGBA"
	}
	return ""
}

// fourccString turns a pixel format code into its four letters, trailing
// spaces removed ("Y16 " -> "Y16"); unprintable codes come out in hex.
func fourccString(code uint32) string {
	b := []byte{byte(code), byte(code >> 8), byte(code >> 16), byte(code >> 24)}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("0x%08x", code)
		}
	}
	return strings.TrimRight(string(b), " ")
}
