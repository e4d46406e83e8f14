//go:build cross

package pkgtest

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// crossBinary is a cross-built agent in bin/, checked to be for machine.
func crossBinary(t *testing.T, name string, machine elf.Machine) string {
	t.Helper()
	bin := filepath.Join(testenv.RepoRoot(t), "bin", name)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%v (make cross-test builds it)", err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Fatalf("%s is for %s, want %s", bin, f.Machine, machine)
	}
	return bin
}

func need(t *testing.T, file, what string) {
	t.Helper()
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("%s: %v (scripts/deps.sh cross-run installs %s)", file, err, what)
	}
}

// The arm64 agent (Pi 3/4/5, Zero 2 W, 64-bit OS), emulated by qemu-user with
// Debian's arm64 GStreamer plugins, goes online on a real broker, goes live
// on a real nginx-rtmp with H.264 and AAC when told over MQTT, and stops
// cleanly (offline) on SIGTERM.
func TestCrossArm64UnderQEMU(t *testing.T) {
	bin := crossBinary(t, "makercast-agent-linux-arm64", elf.EM_AARCH64)
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Fatal("qemu-aarch64-static is not installed (scripts/deps.sh cross-run)")
	}
	// x264enc (ugly), h264parse and rtmp2sink (bad), avenc_aac (libav), flvmux (good)
	plugins := "/usr/lib/aarch64-linux-gnu/gstreamer-1.0/"
	need(t, plugins+"libgstx264.so", "gstreamer1.0-plugins-ugly:arm64")
	need(t, plugins+"libgstrtmp2.so", "gstreamer1.0-plugins-bad:arm64")
	need(t, plugins+"libgstlibav.so", "gstreamer1.0-libav:arm64")
	need(t, plugins+"libgstflv.so", "gstreamer1.0-plugins-good:arm64")

	broker := testenv.StartMosquitto(t)
	rtmp := testenv.StartRTMP(t)
	w := testenv.Watch(t, broker.URL, "makercast/cross/#")

	// The arm64 plugin registry is kept between runs: a cold scan of every
	// plugin under emulation costs tens of seconds.
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = t.TempDir()
	}
	registry := filepath.Join(cache, "makercast-cross", "gst-registry-arm64.bin")
	if err := os.MkdirAll(filepath.Dir(registry), 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(qemu, bin)
	cmd.Env = append(withoutMakercast(os.Environ()),
		"QEMU_LD_PREFIX=/", // the arm64 loader and libraries are in Debian's multiarch paths
		// no binfmt here: the arm64 gst-plugin-scanner cannot be exec'd, so scan in-process
		"GST_REGISTRY_FORK=no", "GST_REGISTRY="+registry,
		"MAKERCAST_DEVICE_ID=cross", "MAKERCAST_CAMERAS=test", "MAKERCAST_MQTT_URL="+broker.URL,
		"MAKERCAST_STREAM_URL="+rtmp.URL(), "MAKERCAST_STREAM_KEY=cross",
		"MAKERCAST_MEDIA_DIR="+t.TempDir(), "MAKERCAST_HA_DISCOVERY=false",
		"MAKERCAST_VIDEO_WIDTH=320", "MAKERCAST_VIDEO_HEIGHT=240", "MAKERCAST_VIDEO_FPS=15",
		"MAKERCAST_VIDEO_BITRATE=400", "MAKERCAST_X264_PRESET=ultrafast", "MAKERCAST_LOG_LEVEL=debug",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", tail(string(b), 40))
		}
	}()

	w.Wait("makercast/cross/availability", testenv.Equals("online"), 90*time.Second)
	t.Logf("online %.1fs after the start (emulated)", time.Since(start).Seconds())
	on := time.Now()
	w.Publish("makercast/cross/camera/test/stream/set", []byte("ON"), false)
	rtmp.WaitPublishing(t, "cross", 120*time.Second)
	t.Logf("live at nginx-rtmp %.1fs after ON", time.Since(on).Seconds())
	p := probe(t, rtmp.URL()+"/cross", 60*time.Second)
	v, okv := p.Video()
	a, oka := p.Audio()
	if !okv || v.CodecName != "h264" || v.Width != 320 || v.Height != 240 {
		t.Errorf("video %+v, want h264 320x240", v)
	}
	if !oka || a.CodecName != "aac" {
		t.Errorf("audio %+v, want aac", a)
	}

	from := w.Len()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred Wait
		if err != nil {
			t.Errorf("the agent exited with %v after SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the agent did not stop within 60s of SIGTERM")
	}
	w.WaitFrom(from, "makercast/cross/availability", testenv.Equals("offline"), 10*time.Second)
}

// The armv7 agent (32-bit OS on a Pi 2/3/4) loads its libraries (Debian
// armhf, from the build sysroot) and runs on an emulated Cortex-A7, and dies
// with SIGILL on an ARM1176 (Pi Zero W, Pi 1): the reason the armhf .deb's
// preinst refuses ARMv6 and the README tells Zero W users to build on the Pi.
func TestCrossArmv7(t *testing.T) {
	bin := crossBinary(t, "makercast-agent-linux-armv7", elf.EM_ARM)
	sysroot := os.Getenv("CROSS_ARMHF_SYSROOT")
	if sysroot == "" {
		t.Fatal("CROSS_ARMHF_SYSROOT is not set (make cross-test sets it: scripts/cross.sh sysroot)")
	}
	qemu, err := exec.LookPath("qemu-arm-static")
	if err != nil {
		t.Fatal("qemu-arm-static is not installed (scripts/deps.sh cross-run)")
	}
	run := func(cpu string) (string, error) {
		cmd := exec.Command(qemu, "-cpu", cpu, bin, "-version")
		cmd.Env = append(withoutMakercast(os.Environ()),
			"QEMU_LD_PREFIX=/usr/arm-linux-gnueabihf", // the cross toolchain's libc and loader
			"LD_LIBRARY_PATH="+sysroot+"/usr/lib/arm-linux-gnueabihf:"+sysroot+"/lib/arm-linux-gnueabihf")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("cortex-a7")
	got, want := strings.TrimSpace(out), os.Getenv("VERSION") // make exports the stamped version
	if err != nil || got == "" || (want != "" && got != want) {
		t.Fatalf("on a Cortex-A7: %v: %q, want the version %q", err, out, want)
	}
	_, err = run("arm1176")
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("on an ARM1176: %v, want death by SIGILL", err)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGILL {
		t.Fatalf("on an ARM1176: %v, want death by SIGILL", err)
	}
}

func withoutMakercast(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "MAKERCAST_") && !strings.HasPrefix(e, "GST_") {
			out = append(out, e)
		}
	}
	return out
}
