//go:build hwlab

package hwlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// DeviceID is the agent's device id in the lab: topics are under
// makercast/lab/.
const DeviceID = "lab"

// Agent is the real bin/makercast-agent (built by `make build`) running in
// the guest against its own Mosquitto, driven over MQTT as a user would.
type Agent struct {
	// Broker is the Mosquitto the agent talks to (a testenv one, unless
	// env set MAKERCAST_MQTT_URL).
	Broker *testenv.Mosquitto
	// MQTT watches Base+"/#" from before the agent starts, so no state
	// change is missed; use it to publish commands and wait for state.
	MQTT *testenv.Watcher
	// Base is the topic prefix, makercast/lab.
	Base string
	// Env is every MAKERCAST_ variable the agent was started with.
	Env map[string]string
	// LogPath is the agent's log (stdout and stderr): in the VM's output
	// directory (LAB_OUT), so the host keeps it, else in a temp dir. Its
	// tail is logged when the test fails.
	LogPath string

	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed

	mu     sync.Mutex
	killed bool
}

// StartAgent runs bin/makercast-agent with the lab's defaults and env on
// top: MAKERCAST_DEVICE_ID=lab, MAKERCAST_MQTT_URL at a new testenv
// Mosquitto, MAKERCAST_MEDIA_DIR in a temp dir, MAKERCAST_X264_PRESET=
// ultrafast, 640x360 at 15 fps and 800 kbit/s (what TCG encodes in real
// time), debug logs. Give at least MAKERCAST_CAMERAS. The agent gets
// SIGTERM when the test ends.
func StartAgent(t testing.TB, env map[string]string) *Agent {
	t.Helper()
	bin := filepath.Join(testenv.RepoRoot(t), "bin", "makercast-agent")
	if !Exists(bin) {
		t.Fatalf("hwlab: %s is missing: run `make build`", bin)
	}
	dir := t.TempDir()
	logDir := dir
	if out := os.Getenv("LAB_OUT"); out != "" {
		logDir = out // kept for the host: <cache>/lab/out/<job>/
	}
	full := map[string]string{
		"MAKERCAST_DEVICE_ID":     DeviceID,
		"MAKERCAST_MEDIA_DIR":     filepath.Join(dir, "media"),
		"MAKERCAST_X264_PRESET":   "ultrafast",
		"MAKERCAST_VIDEO_WIDTH":   "640",
		"MAKERCAST_VIDEO_HEIGHT":  "360",
		"MAKERCAST_VIDEO_FPS":     "15",
		"MAKERCAST_VIDEO_BITRATE": "800",
		"MAKERCAST_LOG_LEVEL":     "debug",
	}
	for k, v := range env {
		full[k] = v
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	logPath := filepath.Join(logDir, name+".agent.log")
	for n := 2; Exists(logPath); n++ { // a second agent in the same test
		logPath = filepath.Join(logDir, fmt.Sprintf("%s.agent-%d.log", name, n))
	}
	a := &Agent{Base: "makercast/" + DeviceID, Env: full, LogPath: logPath, t: t, done: make(chan struct{})}
	if _, ok := env["MAKERCAST_MQTT_URL"]; !ok {
		a.Broker = testenv.StartMosquitto(t)
		full["MAKERCAST_MQTT_URL"] = a.Broker.URL
	}
	a.MQTT = testenv.Watch(t, full["MAKERCAST_MQTT_URL"], a.Base+"/#")

	logf, err := os.Create(a.LogPath)
	if err != nil {
		t.Fatalf("hwlab: %v", err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	if r := os.Getenv("GST_REGISTRY"); r != "" {
		cmd.Env = append(cmd.Env, "GST_REGISTRY="+r, "GST_REGISTRY_UPDATE="+os.Getenv("GST_REGISTRY_UPDATE"))
	}
	for k, v := range full {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("hwlab: start the agent: %v", err)
	}
	a.cmd = cmd
	go func() { a.err = cmd.Wait(); logf.Close(); close(a.done) }()
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("hwlab: %v", err)
		}
		if t.Failed() {
			t.Logf("hwlab: agent log (%s):\n%s", a.LogPath, Tail(a.Logs(), 150))
		}
	})
	return a
}

// Topic is Base + "/" + suffix: a.Topic("camera/cam/state").
func (a *Agent) Topic(suffix string) string { return a.Base + "/" + suffix }

// Publish sends a command as mosquitto_pub would (QoS 1, not retained):
// a.Publish("camera/cam/stream/set", "ON").
func (a *Agent) Publish(suffix, payload string) {
	a.t.Helper()
	a.MQTT.Publish(a.Topic(suffix), []byte(payload), false)
}

// WaitOnline waits until the agent says online on its availability topic.
func (a *Agent) WaitOnline(within time.Duration) {
	a.t.Helper()
	a.MQTT.Wait(a.Topic("availability"), testenv.Equals("online"), within)
}

// Logs is the agent's log so far.
func (a *Agent) Logs() string {
	b, err := os.ReadFile(a.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// Running reports whether the agent process is alive.
func (a *Agent) Running() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// Kill kills the agent with SIGKILL, as a crash or a power cut would (its
// last will fires), and waits for it. The test's end then finds nothing to
// complain about.
func (a *Agent) Kill() {
	a.mu.Lock()
	a.killed = true
	a.mu.Unlock()
	_ = a.cmd.Process.Kill()
	<-a.done
}

// Stop sends SIGTERM and waits up to 15 s for a clean exit, then kills the
// agent. It returns an error when the agent had to be killed or exited with
// a failure on its own.
func (a *Agent) Stop() error {
	a.mu.Lock()
	killed := a.killed
	a.mu.Unlock()
	select {
	case <-a.done:
		if a.err != nil && !isSIGTERM(a.err) && !killed {
			return fmt.Errorf("agent exited: %w", a.err)
		}
		return nil
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		if a.err != nil && !isSIGTERM(a.err) {
			return fmt.Errorf("agent exit after SIGTERM: %w", a.err)
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		return fmt.Errorf("agent did not stop within 15 s of SIGTERM")
	}
}

func isSIGTERM(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}
