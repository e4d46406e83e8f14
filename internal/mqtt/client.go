// Package mqtt is the paho adapter: it connects with a last will, keeps
// the session up (reconnect, resubscribe, republish online), hands incoming
// messages off without blocking and publishes offline on a clean stop.
package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/makercast/makercast/internal/secret"
)

// Options configure the client.
type Options struct {
	URL      string
	ClientID string
	Username string
	Password secret.Secret
	// CAFile verifies an ssl:// or wss:// broker; empty: the system's CAs.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key (both
	// or neither). The key is read once, here, and never logged.
	CertFile, KeyFile string
	// ServerName is the name the broker's certificate must carry, when it
	// is not the URL's host (an IP address, another name).
	ServerName string
	// AvailabilityTopic gets a retained "online" on every connect and
	// "offline" as the last will and on a clean stop.
	AvailabilityTopic string
	Subscriptions     []string
	// Handle receives every message on the subscriptions, and whether the
	// broker kept it (retained: sent again on every reconnect). It is called
	// on paho's goroutine and must not block.
	Handle func(topic string, payload []byte, retained bool)
	// OnConnect is called after each (re)connect, once subscribed and
	// online. It must not block.
	OnConnect func()
}

// Client is a connected MQTT session.
type Client struct {
	opts Options
	c    paho.Client
	log  *slog.Logger

	failMu   sync.Mutex
	failWhy  string    // the last failed attempt's reason (reasonKey), as logged
	failLog  time.Time // when a failed attempt was last logged
	failures int       // failed attempts since the last log line
}

// Availability payloads.
const (
	Online  = "online"
	Offline = "offline"
)

// New prepares a client; Run connects it.
func New(o Options, log *slog.Logger) (*Client, error) {
	po := paho.NewClientOptions().
		AddBroker(o.URL).
		SetClientID(o.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10*time.Second).
		SetConnectTimeout(5*time.Second).
		SetKeepAlive(15*time.Second).
		SetWill(o.AvailabilityTopic, Offline, 1, true)
	if o.Username != "" {
		po.SetUsername(o.Username)
		po.SetPassword(o.Password.Reveal())
	}
	tc, err := tlsConfig(o)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		po.SetTLSConfig(tc) // paho uses it for ssl:// and wss://
	}
	cl := &Client{opts: o, log: log}
	po.SetOnConnectHandler(cl.onConnect) // paho runs it on its own goroutine
	po.SetConnectionNotificationHandler(cl.notified)
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		log.Warn("connection lost; reconnecting", "err", err)
	})
	cl.c = paho.NewClient(po)
	return cl, nil
}

// tlsConfig is the TLS configuration for the options, or nil for paho's
// default (the system's CAs, the URL's host).
func tlsConfig(o Options) (*tls.Config, error) {
	if o.CAFile == "" && o.CertFile == "" && o.KeyFile == "" && o.ServerName == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("mqtt: CA file holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("mqtt: a client certificate needs both its certificate and its key file")
	}
	if o.CertFile != "" {
		// crypto/tls's errors name what is wrong, never the key's bytes.
		pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// notified logs why connecting fails: the first failure, every change of
// reason, then one line a minute, so a broker that is away for a day does
// not fill the log. paho calls it on its connecting goroutine; it does not
// block.
func (cl *Client) notified(_ paho.Client, n paho.ConnectionNotification) {
	cl.failMu.Lock()
	defer cl.failMu.Unlock()
	switch n := n.(type) {
	case paho.ConnectionNotificationConnected:
		cl.failWhy, cl.failures = "", 0
	case paho.ConnectionNotificationFailed:
		cl.failures++
		hint := connectHint(n.Reason, cl.opts)
		why := reasonKey(n.Reason, hint)
		if why == cl.failWhy && time.Since(cl.failLog) < time.Minute {
			return
		}
		attrs := []any{"broker", redactURL(cl.opts.URL), "err", n.Reason.Error(), "attempts", cl.failures}
		if hint != "" {
			attrs = append(attrs, "hint", hint)
		}
		cl.log.Warn("cannot connect to the broker; retrying", attrs...)
		cl.failWhy, cl.failLog, cl.failures = why, time.Now(), 0
	}
}

// reasonKey tells failures apart for the log: by their hint, else by the
// error without its addresses (a new local port on every attempt is not a
// new reason).
func reasonKey(err error, hint string) string {
	if hint != "" {
		return hint
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	return err.Error()
}

// connectHint says in plain words what a failed connection most likely
// needs, or "" when the error says it well enough.
func connectHint(err error, o Options) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		if o.CAFile == "" {
			return "the broker's certificate is not signed by a CA this system trusts: give its CA file"
		}
		return "the broker's certificate is not signed by the CA in " + o.CAFile + ": is it the broker's CA?"
	case errors.As(err, &host):
		return "the broker's certificate is not for " + host.Host + ": connect by a name it has, or set the TLS server name"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "the broker's certificate has expired or is not valid yet: is this machine's clock right?"
	case errors.Is(err, packets.ErrorRefusedNotAuthorised), errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return "the broker refused the credentials: check the user name and password (with a client certificate: its CN)"
	case strings.Contains(err.Error(), "remote error: tls:"),
		// With TLS 1.3 a broker that refuses the client's certificate (or
		// its absence) may close the connection before its alert is read.
		isTLS(o.URL) && o.CertFile == "" && errors.Is(err, syscall.ECONNRESET):
		return "the broker refused the TLS handshake: it may need a client certificate signed by its CA, or refuse this one"
	}
	return ""
}

func (cl *Client) onConnect(c paho.Client) {
	handler := func(_ paho.Client, m paho.Message) {
		// Copy and hand off: paho reuses nothing, but the handler must
		// return at once or the connection stalls.
		p := append([]byte(nil), m.Payload()...)
		cl.opts.Handle(m.Topic(), p, m.Retained())
	}
	filters := map[string]byte{}
	for _, f := range cl.opts.Subscriptions {
		filters[f] = 1
	}
	// Subscribe until it works or this connection is gone (a reconnect
	// calls onConnect again). Never Disconnect here: in paho that stops
	// auto-reconnect for good and discards the last will.
	for delay := time.Second; len(filters) > 0; delay = min(2*delay, 30*time.Second) {
		t := c.SubscribeMultiple(filters, handler)
		if t.WaitTimeout(10*time.Second) && t.Error() == nil {
			break
		}
		if !c.IsConnectionOpen() {
			return
		}
		cl.log.Error("subscribe failed; retrying", "err", t.Error(), "retry_in", delay)
		time.Sleep(delay)
		if !c.IsConnectionOpen() {
			return
		}
	}
	t := c.Publish(cl.opts.AvailabilityTopic, 1, true, Online)
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		cl.log.Warn("publish online failed", "err", t.Error())
	}
	cl.log.Info("connected", "broker", redactURL(cl.opts.URL))
	if cl.opts.OnConnect != nil {
		cl.opts.OnConnect()
	}
}

// Run connects (retrying until the broker answers) and stays connected
// until ctx ends; then it publishes "offline" and disconnects cleanly.
func (cl *Client) Run(ctx context.Context) error {
	t := cl.c.Connect()
	// With ConnectRetry the token completes only once connected (or never
	// while the broker is away); ctx still ends the wait.
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return fmt.Errorf("mqtt: connect: %w", err)
		}
	case <-ctx.Done():
	}
	<-ctx.Done()
	if cl.c.IsConnectionOpen() {
		pt := cl.c.Publish(cl.opts.AvailabilityTopic, 1, true, Offline)
		if !pt.WaitTimeout(2*time.Second) || pt.Error() != nil {
			cl.log.Warn("publish offline failed", "err", pt.Error())
		}
	}
	cl.c.Disconnect(250)
	return nil
}

// ErrNotConnected: the message was not sent; the agent publishes its whole
// state again on reconnect.
var ErrNotConnected = errors.New("mqtt: not connected")

// Publish sends one message at QoS 1 and waits for the broker's ack or ctx.
// While the connection is down it fails at once instead of queueing: paho
// would hold (and later replay) every stale message.
func (cl *Client) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	if !cl.c.IsConnectionOpen() {
		return ErrNotConnected
	}
	t := cl.c.Publish(topic, 1, retained, payload)
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return fmt.Errorf("mqtt: publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt: publish %s: %w", topic, ctx.Err())
	}
}

func isTLS(rawURL string) bool {
	return strings.HasPrefix(rawURL, "ssl://") || strings.HasPrefix(rawURL, "wss://") ||
		strings.HasPrefix(rawURL, "tls://") || strings.HasPrefix(rawURL, "mqtts://")
}

// redactURL hides a password in a broker URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
