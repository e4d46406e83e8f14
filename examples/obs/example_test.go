// Package obs checks the OBS example: the agent is run with the
// environment the README gives, and pulled the way OBS's Media Source
// pulls it (README.md, "What the test checks").
package obs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// piEnv reads the first sh block of the README: the Pi's variables.
func piEnv(t *testing.T, readme string) map[string]string {
	t.Helper()
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(readme)
	if block == nil {
		t.Fatal("README has no sh block")
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(block[1]), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, "MAKERCAST_") {
			t.Fatalf("not a variable: %q", line)
		}
		env[k] = strings.Trim(v, "'") // quoted for the shell (the & in the URL)
	}
	return env
}

func TestOBSPullsTheListener(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	env := piEnv(t, readme)
	input := regexp.MustCompile("\\| Input \\| `(srt://[^`]*)` \\|").FindStringSubmatch(readme)
	if input == nil {
		t.Fatal("README gives no OBS Input URL")
	}
	if !strings.Contains(input[1], "mode=caller") || !strings.Contains(input[1], "passphrase="+env["MAKERCAST_DESTINATION_OBS_KEY"]) ||
		!strings.Contains(env["MAKERCAST_DESTINATIONS"], "mode=listener") {
		t.Fatalf("OBS must call the Pi's listener with its passphrase: %q, %v", input[1], env)
	}
	port := testenv.FreeUDPPort(t)
	env["MAKERCAST_DESTINATIONS"] = strings.Replace(env["MAKERCAST_DESTINATIONS"], ":9000", fmt.Sprintf(":%d", port), 1)

	broker := testenv.StartMosquitto(t)
	w := testenv.Watch(t, broker.URL, "makercast/#")
	bin := filepath.Join(t.TempDir(), "makercast-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/makercast-agent").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MAKERCAST_CAMERAS=test", "MAKERCAST_DEVICE_ID=pi1",
		"MAKERCAST_MQTT_URL=" + broker.URL, "MAKERCAST_MEDIA_DIR=" + t.TempDir(),
		"MAKERCAST_VIDEO_WIDTH=640", "MAKERCAST_VIDEO_HEIGHT=360", "MAKERCAST_VIDEO_BITRATE=800"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("agent logs:\n%s", logs)
		}
	})
	w.Wait("makercast/pi1/availability", testenv.Equals("online"), 15*time.Second)
	w.Publish("makercast/pi1/destination/obs/set", []byte("ON"), false)
	w.Wait("makercast/pi1/destination/obs/state", testenv.Contains(`"state":"connecting"`, "waiting for a caller"), 10*time.Second)

	// OBS's Media Source: the README's Input, with the Pi's address.
	mark := w.Len()
	obs := testenv.StartSRTCaller(t, port, env["MAKERCAST_DESTINATION_OBS_KEY"], 3)
	w.WaitFrom(mark, "makercast/pi1/destination/obs/state", testenv.Contains(`"state":"live"`, `"peers":1`), 10*time.Second)
	pr := obs.Wait(t, 20*time.Second)
	if v, ok := pr.Video(); !ok || v.CodecName != "h264" {
		t.Errorf("OBS gets video %+v", v)
	}
	if a, ok := pr.Audio(); !ok || a.CodecName != "aac" {
		t.Errorf("OBS gets audio %+v", a)
	}
	if frames, errs := testenv.DecodedFrames(t, obs.Out); frames < 60 || len(errs) > 0 {
		t.Errorf("decoded %d frames, errors %q", frames, errs)
	}
}
