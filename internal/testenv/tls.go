package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TestCA is a throw-away certificate authority with one server certificate
// for localhost / 127.0.0.1.
type TestCA struct {
	CAFile, CertFile, KeyFile string
}

// NewTestCA writes a CA and a server certificate signed by it into a temp dir.
func NewTestCA(t TB) TestCA {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "makercast test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	ca := TestCA{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "server.crt"), KeyFile: filepath.Join(dir, "server.key")}
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	write(ca.CAFile, "CERTIFICATE", caDER)
	write(ca.CertFile, "CERTIFICATE", srvDER)
	write(ca.KeyFile, "EC PRIVATE KEY", keyDER)
	return ca
}

// SystemBundleWith returns a copy of the system CA bundle with the test CA
// appended, for a process that runs with it bind-mounted in place.
func (ca TestCA) SystemBundleWith(t TB) string {
	t.Helper()
	sys, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("testenv: system CA bundle: %v", err)
	}
	own, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	path := filepath.Join(t.TempDir(), "bundle.crt")
	if err := os.WriteFile(path, append(append(sys, '\n'), own...), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return path
}

// StartTLSProxy puts a TLS listener (nginx's stream module, terminating with
// the test CA's certificate) in front of the RTMP server: RTMPS.
func StartTLSProxy(t TB, ca TestCA, rtmp *RTMPServer) (port int) {
	t.Helper()
	bin := need(t, "nginx")
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_stream_module.so"); err != nil {
		t.Fatalf("testenv: libnginx-mod-stream is not installed (run `make deps`)")
	}
	prefix := t.TempDir()
	port = FreePort(t)
	conf := fmt.Sprintf(`load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
stream {
    server {
        listen 127.0.0.1:%[2]d ssl;
        ssl_certificate %[3]s;
        ssl_certificate_key %[4]s;
        proxy_pass 127.0.0.1:%[5]d;
    }
}
`, prefix, port, ca.CertFile, ca.KeyFile, rtmp.Port)
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	logf, err := os.Create(filepath.Join(prefix, "stdout.log"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p := &process{t: t, name: "nginx-tls", argv: []string{bin, "-p", prefix, "-c", cf}, port: port, logf: logf}
	p.start()
	t.Cleanup(func() { p.stop(); logf.Close() })
	return port
}
