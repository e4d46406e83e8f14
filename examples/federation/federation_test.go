package federation

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// Three real Mosquittos on loopback, all from broker-config's secure
// profile: a federation broker with federation.acl, and two makerspaces,
// "mylab" with bridge.conf as shipped (sharing out only) and "otherlab"
// with its commands block enabled. Both spaces have a device called pi1:
// the prefixes keep them apart.
func TestFederationBridge(t *testing.T) {
	fed := testenv.StartSecureMosquitto(t, testenv.SecureOptions{
		ACL:   "examples/federation/federation.acl",
		Users: []string{"mylab", "otherlab", "evillab", "viewer", "operator"},
	})
	viewer := testenv.WatchAs(t, fed.URL, fed.As("viewer"), "#")
	mylab := startSpace(t, fed, "mylab", false)
	otherlab := startSpace(t, fed, "otherlab", true)

	// pi1 in mylab publishes what the agent publishes; pi2 (published for
	// by Home Assistant's user, to save a device) is not shared.
	// The last publish is the marker: once it is at the federation, every
	// earlier one that was going to cross has crossed (one bridge
	// connection, in order).
	pi1 := testenv.WatchAs(t, mylab.URL, mylab.As("pi1"), "makercast/pi1/request/+")
	ha := testenv.WatchAs(t, mylab.URL, mylab.As("homeassistant"), "makercast/#")
	shared := map[string]string{
		"makercast/pi1/availability":                "online",
		"makercast/pi1/state":                       `{"cameras":{}}`,
		"makercast/pi1/camera/test/state":           `{"capture":"running"}`,
		"makercast/pi1/camera/test/stream":          "ON",
		"makercast/pi1/destination/main/state":      `{"state":"live"}`,
		"makercast/pi1/camera/test/timelapse/event": `{"event":"done"}`,
	}
	private := map[string]string{
		"makercast/pi1/health":                        `{"board":{"serial":"10000000b3c5d2e1"}}`,
		"makercast/pi1/camera/test/image":             "JPEG",
		"makercast/pi1/camera/test/stats":             `{"capture_fps":30}`,
		"makercast/pi1/response/status":               `{"status":"ok"}`,
		"makercast/pi1/response/stream":               `{"status":"ok"}`,
		"homeassistant/switch/makercast_pi1/x/config": `{}`,
	}
	for topic, payload := range private {
		pi1.Publish(topic, []byte(payload), true)
	}
	ha.Publish("makercast/pi2/availability", []byte("online"), true)
	ha.Publish("makercast/pi2/state", []byte(`{}`), true)
	ha.Publish("makercast/pi1/camera/test/stream/set", []byte("ON"), false)
	ha.Publish("makercast/pi1/request/add_destination", []byte(`{"name":"x"}`), false)
	for topic, payload := range shared {
		pi1.Publish(topic, []byte(payload), true)
	}
	pi1.Publish("makercast/pi1/destination/main/state", []byte(`{"state":"marker"}`), true)

	const remote = "federation/mylab/"
	viewer.Wait(remote+"makercast/pi1/destination/main/state", testenv.Contains("marker"), 15*time.Second)
	for topic, payload := range shared {
		viewer.Wait(remote+topic, testenv.Equals(payload), 5*time.Second)
	}
	time.Sleep(300 * time.Millisecond)
	for _, m := range viewer.Messages() {
		local, ok := strings.CutPrefix(m.Topic, remote)
		if !ok {
			continue // otherlab's, below
		}
		if _, ok := shared[local]; !ok {
			t.Errorf("not shared, yet at the federation: %s %q", m.Topic, m.Payload)
		}
	}
	// A dashboard that connects later sees the state at once: retained
	// flags cross the bridge.
	late := testenv.WatchAs(t, fed.URL, fed.As("operator"), remote+"makercast/pi1/availability")
	if m := late.Wait(remote+"makercast/pi1/availability", testenv.Equals("online"), 5*time.Second); !m.Retained {
		t.Error("availability is not retained at the federation")
	}

	// Commands from the federation: otherlab lets them in (the control),
	// mylab does not.
	oha := testenv.WatchAs(t, otherlab.URL, otherlab.As("homeassistant"), "makercast/#")
	opi1 := testenv.WatchAs(t, otherlab.URL, otherlab.As("pi1"), "makercast/pi1/camera/+/stream/set", "makercast/pi1/request/+")
	opi1.Publish("makercast/pi1/availability", []byte("online"), true)
	viewer.Wait("federation/otherlab/makercast/pi1/availability", testenv.Equals("online"), 15*time.Second)
	late.Publish(remote+"makercast/pi1/camera/test/stream/set", []byte("ON-from-federation"), false)
	// Requests never come in (two locks: federation.acl lets nobody write
	// them, and the bridge does not subscribe to them).
	late.Publish("federation/otherlab/makercast/pi1/request/add_destination", []byte("request-from-federation"), false)
	late.Publish("federation/otherlab/makercast/pi1/camera/test/stream/set", []byte("ON-from-federation"), false)
	opi1.Wait("makercast/pi1/camera/test/stream/set", testenv.Equals("ON-from-federation"), 10*time.Second)
	opi1.Publish("makercast/pi1/response/stream", []byte(`{"status":"ok"}`), false)
	viewer.Wait("federation/otherlab/makercast/pi1/response/stream", testenv.Contains("ok"), 10*time.Second)
	time.Sleep(time.Second) // as long again for mylab's bridge, had it subscribed
	for _, m := range ha.Messages() {
		if strings.Contains(m.Payload, "from-federation") {
			t.Errorf("a command from the federation reached mylab, which does not take commands: %s %q", m.Topic, m.Payload)
		}
	}
	for _, m := range append(oha.Messages(), opi1.Messages()...) {
		if m.Payload == "request-from-federation" {
			t.Errorf("a request from the federation reached otherlab: %s", m.Topic)
		}
	}

	// A space cannot write into another space's tree at the federation.
	evil := testenv.WatchAs(t, fed.URL, fed.As("evillab"), "federation/evillab/#")
	evil.Publish(remote+"makercast/pi1/availability", []byte("offline"), true)
	evil.Publish("federation/evillab/makercast/pi9/availability", []byte("online"), true)
	viewer.Wait("federation/evillab/makercast/pi9/availability", testenv.Equals("online"), 5*time.Second)
	for _, m := range viewer.Messages() {
		if m.Topic == remote+"makercast/pi1/availability" && m.Payload == "offline" {
			t.Error("evillab wrote into mylab's tree")
		}
	}
}

// startSpace starts a makerspace's broker with bridge.conf, made out for
// this space and the test's federation broker; commands enables its
// commands block.
func startSpace(t *testing.T, fed *testenv.SecureMosquitto, space string, commands bool) *testenv.SecureMosquitto {
	t.Helper()
	b, err := os.ReadFile("bridge.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range [][2]string{
		{"address federation.example.org:8883", fmt.Sprintf("address localhost:%d", fed.MQTTPort)},
		{"bridge_cafile /etc/mosquitto/makercast/federation-ca.crt", "bridge_cafile " + fed.CAFile},
		{"remote_password CHANGE-ME", "remote_password " + fed.Passwords[space]},
		{"mylab", space},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("bridge.conf has no %q", r[0])
		}
		conf = strings.ReplaceAll(conf, r[0], r[1])
	}
	if commands {
		if !strings.Contains(conf, "\n#topic ") {
			t.Fatal("bridge.conf has no commands block")
		}
		conf = strings.ReplaceAll(conf, "\n#topic ", "\ntopic ")
	}
	return testenv.StartSecureMosquitto(t, testenv.SecureOptions{
		Users: []string{"homeassistant"}, Devices: []string{"pi1"}, Extra: "\n" + conf,
	})
}

// The hub receives a partner's stream (ffmpeg: a test pattern and a tone,
// H.264 + AAC, as the agent sends), serves it to players and restreams it
// to a second nginx-rtmp, where ffprobe finds both tracks.
func TestHubRestreams(t *testing.T) {
	target := testenv.StartRTMP(t)
	hub := testenv.StartRTMPTemplate(t, "examples/nginx-rtmp/hub.conf.tmpl", map[string]string{
		"__LISTEN_ADDR__":  "127.0.0.1",
		"__PARTNER_ADDR__": "127.0.0.1",
		"__PLAYERS__":      "127.0.0.1",
		"__PUSH_URL__":     target.URL() + "/from-hub",
	})
	if target.Publishing("from-hub") {
		t.Fatal("the target has the stream before anything was sent")
	}
	ffmpeg := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", "25",
		"-c:a", "aac", "-b:a", "64k", "-f", "flv", fmt.Sprintf("rtmp://127.0.0.1:%d/partner/mylab", hub.Port))
	var stderr strings.Builder
	ffmpeg.Stderr = &stderr
	ffmpeg.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := ffmpeg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ffmpeg.Process.Kill()
		ffmpeg.Wait()
		if t.Failed() {
			t.Logf("ffmpeg: %s", stderr.String())
		}
	})

	hub.WaitPublishing(t, "mylab", 15*time.Second)
	target.WaitPublishing(t, "from-hub", 15*time.Second)
	for _, url := range []string{target.URL() + "/from-hub", fmt.Sprintf("rtmp://127.0.0.1:%d/partner/mylab", hub.Port)} {
		pr := testenv.FFProbe(t, url)
		v, okv := pr.Video()
		a, oka := pr.Audio()
		if !okv || v.CodecName != "h264" || v.Width != 320 || !oka || a.CodecName != "aac" {
			t.Errorf("%s: video %+v, audio %+v; want h264 320 wide and aac", url, v, a)
		}
	}
}
