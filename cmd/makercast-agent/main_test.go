package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// The tests below run the real binary, as a user would, against a real
// Mosquitto and nginx-rtmp, and check what the RTMP server received.

var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "makercast-e2e")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "makercast-agent")
	out, err := exec.Command("go", "build", "-o", agentBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type syncBuffer = testenv.SyncBuffer

type agentProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// startAgent runs the binary with exactly the given MAKERCAST_ variables
// (plus small, fast video defaults for tests).
func startAgent(t *testing.T, env map[string]string) *agentProc {
	t.Helper()
	return startAgentWrapped(t, env, nil)
}

// startAgentWrapped runs the agent under a wrapper command (wrap + the
// binary's path as its last argument).
func startAgentWrapped(t *testing.T, env map[string]string, wrap []string) *agentProc {
	t.Helper()
	full := map[string]string{
		"MAKERCAST_CAMERAS":       "test",
		"MAKERCAST_VIDEO_WIDTH":   "640",
		"MAKERCAST_VIDEO_HEIGHT":  "360",
		"MAKERCAST_VIDEO_BITRATE": "800",
		"MAKERCAST_LOG_LEVEL":     "debug",
		"MAKERCAST_MEDIA_DIR":     t.TempDir(),
	}
	for k, v := range env {
		full[k] = v
	}
	cmd := exec.Command(agentBin)
	if len(wrap) > 0 {
		cmd = exec.Command(wrap[0], append(wrap[1:], agentBin)...)
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range full {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{t: t, cmd: cmd, logs: logs, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("agent logs:\n%s", logs.String())
		}
	})
	return p
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *agentProc) Stop() error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		p.t.Errorf("agent did not stop within 15 s of SIGTERM")
		return <-p.done
	}
}

// rig is a broker, an RTMP server, a watcher on makercast/# and topic names.
type rig struct {
	broker *testenv.Mosquitto
	rtmp   *testenv.RTMPServer
	w      *testenv.Watcher
	base   string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{broker: testenv.StartMosquitto(t), rtmp: testenv.StartRTMP(t), base: "makercast/pi1"}
	r.w = testenv.Watch(t, r.broker.URL, "makercast/#")
	return r
}

func (r *rig) env(extra map[string]string) map[string]string {
	env := map[string]string{
		"MAKERCAST_DEVICE_ID":  "pi1",
		"MAKERCAST_MQTT_URL":   r.broker.URL,
		"MAKERCAST_STREAM_URL": r.rtmp.URL(),
		"MAKERCAST_STREAM_KEY": "s3cretKEY-42",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// goLive switches the test camera on, as mosquitto_pub would, and waits
// until the RTMP server has the stream (key s3cretKEY-42).
func (r *rig) goLive(t *testing.T) {
	t.Helper()
	r.w.Publish(r.base+"/camera/test/stream/set", []byte("ON"), false)
	r.rtmp.WaitPublishing(t, "s3cretKEY-42", 10*time.Second)
}

func (r *rig) online(t *testing.T) {
	t.Helper()
	r.w.Wait(r.base+"/availability", testenv.Equals("online"), 15*time.Second)
	r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"state":"idle"`), 10*time.Second)
}

func destState(t *testing.T, payload string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		t.Fatalf("state %q: %v", payload, err)
	}
	return m
}

func TestGoLiveOnCommandAndStop(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(map[string]string{"MAKERCAST_X264_PRESET": "veryfast"}))
	r.online(t)

	r.goLive(t)
	r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"switch":"ON"`, `"state":"live"`), 10*time.Second)
	r.w.Wait(r.base+"/camera/test/stream", testenv.Equals("ON"), 5*time.Second)
	r.w.Wait(r.base+"/response/stream", testenv.Contains(`"status":"ok"`), 5*time.Second)

	pr := testenv.FFProbe(t, r.rtmp.URL()+"/s3cretKEY-42")
	v, ok := pr.Video()
	if !ok {
		t.Fatalf("no video at the server: %+v", pr)
	}
	if v.CodecName != "h264" || v.Profile != "Main" || v.PixFmt != "yuv420p" || v.Width != 640 || v.Height != 360 {
		t.Errorf("video at the server = %+v, want h264 Main yuv420p 640x360", v)
	}
	if v.AvgFrameRate != "30/1" && v.RFrameRate != "30/1" {
		t.Errorf("frame rate %s/%s, want 30/1", v.AvgFrameRate, v.RFrameRate)
	}
	if a, ok := pr.Audio(); !ok || a.CodecName != "aac" || a.Profile != "LC" {
		t.Errorf("audio at the server = %+v (present %v), want AAC LC", a, ok)
	}
	// A keyframe every 2 s (MAKERCAST_KEYFRAME_INTERVAL's default), as the
	// platforms ask.
	keys := testenv.KeyframeTimes(t, r.rtmp.URL()+"/s3cretKEY-42", 7)
	if len(keys) < 3 {
		t.Fatalf("keyframes at %v in 7 s, want at least 3", keys)
	}
	for i := 1; i < len(keys); i++ {
		if d := keys[i] - keys[i-1]; d < 1.9 || d > 2.1 {
			t.Errorf("keyframes at %v: interval %.2f s, want 2 s", keys, d)
		}
	}

	mark := r.w.Len()
	r.w.Publish(r.base+"/camera/test/stream/set", []byte("OFF"), false)
	r.rtmp.WaitGone(t, "s3cretKEY-42", 5*time.Second)
	r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"switch":"OFF"`, `"state":"idle"`), 5*time.Second)
	r.w.WaitFrom(mark, r.base+"/camera/test/state", testenv.Contains(`"capture":"idle"`), 5*time.Second)
}

func TestRequestResponseWithTransaction(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(nil))
	r.online(t)
	r.w.Publish(r.base+"/request/destination", []byte(`{"destination":"main","state":"ON","transaction":"tx-1"}`), false)
	r.w.Wait(r.base+"/response/destination", testenv.Contains(`"status":"ok"`, `"transaction":"tx-1"`), 5*time.Second)
	r.rtmp.WaitPublishing(t, "s3cretKEY-42", 10*time.Second)
	r.w.Publish(r.base+"/request/status", []byte(`{"transaction":"tx-2"}`), false)
	m := r.w.Wait(r.base+"/response/status", testenv.Contains(`"transaction":"tx-2"`), 5*time.Second)
	if !strings.Contains(m.Payload, `"main":{"switch":"ON"`) {
		t.Errorf("status response %s does not show main ON", m.Payload)
	}
	r.w.Publish(r.base+"/request/destination", []byte(`{"destination":"nope","state":"ON","transaction":"tx-3"}`), false)
	r.w.Wait(r.base+"/response/destination", testenv.Contains(`"status":"error"`, `"code":"unknown_destination"`, `"transaction":"tx-3"`), 5*time.Second)
}

func TestDeadDestinationDoesNotStopTheOther(t *testing.T) {
	r := newRig(t)
	late := testenv.FreePort(t) // nothing listens here yet
	startAgent(t, r.env(map[string]string{
		"MAKERCAST_DESTINATIONS":         fmt.Sprintf("late=rtmp://127.0.0.1:%d/live", late),
		"MAKERCAST_DESTINATION_LATE_KEY": "latekey",
	}))
	r.online(t)
	r.goLive(t)
	r.w.Wait(r.base+"/destination/late/state", testenv.Contains(`"state":"retrying"`, `refused`), 10*time.Second)

	before, _ := r.rtmp.Stats()
	time.Sleep(3 * time.Second)
	after, _ := r.rtmp.Stats()
	if after["s3cretKEY-42"].BytesIn <= before["s3cretKEY-42"].BytesIn+100_000 {
		t.Fatalf("healthy destination starved while the other fails: %d -> %d bytes", before["s3cretKEY-42"].BytesIn, after["s3cretKEY-42"].BytesIn)
	}
	// The dead one comes up: it goes live by itself, the first one stays.
	srv2 := testenv.StartRTMPOnPort(t, late)
	srv2.WaitPublishing(t, "latekey", 10*time.Second)
	r.w.Wait(r.base+"/destination/late/state", testenv.Contains(`"state":"live"`), 5*time.Second)
	if !r.rtmp.Publishing("s3cretKEY-42") {
		t.Fatal("first destination dropped when the second came up")
	}
}

func TestRTMPServerRestartMidStream(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(nil))
	r.online(t)
	r.goLive(t)
	mark := r.w.Len()
	r.rtmp.Stop()
	_, i := r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"state":"retrying"`), 10*time.Second)
	time.Sleep(3 * time.Second)
	r.rtmp.Start()
	back := r.rtmp.WaitPublishing(t, "s3cretKEY-42", 5*time.Second)
	t.Logf("stream back %s after the server restarted", back.Round(time.Millisecond))
	m, _ := r.w.WaitFrom(i+1, r.base+"/destination/main/state", testenv.Contains(`"state":"live"`), 5*time.Second)
	if st := destState(t, m.Payload); st["reconnects"].(float64) < 1 {
		t.Errorf("reconnects = %v after an outage, want >= 1", st["reconnects"])
	}
}

func TestBrokerRestartKeepsStreamAndRepublishesState(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(nil))
	r.online(t)
	r.goLive(t)
	r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"state":"live"`), 5*time.Second)

	r.broker.Stop() // retained messages are gone with it (persistence off)
	time.Sleep(2 * time.Second)
	if !r.rtmp.Publishing("s3cretKEY-42") {
		t.Fatal("stream stopped when the broker went away")
	}
	mark := r.w.Len()
	r.broker.Start()
	r.w.WaitFrom(mark, r.base+"/availability", testenv.Equals("online"), 20*time.Second)
	r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"switch":"ON"`, `"state":"live"`), 10*time.Second)
	// A fresh subscriber gets the state retained, as HA would after a restart.
	fresh := testenv.Watch(t, r.broker.URL, r.base+"/#")
	fresh.Wait(r.base+"/camera/test/stream", testenv.Equals("ON"), 5*time.Second)
	// Commands work on the new session.
	r.w.Publish(r.base+"/camera/test/stream/set", []byte("OFF"), false)
	r.rtmp.WaitGone(t, "s3cretKEY-42", 5*time.Second)
}

func TestHostilePayloadsAreAnsweredAndStreamKeepsRunning(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(nil))
	r.online(t)
	r.goLive(t)
	before, _ := r.rtmp.Stats()

	cases := []struct {
		name, topic, payload, response, code string
	}{
		{"malformed json", "/camera/test/stream/set", `{"state":`, "stream", "bad_payload"},
		{"wrong type", "/camera/test/stream/set", `{"state":1}`, "stream", "bad_payload"},
		{"unknown field", "/camera/test/stream/set", `{"sate":"ON"}`, "stream", "bad_payload"},
		{"bad value", "/camera/test/stream/set", `MAYBE`, "stream", "bad_value"},
		{"empty", "/camera/test/stream/set", ``, "stream", "bad_value"},
		{"unknown camera", "/camera/nope/stream/set", `ON`, "stream", "unknown_camera"},
		{"unknown destination", "/destination/nope/set", `ON`, "destination", "unknown_destination"},
		{"oversized", "/camera/test/stream/set", `{"state":"` + strings.Repeat("A", 10000) + `"}`, "stream", "payload_too_large"},
		{"unknown command", "/request/format_disk", `{}`, "format_disk", "unknown_command"},
		{"ftp scheme", "/request/add_destination", `{"name":"x","url":"ftp://127.0.0.1/live","key":"k"}`, "add_destination", "bad_value"},
		{"file scheme", "/request/add_destination", `{"name":"x","url":"file:///etc/passwd","key":"k"}`, "add_destination", "bad_value"},
		{"pipeline injection in url", "/request/add_destination", `{"name":"x","url":"rtmp://127.0.0.1/live ! filesink location=/tmp/pwn","key":"k"}`, "add_destination", "bad_value"},
		{"pipeline injection in key", "/request/add_destination", `{"name":"x","url":"rtmp://127.0.0.1/live","key":"k ! filesink location=/tmp/pwn"}`, "add_destination", "bad_value"},
		{"quote in key", "/request/add_destination", `{"name":"x","url":"rtmp://127.0.0.1/live","key":"a\"b"}`, "add_destination", "bad_value"},
		{"bad name", "/request/add_destination", `{"name":"X Y!","url":"rtmp://127.0.0.1/live","key":"k"}`, "add_destination", "bad_value"},
		{"port out of range", "/request/add_destination", `{"name":"x","url":"rtmp://127.0.0.1:99999/live","key":"k"}`, "add_destination", "bad_value"},
		{"remove configured", "/request/remove_destination", `{"name":"main"}`, "remove_destination", "conflict"},
		{"not json", "/request/stream", "\x00\xff\xfe", "stream", "bad_payload"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mark := r.w.Len()
			r.w.Publish(r.base+c.topic, []byte(c.payload), false)
			m, _ := r.w.WaitFrom(mark, r.base+"/response/"+c.response, testenv.Contains(`"status":"error"`), 5*time.Second)
			if !strings.Contains(m.Payload, `"code":"`+c.code+`"`) {
				t.Errorf("response %s, want code %s", m.Payload, c.code)
			}
			if !strings.Contains(m.Payload, `"error":"`) {
				t.Errorf("response %s has no human message", m.Payload)
			}
		})
	}
	time.Sleep(time.Second)
	after, _ := r.rtmp.Stats()
	if !r.rtmp.Publishing("s3cretKEY-42") || after["s3cretKEY-42"].BytesIn <= before["s3cretKEY-42"].BytesIn {
		t.Fatal("the stream was disturbed by bad commands")
	}
	last, _ := r.w.Last(r.base + "/destination/main/state")
	if st := destState(t, last); st["reconnects"].(float64) != 0 || st["state"] != "live" {
		t.Errorf("destination state after bad commands = %s", last)
	}
	if _, err := os.Stat("/tmp/pwn"); err == nil {
		t.Error("/tmp/pwn exists: a pipeline injection went through")
	}
}

func TestAddDestinationAtRuntime(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(nil))
	r.online(t)
	r.w.Publish(r.base+"/request/add_destination", []byte(`{"name":"extra","url":"`+r.rtmp.URL()+`","key":"extrakey","transaction":"a1"}`), false)
	r.w.Wait(r.base+"/response/add_destination", testenv.Contains(`"status":"ok"`, `"transaction":"a1"`), 5*time.Second)
	r.w.Publish(r.base+"/destination/extra/set", []byte(`{"state":"ON"}`), false)
	r.rtmp.WaitPublishing(t, "extrakey", 10*time.Second)
	if r.rtmp.Publishing("s3cretKEY-42") {
		t.Error("switching one destination on started the other too")
	}
	r.w.Publish(r.base+"/request/remove_destination", []byte(`{"name":"extra"}`), false)
	r.rtmp.WaitGone(t, "extrakey", 5*time.Second)
	r.w.Wait(r.base+"/destination/extra/state", testenv.Equals(""), 5*time.Second)
}

func TestSecretsNeverShown(t *testing.T) {
	r := newRig(t)
	const key, pw = "s3cretKEY-42", "mqtt-pa55"
	dead := testenv.FreePort(t)
	a := startAgent(t, r.env(map[string]string{
		"MAKERCAST_DESTINATIONS":  fmt.Sprintf("dead=rtmp://127.0.0.1:%d/live/deadkey-77", dead),
		"MAKERCAST_MQTT_PASSWORD": pw, // the dev broker ignores it
	}))
	r.online(t)
	r.w.Publish(r.base+"/camera/test/stream/set", []byte("ON"), false)
	r.rtmp.WaitPublishing(t, key, 10*time.Second)
	r.w.Wait(r.base+"/destination/dead/state", testenv.Contains(`"state":"retrying"`), 10*time.Second)
	r.w.Publish(r.base+"/request/add_destination", []byte(`{"name":"bad","url":"gopher://127.0.0.1/live","key":"addedkey-99"}`), false)
	r.w.Wait(r.base+"/response/add_destination", testenv.Contains(`"status":"error"`), 5*time.Second)
	r.w.Publish(r.base+"/request/status", nil, false)
	r.w.Wait(r.base+"/response/status", nil, 5*time.Second)
	r.rtmp.Stop() // errors from a live sender too
	r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"state":"retrying"`), 10*time.Second)
	a.Stop()

	help := exec.Command(agentBin, "-help")
	help.Env = []string{"MAKERCAST_STREAM_KEY=" + key, "MAKERCAST_MQTT_PASSWORD=" + pw}
	helpOut, _ := help.CombinedOutput()

	var mqttText strings.Builder
	for _, m := range r.w.Messages() {
		if strings.Contains(m.Topic, "/request/") {
			continue // what the test itself sent
		}
		mqttText.WriteString(m.Topic + " " + m.Payload + "\n")
	}
	for _, where := range []struct{ name, text string }{
		{"logs", a.logs.String()}, {"MQTT", mqttText.String()}, {"-help", string(helpOut)},
	} {
		for _, s := range []string{key, pw, "deadkey-77", "addedkey-99"} {
			if strings.Contains(where.text, s) {
				t.Errorf("%s contain the secret %q", where.name, s)
			}
		}
	}
	if !strings.Contains(a.logs.String(), "refused") || !strings.Contains(mqttText.String(), "/live/****") {
		t.Error("the capture does not hold the errors and URLs it should; the check above proves nothing")
	}
}

func TestOfflineOnSIGTERMAndOnCrash(t *testing.T) {
	r := newRig(t)
	a := startAgent(t, r.env(nil))
	r.online(t)
	mark := r.w.Len()
	if err := a.Stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	r.w.WaitFrom(mark, r.base+"/availability", testenv.Equals("offline"), 5*time.Second)

	b := startAgent(t, r.env(nil))
	mark = r.w.Len()
	r.w.WaitFrom(mark, r.base+"/availability", testenv.Equals("online"), 15*time.Second)
	mark = r.w.Len()
	_ = b.cmd.Process.Kill()
	r.w.WaitFrom(mark, r.base+"/availability", testenv.Equals("offline"), 30*time.Second) // the last will
}

func TestBadConfigExitsNamingTheVariable(t *testing.T) {
	cases := map[string]string{
		"MAKERCAST_VIDEO_FPS":         "999",
		"MAKERCAST_STREAM_URL":        "http://example.com/live",
		"MAKERCAST_MQTT_URL":          "mqtt//nope",
		"MAKERCAST_CAMERAS":           "cam=v4l2:/etc/passwd ! x",
		"MAKERCAST_X264_PRESET":       "placebo",
		"MAKERCAST_KEYFRAME_INTERVAL": "soon",
	}
	for v, val := range cases {
		cmd := exec.Command(agentBin)
		cmd.Env = []string{v + "=" + val, "MAKERCAST_CAMERAS=test"}
		if v == "MAKERCAST_CAMERAS" {
			cmd.Env = []string{v + "=" + val}
		}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s=%s: exit 0, want an error", v, val)
			continue
		}
		if !strings.Contains(string(out), strings.TrimPrefix(v, "MAKERCAST_")) {
			t.Errorf("%s=%s: message does not name the variable: %s", v, val, out)
		}
	}
}

func TestMissingCameraIsReportedAndRetried(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(map[string]string{"MAKERCAST_CAMERAS": "cam=v4l2:/dev/video-gone:raw"}))
	r.w.Wait(r.base+"/availability", testenv.Equals("online"), 15*time.Second)
	r.w.Publish(r.base+"/camera/cam/stream/set", []byte("ON"), false)
	m := r.w.Wait(r.base+"/camera/cam/state", testenv.Contains(`"capture":"error"`), 20*time.Second)
	if !strings.Contains(m.Payload, "video-gone") {
		t.Errorf("camera error does not say which device: %s", m.Payload)
	}
	r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"state":"retrying"`, `camera:`), 10*time.Second)
	// It keeps trying (a USB camera plugged back in is picked up) ...
	mark := r.w.Len()
	r.w.WaitFrom(mark, r.base+"/camera/cam/state", testenv.Contains(`"capture":"starting"`), 10*time.Second)
	// ... and keeps answering; switched off, it stops trying.
	mark = r.w.Len()
	r.w.Publish(r.base+"/camera/cam/stream/set", []byte("OFF"), false)
	r.w.WaitFrom(mark, r.base+"/response/stream", testenv.Contains(`"status":"ok"`, `"OFF"`), 5*time.Second)
	r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"switch":"OFF"`, `"state":"idle"`), 5*time.Second)
	r.w.WaitFrom(mark, r.base+"/camera/cam/state", testenv.Contains(`"capture":"idle"`), 5*time.Second)
}

// RTMPS end to end: a TLS-terminating proxy with a test CA in front of
// nginx-rtmp. GStreamer (GIO + GnuTLS) trusts only the system bundle, so
// the agent runs in a private mount namespace where that bundle also holds
// the test CA; nothing on the machine changes. The same agent without the
// test CA must refuse the server.
func TestRTMPSDestination(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace (CI runs as root)")
	}
	r := newRig(t)
	ca := testenv.NewTestCA(t)
	tlsPort := testenv.StartTLSProxy(t, ca, r.rtmp)
	bundle := ca.SystemBundleWith(t)
	env := r.env(map[string]string{
		"MAKERCAST_STREAM_URL": fmt.Sprintf("rtmps://127.0.0.1:%d/live", tlsPort),
		"MAKERCAST_STREAM_KEY": "tlskey",
	})
	startAgentWrapped(t, env, []string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/ssl/certs/ca-certificates.crt && exec "$2"`, "sh", bundle})
	r.online(t)
	r.w.Publish(r.base+"/camera/test/stream/set", []byte("ON"), false)
	r.rtmp.WaitPublishing(t, "tlskey", 10*time.Second)
	r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"state":"live"`, `rtmps://`), 5*time.Second)
	if v, ok := testenv.FFProbe(t, r.rtmp.URL()+"/tlskey").Video(); !ok || v.CodecName != "h264" {
		t.Fatalf("video over RTMPS: %+v", v)
	}
}

func TestRTMPSRefusesAnUntrustedServer(t *testing.T) {
	r := newRig(t)
	ca := testenv.NewTestCA(t)
	tlsPort := testenv.StartTLSProxy(t, ca, r.rtmp)
	startAgent(t, r.env(map[string]string{
		"MAKERCAST_STREAM_URL": fmt.Sprintf("rtmps://127.0.0.1:%d/live", tlsPort),
		"MAKERCAST_STREAM_KEY": "tlskey",
	}))
	r.online(t)
	r.w.Publish(r.base+"/camera/test/stream/set", []byte("ON"), false)
	r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"state":"retrying"`), 10*time.Second)
	if r.rtmp.Publishing("tlskey") {
		t.Fatal("published to a server whose certificate is not trusted")
	}
}

// The network cable is pulled for a while: the connection stays open but
// nothing moves. Once the kernel's socket buffer is full, writes stop
// (rtmp2sink's own 5 s I/O timeout, or the engine's stall watchdog, whichever
// comes first); the sender is torn down, waits for the server to be
// reachable again and goes live by itself.
func TestPulledCableIsDetectedAndRecovered(t *testing.T) {
	r := newRig(t)
	cable := testenv.StartProxy(t, r.rtmp.Port)
	// A high bitrate fills the kernel's socket buffers (up to 4 MB) sooner.
	startAgent(t, r.env(map[string]string{
		"MAKERCAST_STREAM_URL":    fmt.Sprintf("rtmp://127.0.0.1:%d/live", cable.Port),
		"MAKERCAST_VIDEO_BITRATE": "8000",
	}))
	r.online(t)
	r.goLive(t)
	r.w.Wait(r.base+"/destination/main/state", testenv.Contains(`"state":"live"`), 5*time.Second)
	mark := r.w.Len()
	cable.Freeze()
	start := time.Now()
	m, i := r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"state":"retrying"`), 45*time.Second)
	t.Logf("stall noticed after %s: %s", time.Since(start).Round(100*time.Millisecond), m.Payload)
	time.Sleep(2 * time.Second)
	cable.Thaw()
	thawed := time.Now()
	r.w.WaitFrom(i+1, r.base+"/destination/main/state", testenv.Contains(`"state":"live"`), 20*time.Second)
	t.Logf("live again %s after the cable came back", time.Since(thawed).Round(10*time.Millisecond))
	r.rtmp.WaitPublishing(t, "s3cretKEY-42", 10*time.Second)
}

// The ALSA capture path (alsasrc, resampling to 44.1 kHz stereo, AAC), with
// ALSA's "null" device standing in for a USB microphone (the CI machine has
// no sound card).
func TestALSAAudioPath(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(map[string]string{"MAKERCAST_AUDIO": "alsa:null"}))
	r.online(t)
	r.goLive(t)
	pr := testenv.FFProbe(t, r.rtmp.URL()+"/s3cretKEY-42")
	if a, ok := pr.Audio(); !ok || a.CodecName != "aac" || a.SampleRate != "44100" || a.Channels != 2 {
		t.Fatalf("audio from ALSA at the server: %+v (present %v)", a, ok)
	}
	// Video and A/V sync are not judged here: the null device is not
	// real-time (it hands out samples as fast as they are read), so audio
	// runs ahead of the clock, which a USB microphone never does.
}

// No microphone: a silent AAC track is sent anyway (YouTube and Facebook
// reject video-only streams).
func TestSilentAudioTrackWithoutMicrophone(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(map[string]string{"MAKERCAST_AUDIO": "none"}))
	r.online(t)
	r.goLive(t)
	if a, ok := testenv.FFProbe(t, r.rtmp.URL()+"/s3cretKEY-42").Audio(); !ok || a.CodecName != "aac" || a.Profile != "LC" {
		t.Fatalf("audio at the server: %+v (present %v), want a silent AAC-LC track", a, ok)
	}
}
