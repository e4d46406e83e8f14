package agent_test

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media"
	"github.com/makercast/makercast/internal/mqtt"
	"github.com/makercast/makercast/internal/telemetry"
	"github.com/makercast/makercast/internal/testenv"
)

// piFS is a Pi 3's /sys and /proc as far as throttling goes; set changes a
// file while the agent reads it.
type piFS struct {
	mu sync.Mutex
	m  fstest.MapFS
}

func (p *piFS) Open(name string) (fs.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.m[name]
	if !ok {
		return p.m.Open(name) // directories and misses
	}
	cp := fstest.MapFS{name: &fstest.MapFile{Data: append([]byte(nil), f.Data...)}}
	return cp.Open(name)
}

func (p *piFS) set(name, data string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[name] = &fstest.MapFile{Data: []byte(data)}
}

// An under-voltage that appears between two health publications is
// published at once, not at the next interval: the full stack (the real
// telemetry reader over a Pi's sysfs tree, the agent, paho, Mosquitto).
func TestProblemFlagsArePublishedAtOnce(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	w := testenv.Watch(t, broker.URL, "makercast/#")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	root := &piFS{m: fstest.MapFS{
		"proc/device-tree/model":                              {Data: []byte("Raspberry Pi 3 Model B Rev 1.2\x00")},
		"sys/devices/platform/soc/soc:firmware/get_throttled": {Data: []byte("0\n")},
	}}
	topics := agent.NewTopics("makercast", "pi3")
	var client *mqtt.Client
	a, err := agent.New(agent.Settings{
		Topics:    topics,
		Cameras:   []agent.Camera{{Name: "test", Spec: agent.CaptureSpec{Video: agent.VideoSpec{Source: agent.VideoTest, Width: 320, Height: 240, FPS: 15, BitrateKbps: 300, KeyframeSec: 2, Encoder: agent.EncoderX264, Preset: "ultrafast"}, Audio: agent.AudioSpec{Source: agent.AudioSilence, BitrateKbps: 64}}}},
		Telemetry: agent.TelemetrySettings{Health: &telemetry.Reader{Root: root}, Every: time.Hour, Check: 100 * time.Millisecond},
	}, media.NewEngine(log), publisherFunc(func(ctx context.Context, topic string, p []byte, r bool) error {
		return client.Publish(ctx, topic, p, r)
	}), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	client, err = mqtt.New(mqtt.Options{URL: broker.URL, ClientID: "pi3", AvailabilityTopic: topics.Availability(),
		Subscriptions: a.Subscriptions(), Handle: func(topic string, p []byte, r bool) { a.Deliver(agent.Message{Topic: topic, Payload: p, Retained: r}) },
		OnConnect: a.Connected}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); client.Run(ctx) }()
	go func() { defer wg.Done(); a.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	w.Wait(topics.Health(), testenv.Contains(`"under_voltage":false`, `"model":"Raspberry Pi 3 Model B Rev 1.2"`), 10*time.Second)
	mark := w.Len()
	root.set("sys/devices/platform/soc/soc:firmware/get_throttled", "50005\n")
	start := time.Now()
	w.WaitFrom(mark, topics.Health(), testenv.Contains(`"now":{"under_voltage":true`), 3*time.Second)
	t.Logf("under-voltage published %s after it appeared (health interval 1 h)", time.Since(start).Round(time.Millisecond))
	// Nothing changes: nothing more is published.
	mark = w.Len()
	time.Sleep(time.Second)
	for _, m := range w.Messages()[mark:] {
		if m.Topic == topics.Health() {
			t.Fatalf("health published again without a change: %s", m.Payload)
		}
	}
}

type publisherFunc func(ctx context.Context, topic string, payload []byte, retained bool) error

func (f publisherFunc) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	return f(ctx, topic, payload, retained)
}
