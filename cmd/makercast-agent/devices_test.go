package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// With MAKERCAST_CAMERAS=auto and nothing plugged in (this machine has no
// video devices at all), the agent no longer refuses to start: it comes
// online with no camera, its destination waits for the first camera to be
// found, and commands for a camera get a clear answer. (Cameras being
// plugged in and out are tested in the hardware lab, tests/hwlab.)
func TestAutoCamerasStartWithNothingPluggedIn(t *testing.T) {
	if _, err := os.Stat("/sys/class/video4linux"); err == nil {
		t.Skip("this machine has video devices")
	}
	r := newRig(t)
	p := startAgent(t, r.env(map[string]string{"MAKERCAST_CAMERAS": "auto"}))
	r.online(t)
	m := r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"state":"idle"`), 5*time.Second)
	if !strings.Contains(m.Payload, `"camera":""`) {
		t.Errorf("destination before any camera: %s", m.Payload)
	}
	mark := r.w.Len()
	r.w.Publish(r.base+"/camera/hd_pro_webcam_c920/stream/set", []byte("ON"), false)
	r.w.WaitFrom(mark, r.base+"/response/stream", testenv.Contains(`"code":"unknown_camera"`, `hd_pro_webcam_c920`), 5*time.Second)
	r.w.Publish(r.base+"/request/status", []byte(`{"transaction":"s1"}`), false)
	m, _ = r.w.WaitFrom(mark, r.base+"/response/status", testenv.Contains(`"transaction":"s1"`), 5*time.Second)
	if !strings.Contains(m.Payload, `"cameras":{}`) {
		t.Errorf("status with no camera: %s", m.Payload)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
