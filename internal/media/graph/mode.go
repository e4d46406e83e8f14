package graph

import (
	"fmt"
	"strings"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/v4l2"
)

// Choice is the camera mode a V4L2 capture asks for: the source caps are
// exactly this, and the graph adapts it to the configured output.
type Choice struct {
	Format        v4l2.Format
	FourCC        string // as the driver names it ("YUYV", "MJPG", "JPEG", "H264")
	Width, Height int
	// Rate is the zero Rate when the driver does not list its rates; the
	// source caps then leave the rate to the camera.
	Rate v4l2.Rate
}

// String gives the mode in words: "mjpeg 640x480@15", "raw 1280x720@12.5".
func (c Choice) String() string {
	s := fmt.Sprintf("%s %dx%d", c.Format, c.Width, c.Height)
	if c.Rate.Known() {
		s += "@" + c.Rate.String()
	}
	return s
}

// Caps are the source caps of the mode.
func (c Choice) Caps() string {
	var s string
	switch c.Format {
	case v4l2.Raw:
		s = "video/x-raw,format=" + v4l2.GstFormat(c.FourCC)
	case v4l2.MJPEG:
		s = "image/jpeg"
	case v4l2.H264:
		s = "video/x-h264"
	}
	s += fmt.Sprintf(",width=%d,height=%d", c.Width, c.Height)
	if c.Rate.Known() {
		s += fmt.Sprintf(",framerate=%d/%d", c.Rate.Num, c.Rate.Den)
	}
	return s
}

// validate checks a choice before it goes into caps: it comes from a
// device, and only sane numbers and known formats may reach the pipeline.
func (c Choice) validate() error {
	switch c.Format {
	case v4l2.Raw:
		if v4l2.GstFormat(c.FourCC) == "" {
			return fmt.Errorf("graph: camera pixel format %q cannot be converted", c.FourCC)
		}
	case v4l2.MJPEG, v4l2.H264:
	default:
		return fmt.Errorf("graph: unknown camera format %q", c.Format)
	}
	if c.Width < 1 || c.Width > 16384 || c.Height < 1 || c.Height > 16384 {
		return fmt.Errorf("graph: camera size %dx%d out of range", c.Width, c.Height)
	}
	if c.Rate != (v4l2.Rate{}) && (!c.Rate.Known() || c.Rate.Num > 1_000_000 || c.Rate.Den > 1_000_000) {
		return fmt.Errorf("graph: camera frame rate %d/%d out of range", c.Rate.Num, c.Rate.Den)
	}
	return nil
}

// USB2RawPixelRate is the most raw video, in pixels per second, that the
// choice trusts a USB camera to deliver: 640x480 at 30 fps. As YUYV (2
// bytes a pixel) that is 18.4 MB/s; one high-bandwidth isochronous USB 2
// endpoint carries at most 24.6 MB/s (3 x 1024 bytes per 125 µs
// microframe), and on a Pi 0-3 the one USB 2 bus is shared with Ethernet
// and every other USB device. Above it, a USB camera's MJPEG is preferred
// to its raw mode when both fit.
const USB2RawPixelRate = 640 * 480 * 30

// ChooseMode picks the camera mode for v from what the camera offers (usb:
// the camera sits on USB).
//
// The input format narrows the candidates: raw, mjpeg or h264 require that
// format. agent.InputAuto takes raw and MJPEG modes, or the camera's H.264 when
// v.PreferH264 is set and the camera has it (or when the camera has
// nothing else).
//
// Among the candidates (every listed rate of every mode), in this order:
//
//  1. rate: a mode that delivers at least v.FPS; else one within 3/4 of
//     it (25 for 30); else one whose rate is not listed; else the fastest.
//  2. size: one that covers the configured size (scaling down beats
//     scaling up); else the one that needs the least upscaling.
//  3. on USB, no raw mode above USB2RawPixelRate (see there).
//  4. of covering sizes the smallest; of the others the largest.
//  5. format: raw beats MJPEG (no JPEG decode), and among raw layouts the
//     one cheapest to turn into I420.
//  6. the lowest rate that meets v.FPS (no frames made only to be
//     dropped), or else the fastest.
//
// H.264 cannot be scaled or rate-adapted without re-encoding, so an H.264
// mode is ranked by rate and then by how close its size is to the
// configured one; the stream then has the camera's size and rate.
//
// When the camera cannot match the configured output, the capture graph
// scales (keeping the aspect ratio, with black borders) and duplicates or
// drops frames to reach it. When no mode fits the request at all, the
// error names what the camera offers.
func ChooseMode(offered []v4l2.Mode, v agent.VideoSpec, usb bool) (Choice, error) {
	if v.Width <= 0 || v.Height <= 0 || v.FPS <= 0 {
		return Choice{}, fmt.Errorf("graph: output %dx%d@%d is not a video size", v.Width, v.Height, v.FPS)
	}
	byFormat := map[v4l2.Format][]Choice{}
	for _, m := range offered {
		if m.Width <= 0 || m.Height <= 0 {
			continue
		}
		if f, ok := v4l2.Classify(m.FourCC); !ok || f != m.Format {
			continue
		}
		c := Choice{Format: m.Format, FourCC: m.FourCC, Width: m.Width, Height: m.Height}
		known := false
		for _, r := range m.Rates {
			if r.Known() {
				c.Rate, known = r, true
				byFormat[m.Format] = append(byFormat[m.Format], c)
			}
		}
		if !known {
			byFormat[m.Format] = append(byFormat[m.Format], c)
		}
	}
	var pool []Choice
	switch v.Input {
	case agent.InputRaw, agent.InputMJPEG, agent.InputH264:
		f := v4l2.Format(v.Input)
		if pool = byFormat[f]; len(pool) == 0 {
			return Choice{}, fmt.Errorf("graph: %s offers no %s; it offers %s", v.Device, formatName(f), describe(offered))
		}
	case agent.InputAuto:
		pool = append(append(pool, byFormat[v4l2.Raw]...), byFormat[v4l2.MJPEG]...)
		if h := byFormat[v4l2.H264]; len(h) > 0 && (v.PreferH264 || len(pool) == 0) {
			pool = h
		}
		if len(pool) == 0 {
			return Choice{}, fmt.Errorf("graph: %s offers no usable video mode; it offers %s", v.Device, describe(offered))
		}
	default:
		return Choice{}, fmt.Errorf("graph: unknown input format %q", v.Input)
	}
	best := pool[0]
	for _, c := range pool[1:] {
		if better(c, best, v, usb) {
			best = c
		}
	}
	return best, nil
}

// Rate tiers, best first.
const (
	tierSlow = iota
	tierUnknown
	tierClose
	tierMeets
)

func tier(r v4l2.Rate, fps int) int {
	switch {
	case !r.Known():
		return tierUnknown
	case r.Cmp(v4l2.Rate{Num: fps, Den: 1}) >= 0:
		return tierMeets
	case r.Cmp(v4l2.Rate{Num: 3 * fps, Den: 4}) >= 0:
		return tierClose
	}
	return tierSlow
}

// better reports whether a ranks above b (see ChooseMode).
func better(a, b Choice, v agent.VideoSpec, usb bool) bool {
	ta, tb := tier(a.Rate, v.FPS), tier(b.Rate, v.FPS)
	if ta != tb {
		return ta > tb
	}
	if ta == tierSlow {
		if c := a.Rate.Cmp(b.Rate); c != 0 {
			return c > 0
		}
	}
	area := func(c Choice) int { return c.Width * c.Height }
	if a.Format == v4l2.H264 || b.Format == v4l2.H264 {
		// Sizes are final: the closest wins, the larger on a tie.
		if da, db := sizeDistance(a, v), sizeDistance(b, v); da != db {
			return da < db
		}
		if area(a) != area(b) {
			return area(a) > area(b)
		}
		return fasterBetter(a, b, ta)
	}
	ca, cb := covers(a, v), covers(b, v)
	if ca != cb {
		return ca
	}
	ha, hb := usb && heavy(a, v), usb && heavy(b, v)
	if ha != hb {
		return hb
	}
	if ca {
		if area(a) != area(b) {
			return area(a) < area(b)
		}
	} else {
		// The least upscaling: the larger share of the output the picture
		// fills in its tighter dimension.
		if sa, sb := fill(a, v), fill(b, v); sa != sb {
			return sa > sb
		}
		if area(a) != area(b) {
			return area(a) > area(b)
		}
	}
	if ka, kb := formatCost(a), formatCost(b); ka != kb {
		return ka < kb
	}
	return fasterBetter(a, b, ta)
}

// fasterBetter breaks the last tie: in the meets tier the lowest rate that
// still meets, else the fastest.
func fasterBetter(a, b Choice, t int) bool {
	if !a.Rate.Known() || !b.Rate.Known() {
		return false
	}
	if t == tierMeets {
		return a.Rate.Cmp(b.Rate) < 0
	}
	return a.Rate.Cmp(b.Rate) > 0
}

func covers(c Choice, v agent.VideoSpec) bool { return c.Width >= v.Width && c.Height >= v.Height }

// fill is min(w/W, h/H) scaled to an integer (parts per 10^6): how much of
// the output the camera's picture fills before upscaling.
func fill(c Choice, v agent.VideoSpec) int64 {
	return min(int64(c.Width)*1_000_000/int64(v.Width), int64(c.Height)*1_000_000/int64(v.Height))
}

func sizeDistance(c Choice, v agent.VideoSpec) int {
	return abs(c.Width-v.Width) + abs(c.Height-v.Height)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// heavy reports a raw mode above what USB 2 sustains (see USB2RawPixelRate).
func heavy(c Choice, v agent.VideoSpec) bool {
	if c.Format != v4l2.Raw {
		return false
	}
	fps := float64(v.FPS)
	if c.Rate.Known() {
		fps = c.Rate.FPS()
	}
	return float64(c.Width*c.Height)*fps > USB2RawPixelRate
}

// formatCost ranks formats by the work to get 8-bit I420 from them: I420
// itself, other 4:2:0 layouts, packed and planar 4:2:2, 4:4:4, RGB, grey
// (which has no colour at all), and MJPEG (a JPEG decode per frame) last.
func formatCost(c Choice) int {
	if c.Format != v4l2.Raw {
		return 100
	}
	switch v4l2.GstFormat(c.FourCC) {
	case "I420":
		return 0
	case "YV12":
		return 1
	case "NV12":
		return 2
	case "NV21":
		return 3
	case "YUY2":
		return 10
	case "UYVY":
		return 11
	case "YVYU":
		return 12
	case "Y42B":
		return 13
	case "NV16", "NV61":
		return 14
	case "Y41B":
		return 15
	case "NV24":
		return 20
	case "GRAY8":
		return 50
	}
	return 30 // RGB layouts
}

func formatName(f v4l2.Format) string {
	switch f {
	case v4l2.Raw:
		return "raw video"
	case v4l2.MJPEG:
		return "MJPEG"
	case v4l2.H264:
		return "H.264"
	}
	return string(f)
}

// describe lists what a camera offers, for error messages: each mode at
// its fastest rate, at most a dozen.
func describe(offered []v4l2.Mode) string {
	const most = 12
	if len(offered) == 0 {
		return "no modes at all"
	}
	var parts []string
	for i, m := range offered {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(offered)-most))
			break
		}
		parts = append(parts, m.String())
	}
	return strings.Join(parts, ", ")
}
