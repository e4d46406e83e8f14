package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

func TestTLSConfigFromOptions(t *testing.T) {
	ca, other := testenv.NewTestCA(t), testenv.NewTestCA(t)
	tc, err := tlsConfig(Options{CAFile: ca.CAFile, CertFile: ca.CertFile, KeyFile: ca.KeyFile, ServerName: "broker.lan"})
	if err != nil {
		t.Fatal(err)
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "broker.lan" || tc.MinVersion != tls.VersionTLS12 || tc.InsecureSkipVerify {
		t.Errorf("tls config %+v", tc)
	}
	if tc, err := tlsConfig(Options{}); tc != nil || err != nil {
		t.Errorf("no TLS options gave %+v, %v; want paho's default", tc, err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
	for name, o := range map[string]Options{
		"certificate without key": {CertFile: ca.CertFile},
		"key without certificate": {KeyFile: ca.KeyFile},
		"key of another pair":     {CertFile: ca.CertFile, KeyFile: other.KeyFile},
		"CA file without PEM":     {CAFile: notPEM},
	} {
		if _, err := tlsConfig(o); err == nil || !strings.HasPrefix(err.Error(), "mqtt: ") {
			t.Errorf("%s: err %v, want an mqtt: error", name, err)
		}
	}
}

// A TLS front (crypto/tls, the test CA's certificate for localhost and
// 127.0.0.1) before a real Mosquitto. With the right CA and name the client
// connects (the control); with a wrong CA or a name the certificate does not
// have it does not, and logs why with a hint, once, not on every retry.
func TestTLSVerificationAndConnectErrorsAreLogged(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	ca := testenv.NewTestCA(t)
	port := startTLSFront(t, ca, broker.Port)
	url := fmt.Sprintf("ssl://127.0.0.1:%d", port)

	t.Run("right CA and name", func(t *testing.T) {
		w := testenv.Watch(t, broker.URL, "tls/ok/availability")
		logs := runClient(t, Options{URL: url, ClientID: "tls-ok", CAFile: ca.CAFile, ServerName: "localhost", AvailabilityTopic: "tls/ok/availability"})
		w.Wait("tls/ok/availability", testenv.Equals(Online), 10*time.Second)
		if strings.Contains(logs.String(), "cannot connect") {
			t.Errorf("logged a failure: %s", logs)
		}
	})
	t.Run("wrong CA", func(t *testing.T) {
		wrong := testenv.NewTestCA(t)
		logs := runClient(t, Options{URL: url, ClientID: "tls-wrong-ca", CAFile: wrong.CAFile, AvailabilityTopic: "tls/bad/availability"})
		waitLog(t, logs, "certificate signed by unknown authority")
		if !strings.Contains(logs.String(), "is not signed by the CA in "+wrong.CAFile) {
			t.Errorf("no hint naming the CA file: %s", logs)
		}
		time.Sleep(2500 * time.Millisecond) // two or three more attempts, one second apart
		if n := strings.Count(logs.String(), "cannot connect to the broker"); n != 1 {
			t.Errorf("the same failure was logged %d times, want once:\n%s", n, logs)
		}
	})
	t.Run("name not in the certificate", func(t *testing.T) {
		logs := runClient(t, Options{URL: url, ClientID: "tls-wrong-name", CAFile: ca.CAFile, ServerName: "broker.makerspace.lan", AvailabilityTopic: "tls/bad/availability"})
		waitLog(t, logs, "is not for broker.makerspace.lan")
	})
}

// startTLSFront terminates TLS with ca's server certificate on a free
// loopback port and relays to 127.0.0.1:upstream.
func startTLSFront(t *testing.T, ca testenv.TestCA, upstream int) int {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(ca.CertFile, ca.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", upstream))
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

type syncBuffer = testenv.SyncBuffer

// runClient runs a client until the test ends and returns its log.
func runClient(t *testing.T, o Options) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	o.Handle = func(string, []byte, bool) {}
	c, err := New(o, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return logs
}

func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A failure that differs only by the local port of each attempt is the same
// reason: it is logged once, not on every retry.
func TestReasonKeyIgnoresAddresses(t *testing.T) {
	reset := func(port int) error {
		return fmt.Errorf("network Error : %w", &net.OpError{Op: "write", Net: "tcp",
			Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8885},
			Err: os.NewSyscallError("write", syscall.ECONNRESET)})
	}
	o := Options{URL: "ssl://broker:8885"}
	a, b := reset(40001), reset(40002)
	if a.Error() == b.Error() {
		t.Fatal("the errors should differ by port")
	}
	if ka, kb := reasonKey(a, connectHint(a, o)), reasonKey(b, connectHint(b, o)); ka != kb {
		t.Errorf("keys %q and %q differ", ka, kb)
	}
	if h := connectHint(a, o); !strings.Contains(h, "client certificate") {
		t.Errorf("a reset during TLS without a client certificate: hint %q", h)
	}
	if h := connectHint(a, Options{URL: "tcp://broker:1883"}); h != "" {
		t.Errorf("a reset on plain MQTT: hint %q", h)
	}
}
