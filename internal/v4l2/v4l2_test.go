package v4l2

import "testing"

func TestRate(t *testing.T) {
	cases := []struct {
		r    Rate
		want string
		fps  float64
	}{
		{Rate{30, 1}, "30", 30},
		{Rate{25, 2}, "12.5", 12.5},
		{Rate{15, 2}, "7.5", 7.5},
		{Rate{30000, 1001}, "29.97", 30000.0 / 1001},
		{Rate{60, 2}, "30", 30},
		{Rate{}, "?", 0},
	}
	for _, c := range cases {
		if got := c.r.String(); got != c.want {
			t.Errorf("%v.String() = %q, want %q", c.r, got, c.want)
		}
		if got := c.r.FPS(); got != c.fps {
			t.Errorf("%v.FPS() = %v, want %v", c.r, got, c.fps)
		}
	}
	if (Rate{25, 2}).Cmp(Rate{13, 1}) != -1 || (Rate{60, 2}).Cmp(Rate{30, 1}) != 0 || (Rate{30, 1}).Cmp(Rate{30000, 1001}) != 1 {
		t.Error("Cmp compares by value")
	}
}

func TestCanCapture(t *testing.T) {
	const (
		extPixFormat = 0x00200000
		dc           = CapDeviceCaps
	)
	cases := []struct {
		name string
		c    Capability
		want bool
	}{
		{"uvc video node", Capability{Capabilities: dc | CapVideoCapture | CapMetaCapture | CapStreaming, DeviceCaps: CapVideoCapture | CapStreaming | extPixFormat}, true},
		{"uvc metadata node", Capability{Capabilities: dc | CapVideoCapture | CapMetaCapture | CapStreaming, DeviceCaps: CapMetaCapture | CapStreaming | extPixFormat}, false},
		{"v4l2loopback exclusive_caps, no writer", Capability{Capabilities: dc | CapVideoOutput | CapStreaming, DeviceCaps: CapVideoOutput | CapStreaming | CapReadWrite}, false},
		{"v4l2loopback exclusive_caps, writer streaming", Capability{Capabilities: dc | CapVideoCapture | CapStreaming, DeviceCaps: CapVideoCapture | CapStreaming | CapReadWrite}, true},
		{"bcm2835-codec encoder", Capability{Capabilities: dc | CapVideoM2MMPlane | CapStreaming, DeviceCaps: CapVideoM2MMPlane | CapStreaming}, false},
		{"old m2m marked capture and output", Capability{Capabilities: dc | CapVideoM2M | CapVideoCapture | CapVideoOutput | CapStreaming, DeviceCaps: CapVideoM2M | CapVideoCapture | CapVideoOutput | CapStreaming}, false},
		{"multi-planar capture (rkisp)", Capability{Capabilities: dc | CapVideoCaptureMPlane | CapStreaming, DeviceCaps: CapVideoCaptureMPlane | CapStreaming}, true},
		{"driver without device caps", Capability{Capabilities: CapVideoCapture | CapStreaming}, true},
		{"read() only capture", Capability{Capabilities: dc | CapVideoCapture | CapReadWrite, DeviceCaps: CapVideoCapture | CapReadWrite}, false},
	}
	for _, c := range cases {
		if got := c.c.CanCapture(); got != c.want {
			t.Errorf("%s: CanCapture = %v, want %v", c.name, got, c.want)
		}
	}
	if !(Capability{BusInfo: "usb-0000:01:00.0-1.3"}).USB() || (Capability{BusInfo: "platform:vivid-000"}).USB() {
		t.Error("USB from bus info")
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		fourcc string
		format Format
		gst    string
		ok     bool
	}{
		{"YUYV", Raw, "YUY2", true},
		{"YU12", Raw, "I420", true},
		{"422P", Raw, "Y42B", true},
		{"NV12", Raw, "NV12", true},
		{"NM12", Raw, "NV12", true},
		{"GREY", Raw, "GRAY8", true},
		{"RGB3", Raw, "RGB", true},
		{"XR24", Raw, "BGRx", true},
		{"MJPG", MJPEG, "", true},
		{"JPEG", MJPEG, "", true}, // v4l2loopback's name for it
		{"H264", H264, "", true},
		{"BA81", "", "", false}, // Bayer: v4l2src gives video/x-bayer
		{"Y10", "", "", false},
		{"HEVC", "", "", false},
	}
	for _, c := range cases {
		f, ok := Classify(c.fourcc)
		if f != c.format || ok != c.ok || GstFormat(c.fourcc) != c.gst {
			t.Errorf("%s: %q %v %q, want %q %v %q", c.fourcc, f, ok, GstFormat(c.fourcc), c.format, c.ok, c.gst)
		}
	}
}

func TestModeString(t *testing.T) {
	cases := map[string]Mode{
		"YUYV 640x480@30":    {Format: Raw, FourCC: "YUYV", Width: 640, Height: 480, Rates: []Rate{{30, 1}, {15, 1}}},
		"MJPEG 640x480@15":   {Format: MJPEG, FourCC: "JPEG", Width: 640, Height: 480, Rates: []Rate{{15, 1}}},
		"H.264 1920x1080":    {Format: H264, FourCC: "H264", Width: 1920, Height: 1080},
		"YUYV 1280x720@12.5": {Format: Raw, FourCC: "YUYV", Width: 1280, Height: 720, Rates: []Rate{{25, 2}}},
	}
	for want, m := range cases {
		if got := m.String(); got != want {
			t.Errorf("%+v: %q, want %q", m, got, want)
		}
	}
}
