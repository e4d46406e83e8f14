package testenv

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// This file starts servers from configurations a test supplies (the secure
// Mosquitto profile, a bridge, an nginx-rtmp template other than the
// default) and connects MQTT clients with credentials and TLS.

// StartMosquittoConfig starts Mosquitto with the configuration text conf,
// whose listeners are on ports (all on loopback; the first is Port). URL is
// left empty: the configuration decides the scheme. The broker's log is
// shown when the test fails.
func StartMosquittoConfig(t TB, conf string, ports ...int) *Mosquitto {
	t.Helper()
	if len(ports) == 0 {
		t.Fatalf("testenv: StartMosquittoConfig needs the listeners' ports")
	}
	bin := need(t, "mosquitto")
	dir := t.TempDir()
	cf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	logPath := filepath.Join(dir, "mosquitto.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	m := &Mosquitto{process: &process{t: t, name: "mosquitto", argv: []string{bin, "-c", cf}, port: ports[0], logf: logf}, Port: ports[0]}
	t.Cleanup(func() {
		m.stop()
		logf.Close()
		if f, ok := t.(interface{ Failed() bool }); ok && f.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("mosquitto log (%s):\n%s", cf, b)
		}
	})
	m.start()
	for _, p := range ports[1:] {
		WaitPort(t, p, 10*time.Second)
	}
	return m
}

// Log is what the broker has logged so far (for a broker started with a
// log_dest stderr configuration).
func (m *Mosquitto) Log() string {
	b, _ := os.ReadFile(m.logf.Name())
	return string(b)
}

// Reload sends SIGHUP: Mosquitto reads its password and ACL files again.
func (m *Mosquitto) Reload() error {
	pid := m.Pid()
	if pid == 0 {
		return errors.New("testenv: mosquitto is not running")
	}
	return syscall.Kill(pid, syscall.SIGHUP)
}

// ClientOptions are a test MQTT client's credentials and TLS files.
type ClientOptions struct {
	Username, Password string
	// CAFile verifies an ssl:// or wss:// broker.
	CAFile string
	// CertFile and KeyFile: a client certificate.
	CertFile, KeyFile string
	ServerName        string
	// ClientID defaults to a unique test id.
	ClientID string
	// WillTopic, if set, gets WillPayload (retained) as the last will.
	WillTopic, WillPayload string
}

func (o ClientOptions) paho(url string) (*paho.ClientOptions, error) {
	id := o.ClientID
	if id == "" {
		id = fmt.Sprintf("test-client-%d-%d", time.Now().UnixNano(), watcherSeq.Add(1))
	}
	po := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(o.Username).SetPassword(o.Password).
		SetConnectTimeout(5 * time.Second).SetOrderMatters(true)
	if o.WillTopic != "" {
		po.SetWill(o.WillTopic, o.WillPayload, 1, true)
	}
	if o.CAFile != "" || o.CertFile != "" || o.ServerName != "" {
		tc := &tls.Config{ServerName: o.ServerName, MinVersion: tls.VersionTLS12}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("testenv: no certificate in %s", o.CAFile)
			}
		}
		if o.CertFile != "" {
			pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		po.SetTLSConfig(tc)
	}
	return po, nil
}

// TryConnect connects once, without retrying, and disconnects: nil means the
// broker accepted the client.
func TryConnect(url string, o ClientOptions) error {
	po, err := o.paho(url)
	if err != nil {
		return err
	}
	c := paho.NewClient(po)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("testenv: connect timed out")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(50)
	return nil
}

// WatchAs is Watch with credentials, TLS and any number of filters. It
// returns once the subscriptions are in place: a publish right after it is
// seen, if the broker lets this client read it.
func WatchAs(t TB, url string, o ClientOptions, filters ...string) *Watcher {
	t.Helper()
	po, err := o.paho(url)
	if err != nil {
		t.Fatalf("testenv: watcher: %v", err)
	}
	w := &Watcher{t: t, cond: make(chan struct{})}
	subscribed := make(chan error, 1)
	po.SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond)
	po.SetOnConnectHandler(func(c paho.Client) {
		subs := map[string]byte{}
		for _, f := range filters {
			subs[f] = 1
		}
		tok := c.SubscribeMultiple(subs, func(_ paho.Client, m paho.Message) { w.record(m) })
		tok.WaitTimeout(5 * time.Second)
		select {
		case subscribed <- tok.Error():
		default:
		}
	})
	w.c = paho.NewClient(po)
	if tok := w.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		w.c.Disconnect(0)
		t.Fatalf("testenv: watcher %q connect: %v", o.Username, tok.Error())
	}
	t.Cleanup(func() { w.c.Disconnect(100) })
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("testenv: watcher %q subscribe %v: %v", o.Username, filters, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("testenv: watcher %q: no subscription to %v", o.Username, filters)
	}
	return w
}

func (w *Watcher) record(m paho.Message) {
	w.mu.Lock()
	w.msgs = append(w.msgs, Msg{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained(), At: time.Now()})
	close(w.cond)
	w.cond = make(chan struct{})
	w.mu.Unlock()
}

var placeholder = regexp.MustCompile(`__[A-Z0-9_]+__`)

// StartRTMPTemplate starts nginx-rtmp from the template at path (relative to
// the repository root): __PREFIX__, __RTMP_PORT__ and __HTTP_PORT__ are
// filled in as for examples/nginx-rtmp/nginx.conf.tmpl, and vars fills in
// the template's own placeholders. A placeholder left unfilled fails the
// test.
func StartRTMPTemplate(t TB, path string, vars map[string]string) *RTMPServer {
	t.Helper()
	bin := need(t, "nginx")
	tmpl, err := os.ReadFile(filepath.Join(RepoRoot(t), path))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	port, httpPort := FreePort(t), FreePort(t)
	pairs := []string{"__PREFIX__", prefix, "__RTMP_PORT__", strconv.Itoa(port), "__HTTP_PORT__", strconv.Itoa(httpPort)}
	for k, v := range vars {
		pairs = append(pairs, k, v)
	}
	conf := strings.NewReplacer(pairs...).Replace(string(tmpl))
	if left := placeholder.FindAllString(conf, -1); len(left) > 0 {
		t.Fatalf("testenv: %s: placeholders not filled in: %v", path, left)
	}
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	logf, err := os.Create(filepath.Join(prefix, "stdout.log"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s := &RTMPServer{process: &process{t: t, name: "nginx", argv: []string{bin, "-p", prefix, "-c", cf}, port: port, logf: logf},
		Port: port, HTTPPort: httpPort, Prefix: prefix}
	t.Cleanup(func() {
		s.stop()
		logf.Close()
		if f, ok := t.(interface{ Failed() bool }); ok && f.Failed() {
			b, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Logf("nginx error log (%s):\n%s", cf, b)
		}
	})
	s.start()
	WaitPort(t, httpPort, 5*time.Second)
	return s
}

// SecureMosquitto is a broker started from the project's production profile,
// broker-config/mosquitto-secure.conf, with its CA, server certificate and
// users made by broker-config's own scripts (make-ca.sh, add-device.sh).
// URL is ssl://localhost:<MQTTPort>.
type SecureMosquitto struct {
	*Mosquitto
	// Dir is make-ca.sh's directory: ca.crt, passwd, acl, devices/<id>/.
	Dir    string
	CAFile string
	// The listeners: MQTT over TLS (8883 in the file), websockets over TLS
	// (8884) and MQTT with client certificates (8885).
	MQTTPort, WSPort, CertPort int
	// Passwords of the users and password devices, by user name.
	Passwords map[string]string
	// Devices holds the MAKERCAST_ variables add-device.sh printed, by id.
	Devices map[string]map[string]string
}

// SecureOptions choose the secure broker's names, users and additions.
type SecureOptions struct {
	// ServerNames go into the server certificate (default localhost and
	// 127.0.0.1).
	ServerNames []string
	// ACL replaces broker-config/acl (a path relative to the repository).
	ACL string
	// Users get a password (add-device.sh --user): homeassistant, nodered.
	Users []string
	// Devices get a password, CertDevices a client certificate.
	Devices, CertDevices []string
	// Extra is appended to the configuration (a bridge, for instance).
	Extra string
}

// StartSecureMosquitto sets up and starts the secure profile on free
// loopback ports. Run as root, Mosquitto reads the key, password and ACL
// files as user mosquitto, with the ownership the scripts gave them.
func StartSecureMosquitto(t TB, o SecureOptions) *SecureMosquitto {
	t.Helper()
	root := RepoRoot(t)
	base := t.TempDir()
	// Mosquitto, once it is user mosquitto, must reach the files: the
	// test's temporary directories are 0700.
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	m := &SecureMosquitto{Dir: filepath.Join(base, "broker"), MQTTPort: FreePort(t), WSPort: FreePort(t), CertPort: FreePort(t),
		Passwords: map[string]string{}, Devices: map[string]map[string]string{}}
	m.CAFile = filepath.Join(m.Dir, "ca.crt")
	names := o.ServerNames
	if len(names) == 0 {
		names = []string{"localhost", "127.0.0.1"}
	}
	runScript(t, root, "make-ca.sh", append([]string{"--dir", m.Dir}, names...)...)
	if o.ACL != "" {
		acl, err := os.ReadFile(filepath.Join(root, o.ACL))
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		// Keep the file make-ca.sh made (owner, group and mode): rewrite it.
		if err := os.WriteFile(filepath.Join(m.Dir, "acl"), acl, 0o640); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	for _, u := range o.Users {
		vars := parseVars(runScript(t, root, "add-device.sh", "--dir", m.Dir, "--user", u))
		m.Passwords[u] = vars["MQTT_PASSWORD"]
	}
	for _, id := range o.Devices {
		m.addDevice(t, root, id, false)
	}
	for _, id := range o.CertDevices {
		m.addDevice(t, root, id, true)
	}
	tmpl, err := os.ReadFile(filepath.Join(root, "broker-config", "mosquitto-secure.conf"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	conf := string(tmpl)
	for _, r := range [][2]string{
		{"/etc/mosquitto/makercast/", m.Dir + "/"},
		{"\nlistener 8883\n", fmt.Sprintf("\nlistener %d 127.0.0.1\n", m.MQTTPort)},
		{"\nlistener 8884\n", fmt.Sprintf("\nlistener %d 127.0.0.1\n", m.WSPort)},
		{"\nlistener 8885\n", fmt.Sprintf("\nlistener %d 127.0.0.1\n", m.CertPort)},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("testenv: mosquitto-secure.conf has no %q to fill in", strings.TrimSpace(r[0]))
		}
		conf = strings.ReplaceAll(conf, r[0], r[1])
	}
	// Debian's main mosquitto.conf sets logging and persistence.
	conf += "\n# testenv\nlog_dest stderr\nlog_type all\npersistence false\n" + o.Extra
	m.Mosquitto = StartMosquittoConfig(t, conf, m.MQTTPort, m.WSPort, m.CertPort)
	m.URL = fmt.Sprintf("ssl://localhost:%d", m.MQTTPort)
	return m
}

// AddDevice runs add-device.sh on the running broker and reloads it. A
// password may be refused for a moment, until Mosquitto has reloaded.
func (m *SecureMosquitto) AddDevice(t TB, id string, cert bool) map[string]string {
	t.Helper()
	vars := m.addDevice(t, RepoRoot(t), id, cert)
	if err := m.Reload(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return vars
}

func (m *SecureMosquitto) addDevice(t TB, root, id string, cert bool) map[string]string {
	t.Helper()
	args := []string{"--dir", m.Dir, "--pi-dir", filepath.Join(m.Dir, "devices", id)}
	if cert {
		args = append(args, "--cert", "--url", fmt.Sprintf("ssl://localhost:%d", m.CertPort))
	} else {
		args = append(args, "--url", fmt.Sprintf("ssl://localhost:%d", m.MQTTPort))
	}
	vars := parseVars(runScript(t, root, "add-device.sh", append(args, id)...))
	if vars["MAKERCAST_DEVICE_ID"] != id {
		t.Fatalf("testenv: add-device.sh %s printed %v", id, vars)
	}
	if pw := vars["MAKERCAST_MQTT_PASSWORD"]; pw != "" {
		m.Passwords[id] = pw
	}
	m.Devices[id] = vars
	return vars
}

// As is a client of user name, with its password and the broker's CA.
func (m *SecureMosquitto) As(user string) ClientOptions {
	return ClientOptions{Username: user, Password: m.Passwords[user], CAFile: m.CAFile}
}

// Device is a client with device id's client certificate (CertDevices).
func (m *SecureMosquitto) Device(id string) ClientOptions {
	v := m.Devices[id]
	return ClientOptions{CAFile: v["MAKERCAST_MQTT_CA_FILE"], CertFile: v["MAKERCAST_MQTT_CERT_FILE"], KeyFile: v["MAKERCAST_MQTT_KEY_FILE"]}
}

func runScript(t TB, root, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(root, "broker-config", name), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testenv: %s %v: %v\n%s", name, args, err, stderr.String())
	}
	return string(out)
}

// parseVars reads the NAME=value lines a script printed.
func parseVars(out string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			vars[k] = v
		}
	}
	return vars
}
