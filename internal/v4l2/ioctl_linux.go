package v4l2

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"syscall"
	"unsafe"
)

// The UAPI structures (include/uapi/linux/videodev2.h). Every field is 32
// bits wide or a byte array, so Go lays them out exactly as C does on
// 64-bit and 32-bit ARM and x86 alike (no padding, 4-byte alignment).

// capability is struct v4l2_capability (104 bytes).
type capability struct {
	Driver       [16]uint8
	Card         [32]uint8
	BusInfo      [32]uint8
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

// fmtdesc is struct v4l2_fmtdesc (64 bytes). MbusCode was reserved[0]
// before Linux 5.10; it is an input (0: any) either way.
type fmtdesc struct {
	Index       uint32
	Type        uint32
	Flags       uint32
	Description [32]uint8
	PixelFormat uint32
	MbusCode    uint32
	Reserved    [3]uint32
}

// frmsizeenum is struct v4l2_frmsizeenum (44 bytes). Its anonymous union
// holds v4l2_frmsize_discrete {width, height} or v4l2_frmsize_stepwise
// {min_width, max_width, step_width, min_height, max_height, step_height}.
type frmsizeenum struct {
	Index       uint32
	PixelFormat uint32
	Type        uint32
	Union       [6]uint32
	Reserved    [2]uint32
}

// frmivalenum is struct v4l2_frmivalenum (52 bytes). Its anonymous union
// holds a v4l2_fract {numerator, denominator} (discrete) or
// v4l2_frmival_stepwise {min, max, step}, each a v4l2_fract. Intervals are
// seconds per frame.
type frmivalenum struct {
	Index       uint32
	PixelFormat uint32
	Width       uint32
	Height      uint32
	Type        uint32
	Union       [6]uint32
	Reserved    [2]uint32
}

const (
	bufTypeVideoCapture       = 1 // V4L2_BUF_TYPE_VIDEO_CAPTURE
	bufTypeVideoCaptureMPlane = 9 // V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE

	frmsizeDiscrete   = 1 // V4L2_FRMSIZE_TYPE_*
	frmsizeContinuous = 2
	frmsizeStepwise   = 3

	frmivalDiscrete   = 1 // V4L2_FRMIVAL_TYPE_*
	frmivalContinuous = 2
	frmivalStepwise   = 3
)

// ioctl request numbers: _IOC(dir, type, nr, size) of asm-generic/ioctl.h.
const (
	iocWrite     = 1
	iocRead      = 2
	iocNRShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30

	// VIDIOC_QUERYCAP = _IOR('V', 0, struct v4l2_capability)
	vidiocQueryCap = iocRead<<iocDirShift | unsafe.Sizeof(capability{})<<iocSizeShift | 'V'<<iocTypeShift | 0<<iocNRShift
	// VIDIOC_ENUM_FMT = _IOWR('V', 2, struct v4l2_fmtdesc)
	vidiocEnumFmt = (iocRead|iocWrite)<<iocDirShift | unsafe.Sizeof(fmtdesc{})<<iocSizeShift | 'V'<<iocTypeShift | 2<<iocNRShift
	// VIDIOC_ENUM_FRAMESIZES = _IOWR('V', 74, struct v4l2_frmsizeenum)
	vidiocEnumFrameSizes = (iocRead|iocWrite)<<iocDirShift | unsafe.Sizeof(frmsizeenum{})<<iocSizeShift | 'V'<<iocTypeShift | 74<<iocNRShift
	// VIDIOC_ENUM_FRAMEINTERVALS = _IOWR('V', 75, struct v4l2_frmivalenum)
	vidiocEnumFrameIntervals = (iocRead|iocWrite)<<iocDirShift | unsafe.Sizeof(frmivalenum{})<<iocSizeShift | 'V'<<iocTypeShift | 75<<iocNRShift
)

// Build-time checks: on any GOARCH where a structure's size (and so an
// ioctl number) differs from the kernel's, the package does not compile.
// The tests check the same at run time, with names.
var (
	_ [unsafe.Sizeof(capability{}) - 104]struct{}
	_ [104 - unsafe.Sizeof(capability{})]struct{}
	_ [unsafe.Sizeof(fmtdesc{}) - 64]struct{}
	_ [64 - unsafe.Sizeof(fmtdesc{})]struct{}
	_ [unsafe.Sizeof(frmsizeenum{}) - 44]struct{}
	_ [44 - unsafe.Sizeof(frmsizeenum{})]struct{}
	_ [unsafe.Sizeof(frmivalenum{}) - 52]struct{}
	_ [52 - unsafe.Sizeof(frmivalenum{})]struct{}
	_ [vidiocQueryCap - 0x80685600]struct{}
	_ [0x80685600 - vidiocQueryCap]struct{}
	_ [vidiocEnumFrameIntervals - 0xc034564b]struct{}
	_ [0xc034564b - vidiocEnumFrameIntervals]struct{}
)

// Bounds against drivers that never say "no more" (EINVAL).
const (
	maxFormats   = 128
	maxSizes     = 512
	maxIntervals = 128
)

// ioctlFunc issues one ioctl on an open device; tests replace it with a
// simulated driver.
type ioctlFunc func(req uintptr, arg unsafe.Pointer) error

// device is an open V4L2 node.
type device struct {
	path string
	fd   int
}

// open opens a node read-write and non-blocking (what v4l2src does; it
// never waits for a frame here), falling back to read-only for a node the
// user may read but not write.
func open(path string) (*device, error) {
	const flags = syscall.O_NONBLOCK | syscall.O_CLOEXEC
	fd, err := syscall.Open(path, syscall.O_RDWR|flags, 0)
	if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENODEV) && !errors.Is(err, syscall.ENXIO) {
		fd, err = syscall.Open(path, syscall.O_RDONLY|flags, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("v4l2: %s: open: %w", path, err)
	}
	return &device{path: path, fd: fd}, nil
}

func (d *device) close() { _ = syscall.Close(d.fd) }

func (d *device) ioctl(req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(d.fd), req, uintptr(arg))
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return errno
	}
}

// QueryCap asks the node at path what it is (VIDIOC_QUERYCAP).
func QueryCap(path string) (Capability, error) {
	d, err := open(path)
	if err != nil {
		return Capability{}, err
	}
	defer d.close()
	c, err := queryCap(d.ioctl)
	if err != nil {
		return Capability{}, fmt.Errorf("v4l2: %s: %w", path, err)
	}
	return c, nil
}

func queryCap(do ioctlFunc) (Capability, error) {
	var c capability
	if err := do(vidiocQueryCap, unsafe.Pointer(&c)); err != nil {
		return Capability{}, fmt.Errorf("VIDIOC_QUERYCAP: %w", err)
	}
	return Capability{
		Driver: cString(c.Driver[:]), Card: cString(c.Card[:]), BusInfo: cString(c.BusInfo[:]),
		Version: c.Version, Capabilities: c.Capabilities, DeviceCaps: c.DeviceCaps,
	}, nil
}

// Modes lists the capture modes of the node at path that GStreamer can
// use (see Classify), in the driver's order: by format, then size.
//
// Discrete sizes and frame intervals are reported as they are. For a
// stepwise or continuous range (CSI receivers, some capture cards), sizes
// are sampled: the common sizes 160x120 ... 3840x2160 (4:3 and 16:9) that
// fall inside the range and on its step, plus the largest size; rates
// likewise: the common rates 60, 50, 30, 25, 24, 20, 15, 12.5, 10, 7.5 and
// 5 fps inside the range and on its step, plus the fastest rate.
//
// A node that is not a video capture device, or offers no usable format,
// is an error that says what it is or what it offers.
func Modes(path string) ([]Mode, error) {
	d, err := open(path)
	if err != nil {
		return nil, err
	}
	defer d.close()
	modes, err := modes(d.ioctl)
	if err != nil {
		return nil, fmt.Errorf("v4l2: %s: %w", path, err)
	}
	return modes, nil
}

func modes(do ioctlFunc) ([]Mode, error) {
	c, err := queryCap(do)
	if err != nil {
		return nil, err
	}
	var bufType uint32
	switch caps := c.Caps(); {
	case !c.CanCapture():
		return nil, fmt.Errorf("%q (%s) is not a video capture device (capabilities 0x%08x)", c.Card, c.Driver, caps)
	case caps&CapVideoCapture != 0:
		bufType = bufTypeVideoCapture
	default:
		bufType = bufTypeVideoCaptureMPlane
	}
	out, skipped, err := enumerate(do, bufType)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		if len(skipped) == 0 {
			return nil, fmt.Errorf("%q (%s) offers no capture format", c.Card, c.Driver)
		}
		return nil, fmt.Errorf("%q (%s) offers no format GStreamer can use here (it offers %v)", c.Card, c.Driver, skipped)
	}
	return out, nil
}

// enumerate walks formats, their sizes and each size's intervals. It
// returns the usable modes and the fourccs it skipped.
func enumerate(do ioctlFunc, bufType uint32) ([]Mode, []string, error) {
	var (
		out     []Mode
		skipped []string
	)
	for i := uint32(0); i < maxFormats; i++ {
		f := fmtdesc{Index: i, Type: bufType}
		if err := do(vidiocEnumFmt, unsafe.Pointer(&f)); err != nil {
			if errors.Is(err, syscall.EINVAL) {
				break // end of the list
			}
			return nil, nil, fmt.Errorf("VIDIOC_ENUM_FMT %d: %w", i, err)
		}
		fourcc := fourccString(f.PixelFormat)
		format, ok := Classify(fourcc)
		if !ok {
			skipped = append(skipped, fourcc)
			continue
		}
		sizes, err := frameSizes(do, f.PixelFormat)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", fourcc, err)
		}
		if len(sizes) == 0 {
			skipped = append(skipped, fourcc+" (sizes not listed)")
			continue
		}
		for _, s := range sizes {
			rates, err := frameRates(do, f.PixelFormat, s[0], s[1])
			if err != nil {
				return nil, nil, fmt.Errorf("%s %dx%d: %w", fourcc, s[0], s[1], err)
			}
			out = merge(out, Mode{Format: format, FourCC: fourcc, Width: int(s[0]), Height: int(s[1]), Rates: rates})
		}
	}
	return out, skipped, nil
}

// merge adds m, or its rates to an equal mode already listed (some drivers
// list a size twice).
func merge(modes []Mode, m Mode) []Mode {
	for i, o := range modes {
		if o.FourCC == m.FourCC && o.Width == m.Width && o.Height == m.Height {
			modes[i].Rates = sortRates(append(o.Rates, m.Rates...))
			return modes
		}
	}
	return append(modes, m)
}

// commonSizes are sampled from stepwise and continuous size ranges.
var commonSizes = [...][2]uint32{
	{160, 120}, {320, 180}, {320, 240}, {352, 288}, {640, 360}, {640, 480}, {800, 600},
	{960, 540}, {1024, 576}, {1024, 768}, {1280, 720}, {1280, 960}, {1600, 900},
	{1600, 1200}, {1920, 1080}, {2560, 1440}, {3840, 2160},
}

// commonRates are sampled from stepwise and continuous interval ranges.
var commonRates = [...]Rate{{60, 1}, {50, 1}, {30, 1}, {25, 1}, {24, 1}, {20, 1}, {15, 1}, {25, 2}, {10, 1}, {15, 2}, {5, 1}}

// frameSizes lists the sizes of one pixel format. A driver that does not
// enumerate sizes yields none (the format cannot be chosen then).
func frameSizes(do ioctlFunc, pixfmt uint32) ([][2]uint32, error) {
	var sizes [][2]uint32
	for i := uint32(0); i < maxSizes; i++ {
		s := frmsizeenum{Index: i, PixelFormat: pixfmt}
		if err := do(vidiocEnumFrameSizes, unsafe.Pointer(&s)); err != nil {
			if errors.Is(err, syscall.EINVAL) || (i == 0 && errors.Is(err, syscall.ENOTTY)) {
				break
			}
			return nil, fmt.Errorf("VIDIOC_ENUM_FRAMESIZES %d: %w", i, err)
		}
		switch s.Type {
		case frmsizeDiscrete:
			if s.Union[0] > 0 && s.Union[1] > 0 {
				sizes = append(sizes, [2]uint32{s.Union[0], s.Union[1]})
			}
			continue
		case frmsizeContinuous, frmsizeStepwise:
			minW, maxW, stepW, minH, maxH, stepH := s.Union[0], s.Union[1], s.Union[2], s.Union[3], s.Union[4], s.Union[5]
			if s.Type == frmsizeContinuous || stepW == 0 || stepH == 0 {
				stepW, stepH = 1, 1
			}
			on := func(v, lo, hi, step uint32) bool { return v >= lo && v <= hi && (v-lo)%step == 0 }
			for _, c := range commonSizes {
				if on(c[0], minW, maxW, stepW) && on(c[1], minH, maxH, stepH) && c != [2]uint32{maxW, maxH} {
					sizes = append(sizes, c)
				}
			}
			if maxW > 0 && maxH > 0 {
				sizes = append(sizes, [2]uint32{maxW, maxH})
			}
		}
		break // a range is the only entry (index 0)
	}
	return sizes, nil
}

// frameRates lists the rates of one size, fastest first. A driver that does
// not enumerate intervals yields none (rate unknown).
func frameRates(do ioctlFunc, pixfmt, w, h uint32) ([]Rate, error) {
	var rates []Rate
	for i := uint32(0); i < maxIntervals; i++ {
		iv := frmivalenum{Index: i, PixelFormat: pixfmt, Width: w, Height: h}
		if err := do(vidiocEnumFrameIntervals, unsafe.Pointer(&iv)); err != nil {
			if errors.Is(err, syscall.EINVAL) || (i == 0 && errors.Is(err, syscall.ENOTTY)) {
				break
			}
			return nil, fmt.Errorf("VIDIOC_ENUM_FRAMEINTERVALS %d: %w", i, err)
		}
		switch iv.Type {
		case frmivalDiscrete:
			if r, ok := rateOf(iv.Union[0], iv.Union[1]); ok {
				rates = append(rates, r)
			}
			continue
		case frmivalContinuous, frmivalStepwise:
			rates = append(rates, sampleRates(iv.Type == frmivalContinuous, iv.Union)...)
		}
		break // a range is the only entry (index 0)
	}
	return sortRates(rates), nil
}

// rateOf turns an interval (seconds per frame, num/den) into a rate.
func rateOf(num, den uint32) (Rate, bool) {
	if num == 0 || den == 0 || den > 1<<30 || num > 1<<30 {
		return Rate{}, false
	}
	g := gcd(num, den)
	return Rate{Num: int(den / g), Den: int(num / g)}, true
}

// sampleRates picks the common rates inside an interval range u = {min
// num, min den, max num, max den, step num, step den}, plus the fastest.
func sampleRates(continuous bool, u [6]uint32) []Rate {
	if u[0] == 0 || u[1] == 0 || u[2] == 0 || u[3] == 0 {
		return nil
	}
	minIv, maxIv := big.NewRat(int64(u[0]), int64(u[1])), big.NewRat(int64(u[2]), int64(u[3]))
	var step *big.Rat
	if !continuous && u[4] != 0 && u[5] != 0 {
		step = big.NewRat(int64(u[4]), int64(u[5]))
	}
	fastest, _ := rateOf(u[0], u[1])
	out := []Rate{fastest}
	for _, r := range commonRates {
		iv := big.NewRat(int64(r.Den), int64(r.Num))
		if iv.Cmp(minIv) <= 0 || iv.Cmp(maxIv) > 0 {
			continue // outside the range, or the fastest itself
		}
		if step != nil {
			k := new(big.Rat).Quo(new(big.Rat).Sub(iv, minIv), step)
			if !k.IsInt() {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// sortRates orders rates fastest first and drops duplicates.
func sortRates(rates []Rate) []Rate {
	sort.SliceStable(rates, func(i, j int) bool { return rates[i].Cmp(rates[j]) > 0 })
	out := rates[:0]
	for _, r := range rates {
		if len(out) == 0 || out[len(out)-1].Cmp(r) != 0 {
			out = append(out, r)
		}
	}
	return out
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// cString reads a NUL-terminated byte array.
func cString(b []uint8) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
