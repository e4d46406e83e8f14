package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// The Node-RED example flows (examples/node-red/) run in a real Node-RED,
// installed from npm, against the real broker, agent and RTMP server: the
// test presses the flows' inject buttons through Node-RED's admin API and
// checks that the stream goes live at nginx-rtmp, and reads what the flows'
// debug nodes write to Node-RED's log and the file its file node writes.

// nodeREDVersion is the Node-RED the examples are tested with. 4.1 is the
// newest line that runs on Debian 12's Node.js 18 (Node-RED 5 needs Node 22).
const (
	nodeREDVersion = "4.1.15"
	nodeREDMinNode = "18.5" // node-red 4.1's engines field
)

var nodeREDFlowFiles = []string{"go-live.json", "schedule.json", "destination-alerts.json", "snapshot.json"}

// Ids of the nodes the test drives; the README names them too.
const (
	nrBroker        = "6d6b6300000000b1"
	nrGoLive        = "6d6b630100000001"
	nrStop          = "6d6b630100000002"
	nrGoLiveRequest = "6d6b630100000005"
	nrStopRequest   = "6d6b630100000006"
	nrSaturdayOn    = "6d6b630200000001"
	nrSaturdayOff   = "6d6b630200000002"
	nrSnapshot      = "6d6b630400000001"
)

type nrNode map[string]any

func (n nrNode) str(k string) string { s, _ := n[k].(string); return s }

// loadNodeREDFlows reads the example files; merged is what a user gets by
// importing all of them (the shared broker node once).
func loadNodeREDFlows(t *testing.T) (files map[string][]nrNode, merged []nrNode) {
	t.Helper()
	files = map[string][]nrNode{}
	seen := map[string]nrNode{}
	for _, f := range nodeREDFlowFiles {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "node-red", f))
		if err != nil {
			t.Fatal(err)
		}
		var nodes []nrNode
		if err := json.Unmarshal(b, &nodes); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		files[f] = nodes
		for _, n := range nodes {
			id := n.str("id")
			if prev, ok := seen[id]; ok {
				if !reflect.DeepEqual(prev, n) {
					t.Errorf("%s: node %s (%s) differs from the node with the same id in another file", f, id, n.str("type"))
				}
				continue
			}
			seen[id] = n
			merged = append(merged, n)
		}
	}
	return files, merged
}

// TestNodeREDFlowsAreWellFormed checks the example files without Node-RED:
// core nodes only, one tab per file, wires inside the file, one shared broker
// node reading MQTT_HOST / MQTT_PORT, and the buttons the docs describe.
func TestNodeREDFlowsAreWellFormed(t *testing.T) {
	files, merged := loadNodeREDFlows(t)
	if len(files) != len(nodeREDFlowFiles) {
		t.Errorf("%d flow files loaded, want %d", len(files), len(nodeREDFlowFiles))
	}
	// Every example file is covered by this test (and loaded by the next).
	onDisk, err := filepath.Glob(filepath.Join("..", "..", "examples", "node-red", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range onDisk {
		if _, ok := files[filepath.Base(p)]; !ok {
			t.Errorf("examples/node-red/%s is not in nodeREDFlowFiles", filepath.Base(p))
		}
	}
	allowed := map[string]bool{"tab": true, "comment": true, "mqtt-broker": true, "mqtt in": true, "mqtt out": true,
		"inject": true, "switch": true, "change": true, "json": true, "debug": true, "function": true, "file": true}
	owner := map[string]string{} // node id -> file
	for f, nodes := range files {
		ids := map[string]nrNode{}
		var tab string
		for _, n := range nodes {
			id, typ := n.str("id"), n.str("type")
			if !allowed[typ] {
				t.Errorf("%s: node %s has type %q, not one of the core nodes the examples may use", f, id, typ)
			}
			if _, dup := ids[id]; dup {
				t.Errorf("%s: id %s used twice", f, id)
			}
			ids[id] = n
			if typ == "tab" {
				if tab != "" {
					t.Errorf("%s: more than one tab", f)
				}
				tab = id
			}
			if o, ok := owner[id]; ok && id != nrBroker {
				t.Errorf("id %s is in both %s and %s", id, o, f)
			}
			owner[id] = f
		}
		if tab == "" {
			t.Errorf("%s: no tab", f)
		}
		for _, n := range nodes {
			typ := n.str("type")
			if typ == "tab" || typ == "mqtt-broker" {
				continue
			}
			if n.str("z") != tab {
				t.Errorf("%s: node %s is not on the file's tab", f, n.str("id"))
			}
			if strings.HasPrefix(typ, "mqtt ") && n.str("broker") != nrBroker {
				t.Errorf("%s: %s %s uses broker %q, want the shared %s", f, typ, n.str("id"), n.str("broker"), nrBroker)
			}
			wires, _ := n["wires"].([]any)
			for _, out := range wires {
				targets, _ := out.([]any)
				for _, to := range targets {
					if _, ok := ids[to.(string)]; !ok {
						t.Errorf("%s: node %s is wired to %v, which is not in the file", f, n.str("id"), to)
					}
				}
			}
		}
		if _, ok := ids[nrBroker]; !ok {
			t.Errorf("%s: no broker node %s", f, nrBroker)
		}
	}
	byID := map[string]nrNode{}
	for _, n := range merged {
		byID[n.str("id")] = n
	}
	if b := byID[nrBroker]; b.str("broker") != "${MQTT_HOST}" || b.str("port") != "${MQTT_PORT}" {
		t.Errorf("broker node: host %q port %q, want ${MQTT_HOST} and ${MQTT_PORT}", b.str("broker"), b.str("port"))
	}
	buttons := []struct{ id, name, payload, crontab string }{
		{nrGoLive, "Go live", "ON", ""},
		{nrStop, "Stop", "OFF", ""},
		{nrGoLiveRequest, "Go live (request)", "", ""},
		{nrStopRequest, "Stop (request)", "", ""},
		{nrSaturdayOn, "Saturday 14:00: go live", "ON", "00 14 * * 6"},
		{nrSaturdayOff, "Saturday 17:00: stop", "OFF", "00 17 * * 6"},
		{nrSnapshot, "Take snapshot", "", ""},
	}
	for _, b := range buttons {
		n, ok := byID[b.id]
		if !ok || n.str("type") != "inject" || n.str("name") != b.name {
			t.Errorf("inject %q: want id %s, got %v", b.name, b.id, n)
			continue
		}
		if b.payload != "" && n.str("payload") != b.payload {
			t.Errorf("inject %q sends %q, want %q", b.name, n.str("payload"), b.payload)
		}
		if n.str("crontab") != b.crontab {
			t.Errorf("inject %q: crontab %q, want %q", b.name, n.str("crontab"), b.crontab)
		}
	}
	checkNodeREDSnapshotFlow(t, files["snapshot.json"])
	for _, name := range []string{"makercast response", "destination alert", "snapshot response", "snapshot saved"} {
		found := false
		for _, n := range merged {
			if n.str("type") == "debug" && n.str("name") == name {
				found = true
				if n["console"] != true {
					t.Errorf("debug node %q must log to the console (the test reads it)", name)
				}
			}
		}
		if !found {
			t.Errorf("no debug node named %q", name)
		}
	}
}

// checkNodeREDSnapshotFlow checks the path of the picture in snapshot.json:
// the image topic as a Buffer, the file node overwriting the file named by
// the tab variable FILE (SNAPSHOT_FILE, else /tmp/makercast-snapshot.jpg).
func checkNodeREDSnapshotFlow(t *testing.T, nodes []nrNode) {
	t.Helper()
	var tab, in, file nrNode
	for _, n := range nodes {
		switch {
		case n.str("type") == "tab":
			tab = n
		case n.str("type") == "mqtt in" && n.str("topic") == "makercast/+/camera/+/image":
			in = n
		case n.str("type") == "file":
			file = n
		}
	}
	if in == nil || in.str("datatype") != "buffer" {
		t.Errorf("snapshot.json: want an mqtt in node on makercast/+/camera/+/image with output a Buffer, got %v", in)
	}
	if file == nil || file.str("filename") != "FILE" || file.str("filenameType") != "env" ||
		file.str("overwriteFile") != "true" || file["appendNewline"] != false || file.str("encoding") != "none" {
		t.Errorf("snapshot.json: want a file node overwriting the file named by env FILE, without a newline, got %v", file)
	}
	env, _ := tab["env"].([]any)
	want := map[string]string{
		"FILE":   `$env("SNAPSHOT_FILE") ? $env("SNAPSHOT_FILE") : "/tmp/makercast-snapshot.jpg"`,
		"DEVICE": `$env("MAKERCAST_DEVICE_ID") ? $env("MAKERCAST_DEVICE_ID") : "pi1"`,
		"CAMERA": `$env("MAKERCAST_CAMERA") ? $env("MAKERCAST_CAMERA") : "test"`,
	}
	for _, e := range env {
		v, _ := e.(map[string]any)
		name, _ := v["name"].(string)
		if w, ok := want[name]; ok && v["value"] == w && v["type"] == "jsonata" {
			delete(want, name)
		}
	}
	for name, w := range want {
		t.Errorf("snapshot.json: tab variable %s should be the JSONata %s", name, w)
	}
}

// TestNodeREDExampleFlows runs the flows in Node-RED and presses their
// buttons.
func TestNodeREDExampleFlows(t *testing.T) {
	red := installNodeRED(t)
	_, flows := loadNodeREDFlows(t)

	r := newRig(t)
	r.base = "makercast/nr1" // not the flows' default pi1: MAKERCAST_DEVICE_ID must reach them
	const key = "s3cretKEY-42"
	dead := testenv.FreePort(t) // nothing listens: destination "backup" fails
	startAgent(t, r.env(map[string]string{
		"MAKERCAST_DEVICE_ID":              "nr1",
		"MAKERCAST_DESTINATIONS":           fmt.Sprintf("backup=rtmp://127.0.0.1:%d/live,badapp=rtmp://127.0.0.1:%d/nosuchapp", dead, r.rtmp.Port),
		"MAKERCAST_DESTINATION_BACKUP_KEY": "backupkey",
		"MAKERCAST_DESTINATION_BADAPP_KEY": "badappkey",
	}))
	r.online(t)
	// MAKERCAST_CAMERA is left unset: the flows' default camera, test, is used.
	// snapshot.json writes to SNAPSHOT_FILE, in a directory its file node
	// has to create.
	snapFile := filepath.Join(t.TempDir(), "pictures", "snapshot.jpg")
	nr := startNodeRED(t, red, flows, map[string]string{
		"MQTT_HOST":           "127.0.0.1",
		"MQTT_PORT":           strconv.Itoa(r.broker.Port),
		"MAKERCAST_DEVICE_ID": "nr1",
		"SNAPSHOT_FILE":       snapFile,
	})

	// go-live.json: the Go live button.
	mark, logMark := r.w.Len(), nr.logs.Len()
	nr.inject(nrGoLive)
	r.w.WaitFrom(mark, r.base+"/camera/test/stream/set", testenv.Equals("ON"), 5*time.Second)
	r.rtmp.WaitPublishing(t, key, 10*time.Second)
	r.w.WaitFrom(mark, r.base+"/response/stream", testenv.Contains(`"status":"ok"`, `"state":"ON"`), 5*time.Second)
	nr.waitDebug(logMark, "makercast response", 5*time.Second, "status: 'ok'", "state: 'ON'")

	// destination-alerts.json: each failing destination becomes a message
	// with the device, its name, its last_error and its masked URL; the
	// one the agent waits on also says when it tries again.
	for _, c := range []struct{ dest, match, extra string }{
		{"backup", "refused", ""}, // closed port: probed, no retry_in_ms
		{"badapp", `"retry_in_ms"`, ", next try in "},
	} {
		m := r.w.Wait(r.base+"/destination/"+c.dest+"/state", testenv.Contains(`"state":"retrying"`, c.match), 10*time.Second)
		st := destState(t, m.Payload)
		lastErr, _ := st["last_error"].(string)
		url, _ := st["url"].(string)
		if lastErr == "" || !strings.HasSuffix(url, "/****") {
			t.Fatalf("state of %s = %s: no last_error or no masked url", c.dest, m.Payload)
		}
		alert := nr.waitDebug(0, "destination alert", 5*time.Second,
			"makercast nr1: destination "+c.dest+" is retrying: "+lastErr+" ("+url+c.extra)
		t.Logf("alert: %s", alert)
	}

	// go-live.json: Stop.
	nr.inject(nrStop)
	r.rtmp.WaitGone(t, key, 5*time.Second)

	// schedule.json: the Saturday buttons, pressed by hand.
	nr.inject(nrSaturdayOn)
	r.rtmp.WaitPublishing(t, key, 10*time.Second)
	nr.inject(nrSaturdayOff)
	r.rtmp.WaitGone(t, key, 5*time.Second)

	// go-live.json: request / response with a transaction.
	mark, logMark = r.w.Len(), nr.logs.Len()
	nr.inject(nrGoLiveRequest)
	req, _ := r.w.WaitFrom(mark, r.base+"/request/stream", testenv.Contains(`"state":"ON"`), 5*time.Second)
	var cmd struct{ Camera, State, Transaction string }
	if err := json.Unmarshal([]byte(req.Payload), &cmd); err != nil || cmd.Camera != "test" || !strings.HasPrefix(cmd.Transaction, "node-red-") {
		t.Fatalf("request from Node-RED = %s (%v), want camera test and a node-red- transaction", req.Payload, err)
	}
	r.rtmp.WaitPublishing(t, key, 10*time.Second)
	r.w.WaitFrom(mark, r.base+"/response/stream", testenv.Contains(`"status":"ok"`, `"transaction":"`+cmd.Transaction+`"`), 5*time.Second)
	nr.waitDebug(logMark, "makercast response", 5*time.Second, "status: 'ok'", "transaction: '"+cmd.Transaction+"'")

	// snapshot.json: Take snapshot, while the stream runs.
	nodeREDSnapshot(t, r, nr, snapFile)

	nr.inject(nrStopRequest)
	r.rtmp.WaitGone(t, key, 5*time.Second)

	alerts := nr.debugOutputs(0, "destination alert")
	t.Logf("%d alerts in all", len(alerts))
	for _, a := range alerts {
		if strings.Contains(a, "destination main ") {
			t.Errorf("alert for the healthy destination: %s", a)
		}
	}
	for _, secret := range []string{key, "backupkey", "badappkey"} {
		if strings.Contains(nr.logs.String(), secret) {
			t.Errorf("a stream key reached Node-RED: %q is in its log", secret)
		}
	}
	if errs := nr.entries(0, "[error]"); len(errs) > 0 {
		t.Errorf("Node-RED logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// nodeREDSnapshot presses snapshot.json's Take snapshot button and checks
// the command Node-RED sends, the answer in its log, and the JPEG its file
// node writes to snapFile.
func nodeREDSnapshot(t *testing.T, r *rig, nr *nodeREDProc, snapFile string) {
	t.Helper()
	if _, err := os.Stat(snapFile); !os.IsNotExist(err) {
		t.Fatalf("%s exists before the snapshot (%v)", snapFile, err)
	}
	mark, logMark := r.w.Len(), nr.logs.Len()
	start := time.Now()
	nr.inject(nrSnapshot)
	set, _ := r.w.WaitFrom(mark, r.base+"/camera/test/snapshot/set", nil, 5*time.Second)
	var opts struct {
		Width, Quality int
		Transaction    string
	}
	if err := json.Unmarshal([]byte(set.Payload), &opts); err != nil || opts.Width != 640 || opts.Quality != 80 ||
		!strings.HasPrefix(opts.Transaction, "node-red-") {
		t.Fatalf("snapshot command from Node-RED = %s (%v), want width 640, quality 80 and a node-red- transaction", set.Payload, err)
	}
	m, _ := r.w.WaitFrom(mark, r.base+"/response/snapshot", testenv.Contains(`"transaction":"`+opts.Transaction+`"`), 10*time.Second)
	var resp struct {
		Status string
		Data   struct {
			Topic                string
			Bytes, Width, Height int
		}
	}
	if err := json.Unmarshal([]byte(m.Payload), &resp); err != nil || resp.Status != "ok" || resp.Data.Topic != r.base+"/camera/test/image" {
		t.Fatalf("snapshot response = %s (%v)", m.Payload, err)
	}
	got := nr.waitDebug(logMark, "snapshot response", 5*time.Second,
		"status: 'ok'", "width: 640", "bytes: "+strconv.Itoa(resp.Data.Bytes), "transaction: '"+opts.Transaction+"'")
	t.Logf("snapshot response in Node-RED: %s", strings.Join(strings.Fields(got), " "))

	// The file node passes the message on once the file is written and
	// closed; "snapshot saved" logs its msg.filename.
	nr.waitDebug(logMark, "snapshot saved", 5*time.Second, snapFile)
	b, err := os.ReadFile(snapFile)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not a JPEG (%d bytes): %v", snapFile, len(b), err)
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if w != 640 || h != resp.Data.Height || len(b) != resp.Data.Bytes {
		t.Errorf("%s: %dx%d, %d bytes; the agent answered %dx%d, %d bytes", snapFile, w, h, len(b), resp.Data.Width, resp.Data.Height, resp.Data.Bytes)
	}
	t.Logf("Node-RED wrote a %dx%d JPEG of %d bytes to %s, %s after the press", w, h, len(b), snapFile, time.Since(start).Round(time.Millisecond))
}

// installNodeRED installs Node-RED from npm once into the user's cache
// directory (kept between runs) and returns the path of its red.js.
func installNodeRED(t *testing.T) string {
	t.Helper()
	checkNodeJSForNodeRED(t)
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for Node-RED: %v", err)
	}
	dir := filepath.Join(cache, "makercast-test", "node-red")
	red := filepath.Join(dir, "node_modules", "node-red", "red.js")
	if installedNodeREDVersion(dir) == nodeREDVersion {
		return red
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is not installed: run scripts/deps.sh (installs nodejs and npm), then the test installs Node-RED %s into %s", nodeREDVersion, dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	// Install next to the cache and rename: an interrupted install is never
	// taken for a finished one.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "node-red-install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", tmp, "--no-save", "--no-package-lock",
		"--no-audit", "--no-fund", "--omit=dev", "--loglevel=error", "node-red@"+nodeREDVersion)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("installing Node-RED %s with npm failed (is the npm registry, %s, reachable?): %v\n%s",
			nodeREDVersion, nodeREDNPMRegistry(npm), err, out)
	}
	if v := installedNodeREDVersion(tmp); v != nodeREDVersion {
		t.Fatalf("npm installed Node-RED %q into %s, want %s\n%s", v, tmp, nodeREDVersion, out)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil && installedNodeREDVersion(dir) != nodeREDVersion {
		t.Fatalf("moving Node-RED into %s: %v", dir, err)
	}
	t.Logf("installed Node-RED %s into %s in %s", nodeREDVersion, dir, time.Since(start).Round(100*time.Millisecond))
	return red
}

func installedNodeREDVersion(prefix string) string {
	b, err := os.ReadFile(filepath.Join(prefix, "node_modules", "node-red", "package.json"))
	if err != nil {
		return ""
	}
	var p struct{ Version string }
	_ = json.Unmarshal(b, &p)
	return p.Version
}

func nodeREDNPMRegistry(npm string) string {
	out, err := exec.Command(npm, "config", "get", "registry").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// checkNodeJSForNodeRED fails unless a Node.js that Node-RED supports is on PATH.
func checkNodeJSForNodeRED(t *testing.T) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: run scripts/deps.sh (installs nodejs and npm)")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", node, err)
	}
	v := strings.TrimSpace(string(out))
	if nodeREDVersionLess(strings.TrimPrefix(v, "v"), nodeREDMinNode) {
		t.Fatalf("%s is %s; Node-RED %s needs Node.js %s or newer", node, v, nodeREDVersion, nodeREDMinNode)
	}
}

// nodeREDVersionLess compares dotted numeric versions.
func nodeREDVersionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

type nodeREDProc struct {
	t    *testing.T
	url  string
	cmd  *exec.Cmd
	logs *nodeREDLog
	done chan error
}

// nodeREDLog is a syncBuffer that can tell its length.
type nodeREDLog struct{ syncBuffer }

func (l *nodeREDLog) Len() int { return len(l.String()) }

// startNodeRED runs Node-RED headless on a free loopback port with a
// temporary user directory holding the flows and a settings.js without
// admin auth and without telemetry, and waits until the flows are connected
// to the broker. env is the whole environment given to the flows (plus PATH
// and HOME).
func startNodeRED(t *testing.T, red string, flows []nrNode, env map[string]string) *nodeREDProc {
	t.Helper()
	dir := t.TempDir()
	b, err := json.MarshalIndent(flows, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	flowFile := filepath.Join(dir, "flows.json")
	if err := os.WriteFile(flowFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	settings := fmt.Sprintf(`// Written by nodered_test.go.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: %d,
    flowFile: %q,
    credentialSecret: false,
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    editorTheme: { projects: { enabled: false }, tours: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
};
`, port, flowFile)
	settingsFile := filepath.Join(dir, "settings.js")
	if err := os.WriteFile(settingsFile, []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", red, "--settings", settingsFile, "--userDir", dir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "NODE_ENV=production"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &nodeREDLog{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Node-RED: %v", err)
	}
	n := &nodeREDProc{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, logs: logs, done: make(chan error, 1)}
	go func() { n.done <- cmd.Wait() }()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("Node-RED log:\n%s", logs.String())
		}
	})

	// The admin API answers once the runtime has loaded the flows.
	start := time.Now()
	c := http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := c.Get(n.url + "/flows"); err == nil {
			var got []nrNode
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && err == nil && len(got) == len(flows) {
				break
			}
		}
		select {
		case err := <-n.done:
			n.done <- err
			t.Fatalf("Node-RED exited (%v):\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("Node-RED's admin API did not serve the flows within 30 s:\n%s", logs.String())
		}
	}
	// ${MQTT_HOST}:${MQTT_PORT} in the broker node reached the test broker.
	n.waitLog(0, fmt.Sprintf("Connected to broker: mqtt://%s:%s", env["MQTT_HOST"], env["MQTT_PORT"]), 15*time.Second)
	t.Logf("Node-RED %s up in %s", nodeREDVersion, time.Since(start).Round(10*time.Millisecond))
	return n
}

func (n *nodeREDProc) stop() {
	select {
	case err := <-n.done: // already gone
		n.done <- err
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.done <- err
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		n.t.Errorf("Node-RED did not stop within 10 s of SIGTERM")
		<-n.done
	}
}

// inject presses an inject node's button, as the editor does.
func (n *nodeREDProc) inject(id string) {
	n.t.Helper()
	resp, err := http.Post(n.url+"/inject/"+id, "application/json", strings.NewReader("{}"))
	if err != nil {
		n.t.Fatalf("inject %s: %v", id, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		n.t.Fatalf("inject %s: HTTP %s", id, resp.Status)
	}
}

// A Node-RED log entry starts with "24 Nov 08:53:38 - [info] ".
var nodeREDLogEntry = regexp.MustCompile(`(?m)^\d{1,2} \w{3} \d{2}:\d{2}:\d{2} - \[`)

// entries returns the log entries (multi-line ones whole) that start at or
// after byte offset from and contain every one of subs.
func (n *nodeREDProc) entries(from int, subs ...string) []string {
	text := n.logs.String()
	if from > len(text) {
		from = len(text)
	}
	text = text[from:]
	starts := nodeREDLogEntry.FindAllStringIndex(text, -1)
	var out []string
	for i, s := range starts {
		end := len(text)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		e := strings.TrimRight(text[s[0]:end], "\n")
		if testenv.Contains(subs...)(e) {
			out = append(out, e)
		}
	}
	return out
}

// debugOutputs returns what the debug node called name logged (after byte
// offset from), one string per message.
func (n *nodeREDProc) debugOutputs(from int, name string) []string {
	tag := "[debug:" + name + "] "
	var out []string
	for _, e := range n.entries(from, tag) {
		out = append(out, strings.TrimSpace(e[strings.Index(e, tag)+len(tag):]))
	}
	return out
}

func (n *nodeREDProc) waitLog(from int, sub string, within time.Duration) string {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if e := n.entries(from, sub); len(e) > 0 {
			return e[0]
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("Node-RED did not log %q within %s", sub, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDebug waits until the debug node called name logs a message holding
// every one of subs, and returns it.
func (n *nodeREDProc) waitDebug(from int, name string, within time.Duration, subs ...string) string {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, out := range n.debugOutputs(from, name) {
			if testenv.Contains(subs...)(out) {
				return out
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("debug node %q logged nothing holding %q within %s; it logged:\n%s",
				name, subs, within, strings.Join(n.debugOutputs(from, name), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
