package v4l2

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// The kernel's sizes (pahole on videodev2.h; identical on x86_64, arm64
// and armhf because every member is a __u32 or a __u8 array).
func TestStructLayout(t *testing.T) {
	cases := []struct {
		name      string
		got, want uintptr
	}{
		{"v4l2_capability", unsafe.Sizeof(capability{}), 104},
		{"v4l2_fmtdesc", unsafe.Sizeof(fmtdesc{}), 64},
		{"v4l2_frmsizeenum", unsafe.Sizeof(frmsizeenum{}), 44},
		{"v4l2_frmivalenum", unsafe.Sizeof(frmivalenum{}), 52},
		{"v4l2_fmtdesc.pixelformat offset", unsafe.Offsetof(fmtdesc{}.PixelFormat), 44},
		{"v4l2_frmsizeenum union offset", unsafe.Offsetof(frmsizeenum{}.Union), 12},
		{"v4l2_frmivalenum union offset", unsafe.Offsetof(frmivalenum{}.Union), 20},
		{"v4l2_capability.device_caps offset", unsafe.Offsetof(capability{}.DeviceCaps), 88},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, kernel has %d", c.name, c.got, c.want)
		}
	}
	for _, v := range []any{capability{}, fmtdesc{}, frmsizeenum{}, frmivalenum{}} {
		if a := reflect.TypeOf(v).Align(); a != 4 {
			t.Errorf("%T aligned to %d, want 4", v, a)
		}
	}
}

func TestIoctlNumbers(t *testing.T) {
	cases := []struct {
		name      string
		got, want uintptr
	}{
		{"VIDIOC_QUERYCAP", vidiocQueryCap, 0x80685600},
		{"VIDIOC_ENUM_FMT", vidiocEnumFmt, 0xc0405602},
		{"VIDIOC_ENUM_FRAMESIZES", vidiocEnumFrameSizes, 0xc02c564a},
		{"VIDIOC_ENUM_FRAMEINTERVALS", vidiocEnumFrameIntervals, 0xc034564b},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// The real open and ioctl path, on things that are not cameras.
func TestQueryCapOnNonDevices(t *testing.T) {
	_, err := QueryCap("/dev/null")
	if !errors.Is(err, syscall.ENOTTY) || !strings.HasPrefix(err.Error(), "v4l2: /dev/null: VIDIOC_QUERYCAP: ") {
		t.Errorf("/dev/null: %v, want ENOTTY from VIDIOC_QUERYCAP", err)
	}
	file := filepath.Join(t.TempDir(), "video0")
	if err := os.WriteFile(file, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := Modes(file); !errors.Is(err, syscall.ENOTTY) {
		t.Errorf("regular file: %v, want ENOTTY", err)
	}
	missing := filepath.Join(t.TempDir(), "video9")
	_, err = QueryCap(missing)
	if !errors.Is(err, syscall.ENOENT) || err.Error() != "v4l2: "+missing+": open: no such file or directory" {
		t.Errorf("missing node: %v", err)
	}
}

// fakeDriver answers the four ioctls like a driver would.
type fakeDriver struct {
	card     string
	caps     uint32 // device caps
	bufType  uint32
	formats  []string
	sizes    map[string][]frmsizeenum
	ivals    func(fourcc string, w, h uint32) []frmivalenum
	noIvals  bool
	ioctlErr error // returned by ENUM_FRAMESIZES
}

func code(fourcc string) uint32 {
	b := []byte(fourcc + "    ")
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func (f *fakeDriver) ioctl(req uintptr, arg unsafe.Pointer) error {
	switch req {
	case vidiocQueryCap:
		c := (*capability)(arg)
		copy(c.Driver[:], "fake")
		copy(c.Card[:], f.card)
		copy(c.BusInfo[:], "usb-0000:00:14.0-1")
		c.Capabilities, c.DeviceCaps = f.caps|CapDeviceCaps, f.caps
	case vidiocEnumFmt:
		d := (*fmtdesc)(arg)
		if d.Type != f.bufType || int(d.Index) >= len(f.formats) {
			return syscall.EINVAL
		}
		d.PixelFormat = code(f.formats[d.Index])
	case vidiocEnumFrameSizes:
		if f.ioctlErr != nil {
			return f.ioctlErr
		}
		s := (*frmsizeenum)(arg)
		list := f.sizes[fourccString(s.PixelFormat)]
		if int(s.Index) >= len(list) {
			return syscall.EINVAL
		}
		i, pf := s.Index, s.PixelFormat
		*s = list[i]
		s.Index, s.PixelFormat = i, pf
	case vidiocEnumFrameIntervals:
		if f.noIvals {
			return syscall.ENOTTY
		}
		iv := (*frmivalenum)(arg)
		list := f.ivals(fourccString(iv.PixelFormat), iv.Width, iv.Height)
		if int(iv.Index) >= len(list) {
			return syscall.EINVAL
		}
		i, pf, w, h := iv.Index, iv.PixelFormat, iv.Width, iv.Height
		*iv = list[i]
		iv.Index, iv.PixelFormat, iv.Width, iv.Height = i, pf, w, h
	default:
		return syscall.ENOTTY
	}
	return nil
}

func discrete(w, h uint32) frmsizeenum {
	return frmsizeenum{Type: frmsizeDiscrete, Union: [6]uint32{w, h}}
}

func interval(num, den uint32) frmivalenum {
	return frmivalenum{Type: frmivalDiscrete, Union: [6]uint32{num, den}}
}

func intervals(fps ...uint32) []frmivalenum {
	var out []frmivalenum
	for _, f := range fps {
		out = append(out, interval(1, f))
	}
	return out
}

// A C270 as uvcvideo lists it (shortened): raw YUYV up to 30 fps only at
// small sizes, MJPEG at 30 fps up to 720p; a Bayer format it cannot use.
func c270() *fakeDriver {
	return &fakeDriver{
		card: "UVC Camera (046d:0825)", caps: CapVideoCapture | CapStreaming, bufType: bufTypeVideoCapture,
		formats: []string{"YUYV", "MJPG", "BA81"},
		sizes: map[string][]frmsizeenum{
			"YUYV": {discrete(640, 480), discrete(1280, 720), discrete(640, 480)},
			"MJPG": {discrete(640, 480), discrete(1280, 720)},
			"BA81": {discrete(640, 480)},
		},
		ivals: func(fourcc string, w, h uint32) []frmivalenum {
			if fourcc == "YUYV" && w == 1280 {
				return []frmivalenum{interval(2, 15), interval(1, 5)}
			}
			return intervals(30, 25, 20, 15, 10, 5)
		},
	}
}

func TestModesFromDiscreteDriver(t *testing.T) {
	got, err := modes(c270().ioctl)
	if err != nil {
		t.Fatal(err)
	}
	six := []Rate{{30, 1}, {25, 1}, {20, 1}, {15, 1}, {10, 1}, {5, 1}}
	want := []Mode{
		{Format: Raw, FourCC: "YUYV", Width: 640, Height: 480, Rates: six}, // listed twice: merged
		{Format: Raw, FourCC: "YUYV", Width: 1280, Height: 720, Rates: []Rate{{15, 2}, {5, 1}}},
		{Format: MJPEG, FourCC: "MJPG", Width: 640, Height: 480, Rates: six},
		{Format: MJPEG, FourCC: "MJPG", Width: 1280, Height: 720, Rates: six},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("modes\n got %+v\nwant %+v", got, want)
	}
}

// vivid: raw only, a frame-rate ceiling per size, 12.5 fps as 2/25 s.
func TestModesFractionalRates(t *testing.T) {
	d := &fakeDriver{
		card: "vivid", caps: CapVideoCapture | CapStreaming, bufType: bufTypeVideoCapture,
		formats: []string{"YUYV"},
		sizes:   map[string][]frmsizeenum{"YUYV": {discrete(1280, 720)}},
		ivals: func(string, uint32, uint32) []frmivalenum {
			return []frmivalenum{interval(2, 25), interval(1, 10), interval(1001, 30000), interval(0, 1)}
		},
	}
	got, err := modes(d.ioctl)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Rate{{30000, 1001}, {25, 2}, {10, 1}}; len(got) != 1 || !reflect.DeepEqual(got[0].Rates, want) {
		t.Errorf("rates %+v, want %v (a 0/1 interval dropped)", got, want)
	}
}

// A CSI receiver: stepwise sizes, continuous intervals; multi-planar.
func TestModesSampleRanges(t *testing.T) {
	d := &fakeDriver{
		card: "rkisp", caps: CapVideoCaptureMPlane | CapStreaming, bufType: bufTypeVideoCaptureMPlane,
		formats: []string{"NM12"},
		sizes: map[string][]frmsizeenum{"NM12": {{Type: frmsizeStepwise,
			Union: [6]uint32{32, 1920, 8, 16, 1080, 8}}}},
		ivals: func(_ string, w, h uint32) []frmivalenum {
			return []frmivalenum{{Type: frmivalContinuous, Union: [6]uint32{1, 60, 1, 5, 1, 60}}}
		},
	}
	got, err := modes(d.ioctl)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []string
	for _, m := range got {
		sizes = append(sizes, m.String())
		if m.Format != Raw || m.GstFormat() != "NV12" {
			t.Errorf("%+v", m)
		}
	}
	// Heights must be 16 + a multiple of 8: 180, 540 and 900 are not, so
	// 320x180, 960x540 and 1600x900 are left out; 1600x1200 and larger do
	// not fit; the largest size comes last.
	want := "NM12 160x120@60 NM12 320x240@60 NM12 352x288@60 NM12 640x360@60 NM12 640x480@60 NM12 800x600@60 " +
		"NM12 1024x576@60 NM12 1024x768@60 NM12 1280x720@60 NM12 1280x960@60 NM12 1920x1080@60"
	if strings.Join(sizes, " ") != want {
		t.Errorf("sizes\n got %s\nwant %s", strings.Join(sizes, " "), want)
	}
	wantRates := []Rate{{60, 1}, {50, 1}, {30, 1}, {25, 1}, {24, 1}, {20, 1}, {15, 1}, {25, 2}, {10, 1}, {15, 2}, {5, 1}}
	if !reflect.DeepEqual(got[0].Rates, wantRates) {
		t.Errorf("rates %v, want %v", got[0].Rates, wantRates)
	}
}

func TestSampleStepwiseRates(t *testing.T) {
	// 1/30 s to 1/5 s in steps of 1/30 s: 30, 15, 10, 7.5, 6, 5 fps are on
	// the grid; of the common rates 30, 15, 10, 7.5 and 5 are.
	got := sampleRates(false, [6]uint32{1, 30, 1, 5, 1, 30})
	want := []Rate{{30, 1}, {15, 1}, {10, 1}, {15, 2}, {5, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestModesUnknownRatesAndErrors(t *testing.T) {
	d := c270()
	d.noIvals = true
	got, err := modes(d.ioctl)
	if err != nil || len(got) != 4 || got[0].Rates != nil || got[0].String() != "YUYV 640x480" {
		t.Errorf("driver without intervals: %+v %v", got, err)
	}

	d = c270()
	d.formats = []string{"BA81", "Y10 "}
	if _, err := modes(d.ioctl); err == nil || !strings.Contains(err.Error(), "no format GStreamer can use here (it offers [BA81 Y10])") {
		t.Errorf("bayer-only camera: %v", err)
	}

	d = c270()
	d.caps = CapVideoOutput | CapStreaming
	d.card = "OBS Virtual Camera"
	if _, err := modes(d.ioctl); err == nil || !strings.Contains(err.Error(), `"OBS Virtual Camera" (fake) is not a video capture device`) {
		t.Errorf("output-only loopback: %v", err)
	}

	d = c270()
	d.ioctlErr = syscall.EIO
	if _, err := modes(d.ioctl); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "YUYV: VIDIOC_ENUM_FRAMESIZES 0: ") {
		t.Errorf("failing driver: %v", err)
	}
}
