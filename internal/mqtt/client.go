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
	"net/url"
	"os"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/makercast/makercast/internal/secret"
)

// Options configure the client.
type Options struct {
	URL      string
	ClientID string
	Username string
	Password secret.Secret
	CAFile   string
	// AvailabilityTopic gets a retained "online" on every connect and
	// "offline" as the last will and on a clean stop.
	AvailabilityTopic string
	Subscriptions     []string
	// Handle receives every message on the subscriptions. It is called on
	// paho's goroutine and must not block.
	Handle func(topic string, payload []byte)
	// OnConnect is called after each (re)connect, once subscribed and
	// online. It must not block.
	OnConnect func()
}

// Client is a connected MQTT session.
type Client struct {
	opts Options
	c    paho.Client
	log  *slog.Logger
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
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("mqtt: CA file holds no PEM certificate")
		}
		po.SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	cl := &Client{opts: o, log: log}
	po.SetOnConnectHandler(cl.onConnect) // paho runs it on its own goroutine
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		log.Warn("connection lost; reconnecting", "err", err)
	})
	cl.c = paho.NewClient(po)
	return cl, nil
}

func (cl *Client) onConnect(c paho.Client) {
	handler := func(_ paho.Client, m paho.Message) {
		// Copy and hand off: paho reuses nothing, but the handler must
		// return at once or the connection stalls.
		p := append([]byte(nil), m.Payload()...)
		cl.opts.Handle(m.Topic(), p)
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

// redactURL hides a password in a broker URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
