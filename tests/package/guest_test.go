//go:build pkgtest

package pkgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

const unit = "makercast.service"

// TestGuestPackage is the package test's guest side: it runs as root in a VM
// that systemd booted (TestPackageSystemd), and does what a user does with the
// .deb on a Pi: install it, point /etc/default/makercast at a broker and an
// RTMP server, restart the service, go live. Each step needs the one before.
func TestGuestPackage(t *testing.T) {
	if os.Getenv("MAKERCAST_PKGTEST_GUEST") != "1" {
		t.Skip("runs inside make package-test's VM (TestPackageSystemd)")
	}
	deb := os.Getenv("PKGTEST_DEB")
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("journalctl", "-u", unit, "--no-pager", "-n", "80", "-o", "short-monotonic").CombinedOutput()
			t.Logf("journal of %s:\n%s", unit, out)
		}
	})
	// The servers live for the whole test (a step's Cleanup would stop them early).
	broker := testenv.StartMosquitto(t)
	rtmp := testenv.StartRTMP(t)
	w := testenv.Watch(t, broker.URL, "makercast/pkgtest/#")
	topic := func(s string) string { return "makercast/pkgtest/" + s }

	step("install", func(t *testing.T) {
		start := time.Now()
		run(t, "dpkg", "-i", deb)
		t.Logf("dpkg -i took %.1fs (dpkg reads its database over 9p under TCG)", time.Since(start).Seconds())
		if got := strings.TrimSpace(try("systemctl", "is-enabled", unit)); got != "enabled" {
			t.Errorf("is-enabled: %q, want enabled (postinst)", got)
		}
		// Type=notify: active only once the agent said READY=1 (the postinst's
		// start waits for it). The packaged settings name a broker on
		// 127.0.0.1:1883 that is not there, which must not keep it from starting.
		waitFor(t, unit+" active", 2*time.Minute, func() bool {
			return strings.TrimSpace(try("systemctl", "is-active", unit)) == "active"
		})
		groups := strings.Fields(run(t, "id", "-nG", "makercast"))
		for _, g := range []string{"makercast", "video", "audio"} {
			if !contains(groups, g) {
				t.Errorf("user makercast is in %v, not in %s", groups, g)
			}
		}
		fi, err := os.Stat("/etc/default/makercast")
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || st.Uid != 0 {
			t.Errorf("/etc/default/makercast is %v owned by %d, want 0600 root (it may hold secrets)", fi.Mode(), st.Uid)
		}
	})

	step("unit verifies", func(t *testing.T) {
		if out := run(t, "systemd-analyze", "verify", "/lib/systemd/system/"+unit); out != "" {
			t.Errorf("systemd-analyze verify:\n%s", out)
		}
	})

	step("online", func(t *testing.T) {
		settings := fmt.Sprintf(`
# make package-test
MAKERCAST_MQTT_URL=%s
MAKERCAST_DEVICE_ID=pkgtest
MAKERCAST_CAMERAS=auto
MAKERCAST_AUDIO=auto
MAKERCAST_STREAM_URL=%s
MAKERCAST_STREAM_KEY=pkgtest
MAKERCAST_VIDEO_WIDTH=640
MAKERCAST_VIDEO_HEIGHT=360
MAKERCAST_VIDEO_FPS=15
MAKERCAST_VIDEO_BITRATE=800
MAKERCAST_X264_PRESET=ultrafast
MAKERCAST_LOG_LEVEL=debug
`, broker.URL, rtmp.URL())
		f, err := os.OpenFile("/etc/default/makercast", os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(settings)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		from := w.Len()
		start := time.Now()
		run(t, "systemctl", "restart", unit)
		w.WaitFrom(from, topic("availability"), testenv.Equals("online"), 90*time.Second)
		t.Logf("online %.1fs after systemctl restart", time.Since(start).Seconds())
	})

	step("hot-plug", func(t *testing.T) {
		// A microphone, then a camera, plugged in while the agent runs: it
		// hears the kernel's uevents (AF_NETLINK in RestrictAddressFamilies),
		// opens the nodes as makercast (udev gives them to video and audio)
		// and announces the camera with its microphone.
		plug := time.Now()
		run(t, "modprobe", "snd-dummy")
		run(t, "modprobe", "vivid", "n_devs=1", "node_types=0x1")
		w.Wait(topic("camera/vivid/state"), testenv.Contains(`"plugged_in":true`, `"mic":"plughw:CARD=Dummy`), 60*time.Second)
		t.Logf("camera and microphone announced %.1fs after modprobe", time.Since(plug).Seconds())
		run(t, "udevadm", "settle", "-t", "30")
		for node, group := range map[string]string{"/dev/video0": "video", "/dev/snd/pcmC0D0c": "audio"} {
			if g := nodeGroup(t, node); g != group {
				t.Errorf("%s belongs to group %s, want %s (udev)", node, g, group)
			}
		}
	})

	step("sandbox", func(t *testing.T) {
		p := show(t, "MainPID", "WatchdogUSec", "ActiveState", "SubState")
		if p["WatchdogUSec"] != "30s" || p["ActiveState"] != "active" || p["SubState"] != "running" {
			t.Errorf("systemctl show: %v, want WatchdogUSec=30s active running", p)
		}
		pid := p["MainPID"]
		if exe, err := os.Readlink("/proc/" + pid + "/exe"); err != nil || exe != "/usr/bin/makercast-agent" {
			t.Fatalf("MainPID %s runs %q (%v)", pid, exe, err)
		}
		st := procStatus(t, pid)
		u, err := user.Lookup("makercast")
		if err != nil {
			t.Fatal(err)
		}
		if uids := strings.Fields(st["Uid"]); len(uids) != 4 || uids[0] != u.Uid || uids[1] != u.Uid {
			t.Errorf("Uid: %v, want makercast (%s)", uids, u.Uid)
		}
		groups := strings.Fields(st["Groups"])
		for _, name := range []string{"video", "audio"} {
			g, err := user.LookupGroup(name)
			if err != nil {
				t.Fatal(err)
			}
			if !contains(groups, g.Gid) {
				t.Errorf("supplementary groups %v lack %s (%s)", groups, name, g.Gid)
			}
		}
		// NoNewPrivileges, SystemCallFilter, CapabilityBoundingSet= in effect
		want := map[string]string{"NoNewPrivs": "1", "Seccomp": "2", "CapEff": "0000000000000000", "CapBnd": "0000000000000000"}
		for k, v := range want {
			if st[k] != v {
				t.Errorf("%s: %q, want %q", k, st[k], v)
			}
		}
	})

	step("stream", func(t *testing.T) {
		// The hot-plugged camera and microphone, captured as makercast through
		// the sandbox (ORC, x264, AAC, RTMP): live with H.264 and AAC.
		on := time.Now()
		w.Publish(topic("camera/vivid/stream/set"), []byte("ON"), false)
		rtmp.WaitPublishing(t, "pkgtest", 2*time.Minute)
		t.Logf("live at nginx-rtmp %.1fs after ON", time.Since(on).Seconds())
		pr := probe(t, rtmp.URL()+"/pkgtest", 90*time.Second)
		v, okv := pr.Video()
		a, oka := pr.Audio()
		if !okv || v.CodecName != "h264" || v.Width != 640 || v.Height != 360 {
			t.Errorf("video %+v, want h264 640x360", v)
		}
		if !oka || a.CodecName != "aac" {
			t.Errorf("audio %+v, want aac", a)
		}
	})

	step("watchdog fed", func(t *testing.T) {
		// systemd records each WATCHDOG=1 it accepts from the main process
		first := show(t, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
		d := waitFor(t, "a WATCHDOG=1 at systemd", 40*time.Second, func() bool {
			now := show(t, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
			return now != first && now != "0"
		})
		t.Logf("next ping seen after %.1fs (every WatchdogSec/2 = 15s)", d.Seconds())
	})

	step("restart on failure", func(t *testing.T) {
		before := show(t, "MainPID", "NRestarts")
		from := w.Len()
		kill(t, before["MainPID"], syscall.SIGKILL)
		w.WaitFrom(from, topic("availability"), testenv.Equals("offline"), 30*time.Second) // the last will
		waitRestarted(t, before, time.Minute)
		w.WaitFrom(from, topic("availability"), testenv.Equals("online"), 90*time.Second)
		// the destination that was on is switched on again: its state is
		// kept in the StateDirectory (MAKERCAST_RESUME)
		rtmp.WaitGone(t, "pkgtest", 30*time.Second)
		rtmp.WaitPublishing(t, "pkgtest", 2*time.Minute)
	})

	step("watchdog restarts a hung agent", func(t *testing.T) {
		// WatchdogSec=30s would make this wait long: a drop-in shortens it here.
		dropin := "/etc/systemd/system/makercast.service.d/pkgtest-watchdog.conf"
		if err := os.MkdirAll(filepath.Dir(dropin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dropin, []byte("[Service]\nWatchdogSec=4s\nTimeoutAbortSec=2s\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer func() {
			os.Remove(dropin)
			run(t, "systemctl", "daemon-reload")
		}()
		run(t, "systemctl", "daemon-reload")
		from := w.Len()
		run(t, "systemctl", "restart", unit)
		w.WaitFrom(from, topic("availability"), testenv.Equals("online"), 90*time.Second)
		before := show(t, "MainPID", "NRestarts", "WatchdogUSec")
		if before["WatchdogUSec"] != "4s" {
			t.Fatalf("WatchdogUSec=%s with the drop-in", before["WatchdogUSec"])
		}
		// A stopped process is alive but sends nothing: systemd must notice.
		from = w.Len()
		stopped := time.Now()
		kill(t, before["MainPID"], syscall.SIGSTOP)
		waitRestarted(t, before, time.Minute)
		t.Logf("restarted %.1fs after SIGSTOP", time.Since(stopped).Seconds())
		if j := run(t, "journalctl", "-u", unit, "--no-pager", "-o", "cat"); !strings.Contains(j, "Watchdog timeout") {
			t.Errorf("the journal does not say why the agent was restarted")
		}
		w.WaitFrom(from, topic("availability"), testenv.Equals("online"), 90*time.Second)
	})

	step("clean stop", func(t *testing.T) {
		from := w.Len()
		run(t, "systemctl", "stop", unit)
		p := show(t, "ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
		// ExecMainCode 1: exited (not killed); status 0
		if p["ActiveState"] != "inactive" || p["Result"] != "success" || p["ExecMainCode"] != "1" || p["ExecMainStatus"] != "0" {
			t.Errorf("after systemctl stop: %v, want inactive, success, exited 0", p)
		}
		w.WaitFrom(from, topic("availability"), testenv.Equals("offline"), 10*time.Second)
		if j := run(t, "journalctl", "-u", unit, "--no-pager", "-o", "cat", "-n", "30"); !strings.Contains(j, "msg=stopped") {
			t.Errorf("the agent did not log its clean stop:\n%s", tail(j, 10))
		}
	})

	step("purge", func(t *testing.T) {
		start := time.Now()
		run(t, "dpkg", "--purge", "makercast")
		t.Logf("dpkg --purge took %.1fs", time.Since(start).Seconds())
		var unknown user.UnknownUserError
		if _, err := user.Lookup("makercast"); !errors.As(err, &unknown) {
			t.Errorf("user makercast after purge: %v", err)
		}
		for _, p := range []string{"/var/lib/makercast", "/var/cache/makercast", "/etc/default/makercast",
			"/lib/systemd/system/" + unit, "/usr/bin/makercast-agent", "/etc/systemd/system/multi-user.target.wants/" + unit} {
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s after purge: %v", p, err)
			}
		}
	})
}

// run runs a command and returns its output; failing fails the test.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// try runs a command and returns its output, whatever its status.
func try(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	return string(out)
}

// show is `systemctl show makercast.service -p ...` as a map.
func show(t *testing.T, props ...string) map[string]string {
	t.Helper()
	out := run(t, "systemctl", "show", unit, "-p", strings.Join(props, ","))
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitRestarted waits until systemd restarted the service by itself: one more
// automatic restart, another main process, active again.
func waitRestarted(t *testing.T, before map[string]string, within time.Duration) {
	t.Helper()
	n, err := strconv.Atoi(before["NRestarts"])
	if err != nil {
		t.Fatalf("NRestarts=%q", before["NRestarts"])
	}
	var p map[string]string
	waitFor(t, "systemd restarting "+unit, within, func() bool {
		p = show(t, "MainPID", "NRestarts", "ActiveState")
		return p["NRestarts"] == strconv.Itoa(n+1) && p["MainPID"] != "0" && p["MainPID"] != before["MainPID"] && p["ActiveState"] == "active"
	})
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("no %s within %s", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start)
}

func kill(t *testing.T, pid string, sig syscall.Signal) {
	t.Helper()
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 1 {
		t.Fatalf("MainPID %q", pid)
	}
	if err := syscall.Kill(n, sig); err != nil {
		t.Fatal(err)
	}
}

// procStatus is /proc/<pid>/status as a map (values without the tab).
func procStatus(t *testing.T, pid string) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func nodeGroup(t *testing.T, node string) string {
	t.Helper()
	fi, err := os.Stat(node)
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Gid)))
	if err != nil {
		t.Fatal(err)
	}
	return g.Name
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
