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
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/homeassistant"
	"github.com/makercast/makercast/internal/config"
	"github.com/makercast/makercast/internal/devices"
	"github.com/makercast/makercast/internal/media"
	"github.com/makercast/makercast/internal/mqtt"
	"github.com/makercast/makercast/internal/sdnotify"
	"github.com/makercast/makercast/internal/statefile"
	"github.com/makercast/makercast/internal/store"
	"github.com/makercast/makercast/internal/telemetry"
	"github.com/makercast/makercast/internal/v4l2"
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
	cfg, err := config.Load(os.LookupEnv, host)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat).With("device", cfg.DeviceID)
	// systemd's notify protocol (packaging/makercast.service); a no-op elsewhere.
	sd, err := sdnotify.FromEnv(os.LookupEnv, os.Getpid())
	if err != nil {
		return err
	}
	var alive sdnotify.Pulse // beats on every publish of the agent's loop

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	topics := agent.NewTopics(cfg.TopicPrefix, cfg.DeviceID)
	engine := media.NewEngine(log.With("component", "media"))
	cameras := cfg.AgentCameras()
	// The machine's cameras and microphones are watched when cameras are
	// found automatically, take their microphone from the machine, or are
	// USB cameras (a replug retries at once).
	var watcher *devices.Watcher
	var inv agent.Inventory
	watch := cfg.AutoCameras
	for _, c := range cameras {
		watch = watch || c.AutoMic || c.Spec.Video.Source == agent.VideoV4L2
	}
	if watch {
		scanner := &devices.Scanner{Root: os.DirFS("/"), Query: queryNode}
		watcher = &devices.Watcher{Scanner: scanner, Log: log.With("component", "devices")}
		if inv, err = scanner.Scan(); err != nil {
			log.Warn("reading devices", "err", err)
		}
	}
	device := homeassistant.Device{ID: cfg.DeviceID, Name: cfg.DeviceName, Model: telemetry.BoardModel(os.DirFS("/")), SWVersion: version}
	bal, err := newFleet(log.With("component", "balena"))
	if err != nil {
		return err
	}
	fleetPort, updateLock := bal.ports()
	var resume agent.StateFile
	resumeFile := statefile.File{Path: filepath.Join(cfg.MediaDir, "state", "resume.json")}
	if cfg.Resume {
		resume = resumeFile
	} else if err := os.Remove(resumeFile.Path); err == nil {
		// Switched on again weeks later, it must not resume an old event.
		log.Info("resume is off: forgot what was streaming before")
	}
	var client *mqtt.Client
	ag, err := agent.New(agent.Settings{
		Topics: topics, Cameras: cameras, AutoCameras: cfg.AgentAutoCameras(), Devices: inv,
		Destinations: cfg.DestinationList, MaxOutputs: cfg.MaxOutputs, Resume: resume,
		Fleet: fleetPort, UpdateLock: updateLock,
		Discovery: homeassistant.NewAnnouncer(cfg.HADiscoveryPref, device, topics.Base, cfg.HADiscovery),
		Snapshots: cfg.AgentSnapshots(),
		Timelapse: cfg.AgentTimelapse(),
		Recording: cfg.AgentRecording(store.Recordings{Dir: cfg.RecordingsDir(), StatFS: telemetry.StatFS}),
		Telemetry: agent.TelemetrySettings{
			Health: telemetry.NewDeviceReader(cfg.MediaDir, version), Every: cfg.HealthInterval, Stats: cfg.StatsInterval,
		},
	}, engine, publisher{&client, &alive}, store.New(cfg.MediaDir, int64(cfg.MediaMaxMB)<<20, "recordings", "state"), log.With("component", "agent"))
	if err != nil {
		return err
	}
	bal.report(ag, log.With("component", "balena"))
	client, err = mqtt.New(mqtt.Options{
		URL: cfg.MQTTURL, ClientID: "makercast-" + cfg.DeviceID, Username: cfg.MQTTUsername, Password: cfg.MQTTPasswordValue,
		CAFile: cfg.MQTTCAFile, CertFile: cfg.MQTTCertFile, KeyFile: cfg.MQTTKeyFile, ServerName: cfg.MQTTServerName,
		AvailabilityTopic: topics.Availability(), Subscriptions: ag.Subscriptions(),
		Handle: func(topic string, payload []byte, retained bool) {
			ag.Deliver(agent.Message{Topic: topic, Payload: payload, Retained: retained})
		},
		OnConnect: ag.Connected,
	}, log.With("component", "mqtt"))
	if err != nil {
		return err
	}
	for _, c := range cfg.CameraList {
		log.Info("camera", "name", c.Name, "source", c.Source, "device", c.Device)
	}
	for _, d := range inv.Cameras {
		log.Debug("video device", "device", d.String())
	}
	for _, m := range inv.Mics {
		log.Info("microphone found", "device", m.Device, "card", m.Card, "bus", m.Bus)
	}
	for _, d := range cfg.DestinationList {
		log.Info("destination", "name", d.Name, "camera", d.Camera, "url", d.Redacted())
	}

	// The agent stops its streams first; only then does MQTT say offline.
	mctx, mcancel := context.WithCancel(context.Background())
	defer mcancel()
	merr := make(chan error, 1)
	go func() { merr <- client.Run(mctx) }()
	wctx, wcancel := context.WithCancel(ctx)
	var watchers sync.WaitGroup
	watchers.Add(2)
	go func() {
		defer watchers.Done()
		if watcher != nil {
			_ = watcher.Run(wctx, inv, ag.DevicesChanged)
		}
	}()
	go func() { defer watchers.Done(); bal.watch(wctx) }()
	// Ready: MQTT is connecting (a broker that is away must not fail the
	// start) and the agent's loop starts. The watchdog is fed while the MQTT
	// client runs (merr's only sender is its goroutine) and the loop
	// publishes (health at least every HEALTH_INTERVAL, connected or not).
	alive.Beat()
	stopNotify := sd.Start(ctx, func() error {
		if len(merr) > 0 {
			return errors.New("the MQTT client stopped")
		}
		return alive.Check(2*cfg.HealthInterval + 15*time.Second)
	}, log.With("component", "sdnotify"))
	aerr := ag.Run(ctx)
	stopNotify()
	wcancel()
	watchers.Wait()
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

// queryNode asks a video node what it is, for the device scanner.
func queryNode(dev string) (devices.Node, error) {
	c, err := v4l2.QueryCap(dev)
	if err != nil {
		return devices.Node{}, err
	}
	return devices.Node{Card: c.Card, Bus: c.BusInfo, Capture: c.CanCapture()}, nil
}

// publisher lets the agent be built before the client it publishes through.
type publisher struct {
	c     **mqtt.Client
	alive *sdnotify.Pulse
}

func (p publisher) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	p.alive.Beat()
	return (*p.c).Publish(ctx, topic, payload, retained)
}
