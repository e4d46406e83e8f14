package brokerconfig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/homeassistant"
	"github.com/makercast/makercast/internal/testenv"
)

// These tests start Mosquitto from mosquitto-secure.conf and acl, with the
// CA, certificates and passwords made by make-ca.sh and add-device.sh, and
// run the real agent against it. MQTT 3.1.1 does not tell a client that its
// publish was denied (the broker acks it and drops it), so every denial is
// proven by what a client allowed to read does not receive, next to a
// message that it does receive (the control), sent after the denied one on
// the same path.

var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "makercast-broker-test")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "makercast-agent")
	out, err := exec.Command("go", "build", "-o", agentBin, "github.com/makercast/makercast/cmd/makercast-agent").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serverName is the broker certificate's second name. The certificate has
// localhost but no IP address, so that ssl://127.0.0.1 needs
// MAKERCAST_MQTT_TLS_SERVER_NAME.
const serverName = "mqtt.makerspace.test"

func TestSecureBroker(t *testing.T) {
	b := testenv.StartSecureMosquitto(t, testenv.SecureOptions{
		ServerNames: []string{"localhost", serverName},
		Users:       []string{"homeassistant", "nodered"},
		Devices:     []string{"pi-a", "pi-b", "pi-agent", "pi-d"},
		CertDevices: []string{"pi-c"},
	})
	// Started as root, Mosquitto reads the key, password and ACL files as
	// user mosquitto: the scripts' ownership is what lets it.
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("mosquitto"); err == nil {
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.Pid()))
			if err != nil || !strings.Contains(string(status), "\nUid:\t"+u.Uid+"\t") {
				t.Errorf("the broker does not run as mosquitto (uid %s): %v\n%s", u.Uid, err, grepLines(string(status), "Uid"))
			}
		}
	}
	// Another broker's CA and a client certificate it signed.
	foreign := filepath.Join(t.TempDir(), "foreign")
	script(t, "make-ca.sh", "--dir", foreign, "localhost")
	script(t, "add-device.sh", "--dir", foreign, "--cert", "pi-c")

	t.Run("only known clients connect", func(t *testing.T) { onlyKnownClients(t, b, foreign) })
	t.Run("a device reads only its own commands", func(t *testing.T) { readsOnlyOwnCommands(t, b) })
	t.Run("a device cannot command or impersonate another", func(t *testing.T) { cannotCommandOrImpersonate(t, b) })
	t.Run("a device cannot take over another's client id", func(t *testing.T) { noClientIDTakeover(t, b) })
	t.Run("agent over TLS with a password", func(t *testing.T) { agentWithPassword(t, b) })
	t.Run("agent with a client certificate", func(t *testing.T) { agentWithCertificate(t, b) })
	t.Run("agent over websockets with TLS", func(t *testing.T) { agentOverWebsockets(t, b) })
	t.Run("agent refused says why", func(t *testing.T) { agentRefused(t, b, foreign) })
	if t.Failed() {
		return
	}
	// The agent's own publishes all passed the ACL.
	for _, id := range []string{"pi-agent", "pi-c"} {
		if strings.Contains(b.Log(), "Denied PUBLISH from "+id) {
			t.Errorf("the ACL denied a publish of the agent %s:\n%s", id, grepLines(b.Log(), "Denied PUBLISH from "+id))
		}
	}
}

func onlyKnownClients(t *testing.T, b *testenv.SecureMosquitto, foreign string) {
	wss := fmt.Sprintf("wss://localhost:%d", b.WSPort)
	mtls := fmt.Sprintf("ssl://localhost:%d", b.CertPort)
	refusedAuth := func(err error) bool { return errors.Is(err, packets.ErrorRefusedNotAuthorised) }
	anyError := func(err error) bool { return err != nil }
	wrongPW := b.As("pi-a")
	wrongPW.Password += "x"
	anon := b.As("")
	cases := []struct {
		name, url string
		o         testenv.ClientOptions
		refused   func(error) bool // nil: must connect
	}{
		{"device with its password", b.URL, b.As("pi-a"), nil},
		{"Home Assistant", b.URL, b.As("homeassistant"), nil},
		{"anonymous", b.URL, anon, refusedAuth},
		{"wrong password", b.URL, wrongPW, refusedAuth},
		{"unknown user", b.URL, testenv.ClientOptions{Username: "intruder", Password: "guess", CAFile: b.CAFile}, refusedAuth},
		{"plain MQTT on the TLS port", fmt.Sprintf("tcp://127.0.0.1:%d", b.MQTTPort), b.As("pi-a"), anyError},
		{"websockets over TLS", wss, b.As("nodered"), nil},
		{"anonymous over websockets", wss, anon, refusedAuth},
		{"device with its certificate", mtls, b.Device("pi-c"), nil},
		{"password but no certificate on the certificate port", mtls, b.As("pi-a"), anyError},
		{"certificate from another CA", mtls, testenv.ClientOptions{CAFile: b.CAFile,
			CertFile: filepath.Join(foreign, "devices/pi-c/pi-c.crt"), KeyFile: filepath.Join(foreign, "devices/pi-c/pi-c.key")}, anyError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := testenv.TryConnect(tc.url, tc.o)
			switch {
			case tc.refused == nil && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refused != nil && err == nil:
				t.Error("connected")
			case tc.refused != nil && !tc.refused(err):
				t.Errorf("refused for another reason than expected: %v", err)
			}
		})
	}

	// add-device.sh on a running broker: the new password works once
	// Mosquitto has reloaded (SIGHUP), as the script says.
	vars := b.AddDevice(t, "pi-late", false)
	if vars["MAKERCAST_MQTT_URL"] != b.URL || vars["MAKERCAST_MQTT_USERNAME"] != "pi-late" || len(vars["MAKERCAST_MQTT_PASSWORD"]) < 32 {
		t.Errorf("add-device.sh printed %v", vars)
	}
	deadline := time.Now().Add(5 * time.Second)
	for err := testenv.TryConnect(b.URL, b.As("pi-late")); err != nil; err = testenv.TryConnect(b.URL, b.As("pi-late")) {
		if time.Now().After(deadline) {
			t.Fatalf("a device added while the broker runs is refused after a reload: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// commandTopics are concrete topics for every filter the agent subscribes
// to (its commands, Home Assistant's birth message and its own discovery
// configs): + becomes "x". Taken from the code, so a new subscription that
// the ACL does not allow fails here.
func commandTopics(id string) []string {
	var out []string
	for _, f := range agentFilters(id) {
		out = append(out, strings.ReplaceAll(f, "+", "x"))
	}
	return out
}

func agentFilters(id string) []string {
	d := homeassistant.NewAnnouncer("", homeassistant.Device{ID: id}, "makercast/"+id, true)
	return append(agent.NewTopics("makercast", id).Subscriptions(), d.BirthTopic(), d.Filter())
}

// A device receives everything it subscribes to for itself, and nothing
// of another device, even with the other device's filters or #.
func readsOnlyOwnCommands(t *testing.T, b *testenv.SecureMosquitto) {
	ha := testenv.WatchAs(t, b.URL, b.As("homeassistant"), "#")
	filters := append(agentFilters("pi-b"), "#", "makercast/#", "makercast/pi-b/#", "homeassistant/#")
	a := testenv.WatchAs(t, b.URL, b.As("pi-a"), append(filters, agentFilters("pi-a")...)...)
	nodered := testenv.WatchAs(t, b.URL, b.As("nodered"), "makercast/pi-b/#")

	// pi-b's own state and discovery config (retained), then every command
	// to pi-b, then every command to pi-a: those are the control.
	pb := testenv.WatchAs(t, b.URL, b.As("pi-b"), "makercast/pi-b/request/+")
	pb.Publish("makercast/pi-b/state", []byte(`{"of":"pi-b"}`), true)
	pb.Publish("homeassistant/switch/makercast_pi-b/x/config", []byte(`{"of":"pi-b"}`), true)
	for _, topic := range commandTopics("pi-b") {
		if topic != "homeassistant/status" {
			ha.Publish(topic, []byte("for-pi-b"), false)
		}
	}
	own := commandTopics("pi-a")
	for _, topic := range own {
		ha.Publish(topic, []byte("for-pi-a"), false)
	}
	for _, topic := range own {
		a.Wait(topic, testenv.Equals("for-pi-a"), 5*time.Second)
	}
	// Node-RED may read pi-b's traffic: it was there to be read.
	nodered.Wait("makercast/pi-b/request/x", testenv.Equals("for-pi-b"), 5*time.Second)
	nodered.Wait("makercast/pi-b/state", testenv.Contains("pi-b"), 5*time.Second)
	for _, m := range a.Messages() {
		if strings.Contains(m.Topic, "pi-b") || m.Payload != "for-pi-a" {
			t.Errorf("pi-a received %s %q", m.Topic, m.Payload)
		}
	}
}

// A device's publishes outside its own topics go nowhere: not to another
// device's commands, state, availability or discovery ids, not to Home
// Assistant's birth topic. Home Assistant and Node-RED command every device.
func cannotCommandOrImpersonate(t *testing.T, b *testenv.SecureMosquitto) {
	ha := testenv.WatchAs(t, b.URL, b.As("homeassistant"), "#")
	pb := testenv.WatchAs(t, b.URL, b.As("pi-b"), agentFilters("pi-b")...)
	a := testenv.WatchAs(t, b.URL, b.As("pi-a"), "makercast/pi-a/request/+")
	nodered := testenv.WatchAs(t, b.URL, b.As("nodered"), "makercast/+/response/+")

	forged := append(commandTopics("pi-b"),
		"makercast/pi-b/availability",
		"makercast/pi-b/state",
		"makercast/pi-ab/state", // an id that starts with pi-a's
		"homeassistant/switch/makercast_pi-b/main/config",
		"homeassistant/switch/makercast_pi-ab/main/config",
		"makercast",
		"$SYS/broker/forged",
	)
	for _, topic := range forged {
		a.Publish(topic, []byte("forged-by-pi-a"), true)
	}
	// Controls, after the forgeries: pi-a's own topics reach Home Assistant,
	// and Home Assistant's and Node-RED's commands reach pi-b.
	a.Publish("makercast/pi-a/availability", []byte("online"), true)
	a.Publish("homeassistant/switch/makercast_pi-a/main/config", []byte(`{"of":"pi-a"}`), true)
	ha.Publish("makercast/pi-b/camera/test/stream/set", []byte("ON-from-ha"), false)
	nodered.Publish("makercast/pi-b/request/status", []byte("from-nodered"), false)
	ha.Wait("makercast/pi-a/availability", testenv.Equals("online"), 5*time.Second)
	ha.Wait("homeassistant/switch/makercast_pi-a/main/config", testenv.Contains("pi-a"), 5*time.Second)
	pb.Wait("makercast/pi-b/camera/test/stream/set", testenv.Equals("ON-from-ha"), 5*time.Second)
	pb.Wait("makercast/pi-b/request/status", testenv.Equals("from-nodered"), 5*time.Second)
	for _, w := range []*testenv.Watcher{ha, pb} {
		for _, m := range w.Messages() {
			if m.Payload == "forged-by-pi-a" {
				t.Errorf("a forged message was delivered: %s", m.Topic)
			}
		}
	}
	if !strings.Contains(b.Log(), "Denied PUBLISH from pi-a") {
		t.Error("the broker logged no denied publish")
	}
}

// A device cannot kick another off by connecting with its client id (the
// victim's last will would say it went offline): the broker uses the user
// name as the client id. The control: a second connection as the same user
// does replace the first, and its will fires.
func noClientIDTakeover(t *testing.T, b *testenv.SecureMosquitto) {
	ha := testenv.WatchAs(t, b.URL, b.As("homeassistant"), "makercast/pi-b/availability")
	victim := b.As("pi-b")
	victim.ClientID, victim.WillTopic, victim.WillPayload = "makercast-pi-b", "makercast/pi-b/availability", "offline"
	pb := testenv.WatchAs(t, b.URL, victim, "makercast/pi-b/camera/+/stream/set")
	mark := ha.Len()
	pb.Publish("makercast/pi-b/availability", []byte("online"), true)
	ha.WaitFrom(mark, "makercast/pi-b/availability", testenv.Equals("online"), 5*time.Second)

	thief := b.As("pi-a")
	thief.ClientID = "makercast-pi-b"
	testenv.WatchAs(t, b.URL, thief, "makercast/pi-a/request/+")
	hb := testenv.WatchAs(t, b.URL, b.As("nodered"), "makercast/pi-b/camera/+/stream/set")
	hb.Publish("makercast/pi-b/camera/test/stream/set", []byte("still-there"), false)
	pb.Wait("makercast/pi-b/camera/test/stream/set", testenv.Equals("still-there"), 5*time.Second)
	for _, m := range ha.Messages()[mark:] {
		if m.Payload == "offline" {
			t.Fatal("pi-a's connection with pi-b's client id took pi-b's session over")
		}
	}

	// The control: pi-b connecting a second time replaces the first
	// connection, whose will says offline.
	if err := testenv.TryConnect(b.URL, b.As("pi-b")); err != nil {
		t.Fatal(err)
	}
	ha.WaitFrom(mark, "makercast/pi-b/availability", testenv.Equals("offline"), 5*time.Second)
}

// The real agent, with the variables add-device.sh printed: it comes
// online, answers Home Assistant, ignores another device's command, clears
// a stale discovery config (reading its own retained configs back) and
// announces again on Home Assistant's birth message.
func agentWithPassword(t *testing.T, b *testenv.SecureMosquitto) {
	const id = "pi-agent"
	base := "makercast/" + id
	stale := "homeassistant/switch/makercast_" + id + "/gone/config"
	ha := testenv.WatchAs(t, b.URL, b.As("homeassistant"), base+"/#", homeassistant.NodeFilter("", id))
	ha.Publish(stale, []byte(`{"name":"gone"}`), true)

	vars := b.Devices[id]
	if vars["MAKERCAST_MQTT_URL"] != b.URL || !strings.HasPrefix(b.URL, "ssl://localhost:") {
		t.Fatalf("variables %v", vars)
	}
	p := startAgent(t, vars)
	ha.Wait(base+"/availability", testenv.Equals("online"), 20*time.Second)
	ha.Wait(stale, testenv.Equals(""), 10*time.Second)
	ha.Wait(base+"/health", nil, 10*time.Second)

	pb := testenv.WatchAs(t, b.URL, b.As("pi-b"), "makercast/pi-b/request/+")
	pb.Publish(base+"/request/status", []byte(`{"transaction":"from-pi-b"}`), false)
	ha.Publish(base+"/request/status", []byte(`{"transaction":"from-ha"}`), false)
	ha.Wait(base+"/response/status", testenv.Contains(`"status":"ok"`, "from-ha"), 10*time.Second)
	for _, m := range ha.Messages() {
		if strings.Contains(m.Payload, "from-pi-b") {
			t.Errorf("the agent answered pi-b's command: %s %s", m.Topic, m.Payload)
		}
	}

	var config string
	for _, m := range ha.Messages() {
		if strings.HasPrefix(m.Topic, "homeassistant/") && m.Topic != stale && m.Payload != "" {
			config = m.Topic
			break
		}
	}
	if config == "" {
		t.Fatal("the agent published no discovery config")
	}
	mark := ha.Len()
	ha.Publish("homeassistant/status", []byte("online"), false)
	ha.WaitFrom(mark, config, nil, 10*time.Second)

	p.stop(t)
	if strings.Contains(p.logs.String(), b.Passwords[id]) {
		t.Error("the agent logged its password")
	}
}

// The agent with a client certificate and no password, on the certificate
// listener; and by IP address with MAKERCAST_MQTT_TLS_SERVER_NAME.
func agentWithCertificate(t *testing.T, b *testenv.SecureMosquitto) {
	vars := b.Devices["pi-c"]
	if vars["MAKERCAST_MQTT_CERT_FILE"] == "" || vars["MAKERCAST_MQTT_KEY_FILE"] == "" || vars["MAKERCAST_MQTT_PASSWORD"] != "" {
		t.Fatalf("variables %v", vars)
	}
	key, err := os.ReadFile(vars["MAKERCAST_MQTT_KEY_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	ha := testenv.WatchAs(t, b.URL, b.As("homeassistant"), "makercast/pi-c/#")
	for _, url := range []string{vars["MAKERCAST_MQTT_URL"], fmt.Sprintf("ssl://127.0.0.1:%d", b.CertPort)} {
		t.Run(url, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range vars {
				env[k] = v
			}
			env["MAKERCAST_MQTT_URL"] = url
			if strings.Contains(url, "127.0.0.1") {
				env["MAKERCAST_MQTT_TLS_SERVER_NAME"] = serverName
			}
			mark := ha.Len()
			p := startAgent(t, env)
			ha.WaitFrom(mark, "makercast/pi-c/availability", testenv.Equals("online"), 20*time.Second)
			tx := fmt.Sprintf("cert-%d", mark)
			ha.Publish("makercast/pi-c/request/status", []byte(`{"transaction":"`+tx+`"}`), false)
			ha.WaitFrom(mark, "makercast/pi-c/response/status", testenv.Contains(`"status":"ok"`, tx), 10*time.Second)
			p.stop(t)
			ha.WaitFrom(mark, "makercast/pi-c/availability", testenv.Equals("offline"), 5*time.Second)
			for _, line := range strings.Split(string(key), "\n") {
				if len(line) > 20 && strings.Contains(p.logs.String(), line) {
					t.Fatal("the agent logged its key")
				}
			}
		})
	}
}

// wss:// gets the same TLS settings as ssl:// (the CA file here).
func agentOverWebsockets(t *testing.T, b *testenv.SecureMosquitto) {
	ha := testenv.WatchAs(t, b.URL, b.As("homeassistant"), "makercast/pi-a/#")
	// pi-a's availability is retained from the ACL tests: clear it, so
	// that "online" below is the agent's.
	ha.Publish("makercast/pi-a/availability", nil, true)
	mark := ha.Len()
	env := map[string]string{}
	for k, v := range b.Devices["pi-a"] {
		env[k] = v
	}
	env["MAKERCAST_MQTT_URL"] = fmt.Sprintf("wss://localhost:%d", b.WSPort)
	p := startAgent(t, env)
	ha.WaitFrom(mark, "makercast/pi-a/availability", testenv.Equals("online"), 20*time.Second)
	ha.Publish("makercast/pi-a/request/status", []byte(`{"transaction":"over-wss"}`), false)
	ha.WaitFrom(mark, "makercast/pi-a/response/status", testenv.Contains(`"status":"ok"`, "over-wss"), 10*time.Second)
	p.stop(t)
}

// An agent that cannot connect keeps trying and says why, in words.
func agentRefused(t *testing.T, b *testenv.SecureMosquitto, foreign string) {
	ha := testenv.WatchAs(t, b.URL, b.As("homeassistant"), "makercast/pi-d/availability")
	vars := b.Devices["pi-d"]
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"wrong CA", map[string]string{"MAKERCAST_MQTT_CA_FILE": filepath.Join(foreign, "ca.crt")},
			[]string{"certificate signed by unknown authority", "is not signed by the CA in " + filepath.Join(foreign, "ca.crt")}},
		{"IP address without server name", map[string]string{"MAKERCAST_MQTT_URL": fmt.Sprintf("ssl://127.0.0.1:%d", b.MQTTPort)},
			[]string{"doesn't contain any IP SANs", "is not for 127.0.0.1"}},
		{"wrong password", map[string]string{"MAKERCAST_MQTT_PASSWORD": "not-" + vars["MAKERCAST_MQTT_PASSWORD"]},
			[]string{"not Authorized", "refused the credentials"}},
		{"no certificate on the certificate listener", map[string]string{"MAKERCAST_MQTT_URL": fmt.Sprintf("ssl://localhost:%d", b.CertPort)},
			// TLS 1.3: "remote error: tls: certificate required", or a reset
			// when the broker closes before its alert is read.
			[]string{"may need a client certificate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range vars {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			p := startAgent(t, env)
			for _, want := range tc.want {
				p.waitLog(t, want, 15*time.Second)
			}
			time.Sleep(time.Second) // time to connect, had it been let in
			p.stop(t)
			if n := strings.Count(p.logs.String(), "cannot connect to the broker"); n != 1 {
				t.Errorf("the failure was logged %d times, want once", n)
			}
			if strings.Contains(p.logs.String(), vars["MAKERCAST_MQTT_PASSWORD"]) {
				t.Error("the agent logged its password")
			}
		})
	}
	t.Cleanup(func() {
		for _, m := range ha.Messages() {
			if m.Payload == "online" {
				t.Error("an agent that should have been refused came online")
			}
		}
	})
}

type agentProc struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

// startAgent runs the agent binary with exactly vars (plus a test camera
// and small, fast settings), stopped when the test ends.
func startAgent(t *testing.T, vars map[string]string) *agentProc {
	t.Helper()
	env := map[string]string{
		"MAKERCAST_CAMERAS": "test", "MAKERCAST_VIDEO_WIDTH": "320", "MAKERCAST_VIDEO_HEIGHT": "180",
		"MAKERCAST_HEALTH_INTERVAL": "1s", "MAKERCAST_LOG_LEVEL": "debug", "MAKERCAST_MEDIA_DIR": t.TempDir(),
	}
	for k, v := range vars {
		env[k] = v
	}
	cmd := exec.Command(agentBin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &agentProc{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("agent logs:\n%s", p.logs)
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *agentProc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("agent exited with %v", p.err)
		}
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Error("agent did not stop within 15 s of SIGTERM")
	}
}

func (p *agentProc) waitLog(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent never logged %q", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer = testenv.SyncBuffer

// script runs one of this directory's scripts.
func script(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command("./"+name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return string(out)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
