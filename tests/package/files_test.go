package pkgtest

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/config"
	"github.com/makercast/makercast/internal/testenv"
)

// defaultFile reads packaging/makercast.default: the variables it sets
// (uncommented) and every variable it names, set or in a commented example.
func defaultFile(t *testing.T) (set map[string]string, named []string) {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(t), "packaging", "makercast.default"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^(#?)(MAKERCAST_[A-Z0-9_]+)=(.*)$`)
	set = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			if s := sc.Text(); s != "" && !strings.HasPrefix(s, "#") {
				t.Errorf("makercast.default: %q is neither a comment nor VARIABLE=value", s)
			}
			continue
		}
		named = append(named, m[2])
		if m[1] == "" {
			set[m[2]] = m[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return set, named
}

// Every variable /etc/default/makercast names exists, and what it sets is a
// valid configuration: the agent starts with the file as shipped.
func TestDefaultFile(t *testing.T) {
	set, named := defaultFile(t)
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Key] = true
	}
	perDest := regexp.MustCompile(`^MAKERCAST_DESTINATION_[A-Z0-9_]+_(KEY|KEY_FILE|CAMERA)$`)
	for _, n := range named {
		if !known[n] && !perDest.MatchString(n) {
			t.Errorf("makercast.default names %s, which the agent does not read", n)
		}
	}
	for _, k := range []string{"MAKERCAST_MQTT_URL", "MAKERCAST_MEDIA_DIR", "MAKERCAST_MQTT_USERNAME",
		"MAKERCAST_MQTT_PASSWORD", "MAKERCAST_STREAM_URL", "MAKERCAST_DESTINATIONS"} {
		if !strings.Contains(strings.Join(named, " "), k) {
			t.Errorf("makercast.default does not document %s", k)
		}
	}
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); strings.HasPrefix(k, "MAKERCAST_") {
			t.Setenv(k, "") // t.Setenv restores it afterwards
			os.Unsetenv(k)
		}
	}
	for k, v := range set {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(os.LookupEnv, "raspberrypi")
	if err != nil {
		t.Fatalf("the shipped settings do not load: %v", err)
	}
	if cfg.MediaDir != "/var/lib/makercast" {
		t.Errorf("media dir %s, want the service's StateDirectory /var/lib/makercast", cfg.MediaDir)
	}
}

// unitLines returns the unit's Key=value lines.
func unitLines(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "packaging", "makercast.service"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			out[k] = append(out[k], v)
		}
	}
	return out
}

// The unit's state directory is the media directory it sets, and the agent
// can say it is ready, be watched and reach what it needs.
func TestUnitAgreesWithTheAgent(t *testing.T) {
	u := unitLines(t)
	want := map[string]string{
		"Type": "notify", "StateDirectory": "makercast", "User": "makercast", "Restart": "on-failure",
		"EnvironmentFile": "-/etc/default/makercast", "ProtectSystem": "strict", "PrivateDevices": "no",
	}
	for k, v := range want {
		if len(u[k]) != 1 || u[k][0] != v {
			t.Errorf("%s=%v, want %s", k, u[k], v)
		}
	}
	if !strings.Contains(strings.Join(u["Environment"], " "), "MAKERCAST_MEDIA_DIR=/var/lib/"+u["StateDirectory"][0]) {
		t.Errorf("Environment=%v does not point MAKERCAST_MEDIA_DIR at the StateDirectory", u["Environment"])
	}
	fams := strings.Fields(strings.Join(u["RestrictAddressFamilies"], " "))
	for _, f := range []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"} {
		if !strings.Contains(" "+strings.Join(fams, " ")+" ", " "+f+" ") {
			t.Errorf("RestrictAddressFamilies=%v lacks %s", fams, f)
		}
	}
	for _, k := range []string{"WatchdogSec", "RestartSec", "StartLimitIntervalSec", "StartLimitBurst"} {
		if len(u[k]) != 1 {
			t.Errorf("%s is not set once: %v", k, u[k])
		}
	}
	for _, k := range []string{"MemoryDenyWriteExecute", "PrivateUsers", "ProtectClock", "DeviceAllow"} {
		if len(u[k]) != 0 {
			t.Errorf("%s=%v: see the comment at the end of [Service] for why not", k, u[k])
		}
	}
}

// systemd-analyze verify (this machine's systemd: Debian 12's 252) finds
// nothing to say about the unit: no unknown or newer directive, no bad value.
// It exits 0 even when it ignores a line, so its output must be empty.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (package systemd); make package-test installs it")
	}
	// A root with the system's units (sysinit.target and friends) and an
	// executable where ExecStart points.
	root := t.TempDir()
	if out, err := exec.Command("cp", "-a", "/lib/systemd/system", filepath.Join(root, "lib-systemd-system")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, d := range []string{"lib/systemd", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(root, "lib-systemd-system"), filepath.Join(root, "lib/systemd/system")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/makercast-agent"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(root, "lib/systemd/system/makercast.service")
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "packaging", "makercast.service"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unit, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--root="+root, unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// probe is ffprobe with room for a slow start (20 s in testenv).
func probe(t *testing.T, url string, within time.Duration) testenv.Probe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_streams", "-of", "json", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var p testenv.Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// The preinst refuses an ARMv6 CPU (uname -m armv6l) for the armhf package
// only: the armhf build is ARMv7 and would die with SIGILL there.
func TestPreinstRefusesARMv6(t *testing.T) {
	preinst := filepath.Join(testenv.RepoRoot(t), "packaging", "scripts", "preinst")
	for _, tc := range []struct {
		arch, machine string
		refused       bool
	}{
		{"armhf", "armv6l", true},  // Pi Zero W, Pi 1 with Raspberry Pi OS 32-bit
		{"armhf", "armv7l", false}, // Pi 2/3/4 with the 32-bit OS
		{"arm64", "aarch64", false},
		{"amd64", "x86_64", false},
	} {
		t.Run(tc.arch+"/"+tc.machine, func(t *testing.T) {
			bin := t.TempDir()
			for name, out := range map[string]string{"dpkg": tc.arch, "uname": tc.machine} {
				if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\necho "+out+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, action := range []string{"install", "upgrade"} {
				cmd := exec.Command("/bin/sh", preinst, action)
				cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
				out, err := cmd.CombinedOutput()
				if refused := err != nil; refused != tc.refused {
					t.Fatalf("%s: refused %v, want %v: %s", action, refused, tc.refused, out)
				}
				if tc.refused && !strings.Contains(string(out), "GOARM=6 make build") {
					t.Errorf("%s: the refusal does not say what to do: %s", action, out)
				}
			}
		})
	}
}
