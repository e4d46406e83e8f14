// Command makercast-agent streams a Raspberry Pi's cameras to RTMP(S)
// destinations and exposes them over MQTT (Home Assistant, Node-RED,
// mosquitto_pub). It only wires the parts together; see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/homeassistant"
	"github.com/makercast/makercast/internal/config"
	"github.com/makercast/makercast/internal/media"
	"github.com/makercast/makercast/internal/media/graph"
	"github.com/makercast/makercast/internal/mqtt"
	"github.com/makercast/makercast/internal/store"
	"github.com/makercast/makercast/internal/telemetry"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	// A GStreamer element writing to a closed socket must get EPIPE, not
	// kill the process.
	signal.Ignore(syscall.SIGPIPE)
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "makercast-agent:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("makercast-agent", flag.ContinueOnError)
	fl.SetOutput(stderr)
	showVersion := fl.Bool("version", false, "print the version and exit")
	fl.Usage = func() {
		config.Help(stdout)
		fmt.Fprintln(stdout, "\nFlags:")
		fl.SetOutput(stdout)
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return nil
	}
	host, _ := os.Hostname()
	cfg, err := config.Load(os.LookupEnv, os.DirFS("/"), host)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat).With("device", cfg.DeviceID)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	topics := agent.NewTopics(cfg.TopicPrefix, cfg.DeviceID)
	engine := media.NewEngine(log.With("component", "media"))
	device := homeassistant.Device{ID: cfg.DeviceID, Name: cfg.DeviceName, Model: telemetry.BoardModel(os.DirFS("/")), SWVersion: version}
	var client *mqtt.Client
	ag, err := agent.New(agent.Settings{
		Topics: topics, Cameras: cfg.AgentCameras(), Destinations: cfg.DestinationList, MaxOutputs: cfg.MaxOutputs,
		Discovery: homeassistant.NewAnnouncer(cfg.HADiscoveryPref, device, topics.Base, cfg.HADiscovery),
		Snapshots: cfg.AgentSnapshots(),
		Timelapse: cfg.AgentTimelapse(),
		Telemetry: agent.TelemetrySettings{
			Health: telemetry.NewDeviceReader(cfg.MediaDir, version), Every: cfg.HealthInterval, Stats: cfg.StatsInterval,
		},
	}, mediaAdapter{engine}, publisher{&client}, store.New(cfg.MediaDir, int64(cfg.MediaMaxMB)<<20), log.With("component", "agent"))
	if err != nil {
		return err
	}
	client, err = mqtt.New(mqtt.Options{
		URL: cfg.MQTTURL, ClientID: "makercast-" + cfg.DeviceID, Username: cfg.MQTTUsername, Password: cfg.MQTTPasswordValue,
		CAFile: cfg.MQTTCAFile, AvailabilityTopic: topics.Availability(), Subscriptions: ag.Subscriptions(),
		Handle:    func(topic string, payload []byte) { ag.Deliver(agent.Message{Topic: topic, Payload: payload}) },
		OnConnect: ag.Connected,
	}, log.With("component", "mqtt"))
	if err != nil {
		return err
	}
	for _, c := range cfg.CameraList {
		log.Info("camera", "name", c.Name, "source", c.Source, "device", c.Device)
	}
	for _, d := range cfg.DestinationList {
		log.Info("destination", "name", d.Name, "camera", d.Camera, "url", d.Display())
	}

	// The agent stops its streams first; only then does MQTT say offline.
	mctx, mcancel := context.WithCancel(context.Background())
	defer mcancel()
	merr := make(chan error, 1)
	go func() { merr <- client.Run(mctx) }()
	aerr := ag.Run(ctx)
	mcancel()
	if err := <-merr; err != nil {
		return err
	}
	log.Info("stopped")
	return aerr
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// mediaAdapter gives the engine's concrete capture the agent's interface.
type mediaAdapter struct{ e *media.Engine }

func (m mediaAdapter) OpenCapture(ctx context.Context, spec graph.CaptureSpec) (agent.Capture, error) {
	c, err := m.e.OpenCapture(ctx, spec)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (m mediaAdapter) AssembleTimelapse(ctx context.Context, pattern string, fps int, out string) error {
	return m.e.AssembleTimelapse(ctx, pattern, fps, out)
}

// publisher lets the agent be built before the client it publishes through.
type publisher struct{ c **mqtt.Client }

func (p publisher) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	return (*p.c).Publish(ctx, topic, payload, retained)
}
