// Package config reads makercast's configuration from MAKERCAST_*
// environment variables (balena device variables are environment variables)
// and validates it once, at start-up. It is the only package that reads the
// environment.
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/secret"
)

// Prefix is the environment variable prefix.
const Prefix = "MAKERCAST"

// Spec is the envconfig specification: every fixed variable, its default and
// its meaning. Per-destination variables are documented in Help.
type Spec struct {
	DeviceID         string        `envconfig:"DEVICE_ID" desc:"device id in MQTT topics and Home Assistant ids; lowercase letters, digits, - and _ (default: the sanitised hostname)"`
	DeviceName       string        `envconfig:"DEVICE_NAME" desc:"device name shown in Home Assistant (default: makercast <device id>)"`
	MQTTURL          string        `envconfig:"MQTT_URL" default:"tcp://127.0.0.1:1883" desc:"MQTT broker: tcp://, ssl://, ws:// or wss:// host:port"`
	MQTTUsername     string        `envconfig:"MQTT_USERNAME" desc:"MQTT user name"`
	MQTTPassword     secret.Secret `envconfig:"MQTT_PASSWORD" desc:"MQTT password (secret)"`
	MQTTPasswordFile string        `envconfig:"MQTT_PASSWORD_FILE" desc:"file holding the MQTT password, instead of MQTT_PASSWORD"`
	MQTTCAFile       string        `envconfig:"MQTT_CA_FILE" desc:"PEM CA bundle to verify an ssl:// broker (default: the system's)"`
	MQTTCertFile     string        `envconfig:"MQTT_CERT_FILE" desc:"PEM client certificate for an ssl:// or wss:// broker, with MQTT_KEY_FILE"`
	MQTTKeyFile      string        `envconfig:"MQTT_KEY_FILE" desc:"PEM private key of MQTT_CERT_FILE (secret: read from the file, never logged)"`
	MQTTServerName   string        `envconfig:"MQTT_TLS_SERVER_NAME" desc:"name the broker's certificate must carry when the URL's host is an IP address or another name (default: the URL's host)"`
	TopicPrefix      string        `envconfig:"TOPIC_PREFIX" default:"makercast" desc:"first level of every MQTT topic"`
	HADiscovery      bool          `envconfig:"HA_DISCOVERY" default:"true" desc:"publish Home Assistant MQTT discovery"`
	HADiscoveryPref  string        `envconfig:"HA_DISCOVERY_PREFIX" default:"homeassistant" desc:"Home Assistant discovery prefix"`
	Cameras          string        `envconfig:"CAMERAS" default:"auto" desc:"auto (every camera plugged in, now or later), test, or name=source list: cam=v4l2:/dev/video0[:auto|raw|mjpeg|h264], pi=libcamera, demo=test"`
	CameraH264       bool          `envconfig:"CAMERA_H264" default:"false" desc:"use a camera's own H.264 (C920) when it has it: no re-encoding, but no snapshots, bitrate or keyframe control"`
	CameraStall      time.Duration `envconfig:"CAMERA_STALL_TIMEOUT" default:"2s" desc:"a running camera that delivers no frame for this long has failed and is restarted (0s: never)"`
	StreamURL        string        `envconfig:"STREAM_URL" desc:"one destination: rtmp:// or rtmps:// server URL (the key is appended), or srt://host:port?mode=caller|listener&latency=<ms>&streamid=<id>"`
	StreamKey        secret.Secret `envconfig:"STREAM_KEY" desc:"stream key for STREAM_URL, or its SRT passphrase (10-79 characters, optional) (secret)"`
	StreamKeyFile    string        `envconfig:"STREAM_KEY_FILE" desc:"file holding the stream key, instead of STREAM_KEY"`
	StreamName       string        `envconfig:"STREAM_NAME" default:"main" desc:"destination name for STREAM_URL"`
	Destinations     string        `envconfig:"DESTINATIONS" desc:"more destinations: name=url,name=url (rtmp://, rtmps://, srt://); keys and SRT passphrases in MAKERCAST_DESTINATION_<NAME>_KEY"`
	VideoWidth       int           `envconfig:"VIDEO_WIDTH" default:"1280" desc:"video width in pixels"`
	VideoHeight      int           `envconfig:"VIDEO_HEIGHT" default:"720" desc:"video height in pixels"`
	VideoFPS         int           `envconfig:"VIDEO_FPS" default:"30" desc:"frames per second"`
	VideoBitrate     int           `envconfig:"VIDEO_BITRATE" default:"2500" desc:"video bitrate in kbit/s (CBR)"`
	KeyframeInterval time.Duration `envconfig:"KEYFRAME_INTERVAL" default:"2s" desc:"time between keyframes (platforms ask for 2s)"`
	VideoEncoder     string        `envconfig:"VIDEO_ENCODER" default:"auto" desc:"auto (hardware v4l2h264enc when present), x264 or v4l2"`
	X264Preset       string        `envconfig:"X264_PRESET" default:"veryfast" desc:"x264 speed preset: ultrafast (Constrained Baseline), superfast, veryfast, faster, fast (Main)"`
	Audio            string        `envconfig:"AUDIO" default:"auto" desc:"auto (each camera's own microphone, else a free one), none (silent AAC track), test (tone), or alsa:<device> such as alsa:plughw:CARD=C920,DEV=0"`
	AudioBitrate     int           `envconfig:"AUDIO_BITRATE" default:"128" desc:"AAC bitrate in kbit/s"`
	MaxOutputs       int           `envconfig:"MAX_OUTPUTS" default:"6" desc:"destinations one camera can feed at once (its recording has a slot of its own)"`
	SnapshotQuality  int           `envconfig:"SNAPSHOT_QUALITY" default:"85" desc:"default JPEG quality of snapshots (1-100)"`
	SnapshotEvery    time.Duration `envconfig:"SNAPSHOT_INTERVAL" default:"0s" desc:"take a snapshot of every camera this often (0s: off)"`
	SnapshotMinGap   time.Duration `envconfig:"SNAPSHOT_MIN_INTERVAL" default:"250ms" desc:"least time between two snapshots of a camera; requests in between share the next picture"`
	SnapshotWarm     bool          `envconfig:"SNAPSHOT_KEEP_WARM" default:"false" desc:"keep cameras open while not streaming, for instant snapshots"`
	SnapshotWarmup   time.Duration `envconfig:"SNAPSHOT_WARMUP" default:"1s" desc:"how long a camera opened for a snapshot settles before the picture (dark first frames)"`
	SnapshotKeep     int           `envconfig:"SNAPSHOT_KEEP" default:"0" desc:"also save the newest N snapshots per camera in the media directory (0: none)"`
	Resume           bool          `envconfig:"RESUME" default:"true" desc:"after a power cut, crash or restart, switch on again the destinations and recordings that were on (kept in MEDIA_DIR/state)"`
	MediaDir         string        `envconfig:"MEDIA_DIR" default:"/var/lib/makercast" desc:"media directory for timelapses, saved snapshots and recordings"`
	MediaMaxMB       int           `envconfig:"MEDIA_MAX_MB" default:"2048" desc:"size limit in MiB of snapshots and timelapses in the media directory (recordings have their own, RECORD_MAX_MB); a timelapse stops with an error event when it is reached"`
	RecordSegment    time.Duration `envconfig:"RECORD_SEGMENT" default:"60s" desc:"length of one recording file (cut at the first keyframe after it); a power cut loses at most the last second"`
	RecordMaxAge     time.Duration `envconfig:"RECORD_MAX_AGE" default:"168h" desc:"recordings older than this are deleted (0s: kept until RECORD_MAX_MB or RECORD_MIN_FREE_MB needs the room)"`
	RecordMaxMB      int           `envconfig:"RECORD_MAX_MB" default:"4096" desc:"all recordings together take at most this many MiB; the oldest are deleted first"`
	RecordMinFreeMB  int           `envconfig:"RECORD_MIN_FREE_MB" default:"512" desc:"the disk keeps at least this many MiB free: the oldest recordings are deleted, and recording stops when that is not enough"`
	TimelapseEvery   time.Duration `envconfig:"TIMELAPSE_INTERVAL" default:"10s" desc:"default time between timelapse frames"`
	TimelapseFPS     int           `envconfig:"TIMELAPSE_FPS" default:"25" desc:"frame rate of assembled timelapse videos"`
	HealthInterval   time.Duration `envconfig:"HEALTH_INTERVAL" default:"30s" desc:"how often the Pi's health is published (problems such as under-voltage at once)"`
	StatsInterval    time.Duration `envconfig:"STATS_INTERVAL" default:"5s" desc:"how often stream statistics (bitrate, fps, drops) are published while streaming"`
	LogLevel         string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat        string        `envconfig:"LOG_FORMAT" default:"text" desc:"text or json"`
}

// Camera is one configured camera.
type Camera struct {
	Name   string
	Source string // test, v4l2, libcamera
	Device string
	Input  string // v4l2: auto, raw, mjpeg, h264
}

// Config is the validated configuration.
type Config struct {
	Spec
	MQTTPasswordValue secret.Secret
	// AutoCameras is true for MAKERCAST_CAMERAS=auto: the cameras are the
	// ones plugged in (internal/devices), and CameraList is empty.
	AutoCameras     bool
	CameraList      []Camera
	DestinationList []agent.Destination
}

// Env looks up a variable: os.LookupEnv. It is used for the per-destination
// variables, whose names depend on MAKERCAST_DESTINATIONS.
type Env func(key string) (string, bool)

var (
	idPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	haPattern     = regexp.MustCompile(`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$`)
	// A bare word after the device is meant as its input format (a udev
	// link's own colons are followed by dotted numbers and dashes).
	formatWord = regexp.MustCompile(`^[a-z0-9]+$`)
)

// Load reads and validates the configuration. env is os.LookupEnv in the
// agent; hostname gives the default id. Cameras and microphones are not
// looked for here: with auto, the agent finds them as they are plugged in.
func Load(env Env, hostname string) (*Config, error) {
	var spec Spec
	// envconfig reads the process environment; env must see the same
	// variables (os.LookupEnv). Tests set them with t.Setenv.
	if err := envconfig.Process(Prefix, &spec); err != nil {
		// envconfig's message names the variable; secrets are strings and
		// cannot fail to parse, so no secret value can appear in it.
		return nil, fmt.Errorf("config: %w", err)
	}
	c := &Config{Spec: spec}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s_%s: "+format, append([]any{Prefix, key}, args...)...))
	}
	if c.DeviceID == "" {
		c.DeviceID = SanitiseID(hostname)
	}
	if !idPattern.MatchString(c.DeviceID) {
		bad("DEVICE_ID", "%q must be 1-32 of a-z, 0-9, - and _, starting with a letter or digit", c.DeviceID)
	}
	if c.DeviceName == "" {
		c.DeviceName = "makercast " + c.DeviceID
	}
	if u, err := url.Parse(c.MQTTURL); err != nil || u.Host == "" || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "ws" && u.Scheme != "wss") {
		bad("MQTT_URL", "%q must look like tcp://host:1883, ssl://host:8883 or ws://host:9001", redactURL(c.MQTTURL))
	}
	pw, err := secretOrFile(c.MQTTPassword, c.MQTTPasswordFile)
	if err != nil {
		bad("MQTT_PASSWORD", "%v", err)
	}
	c.MQTTPasswordValue = pw
	if c.MQTTCAFile != "" {
		if _, err := os.Stat(c.MQTTCAFile); err != nil {
			bad("MQTT_CA_FILE", "%v", err)
		}
	}
	c.checkMQTTTLS(bad)
	if !prefixPattern.MatchString(c.TopicPrefix) {
		bad("TOPIC_PREFIX", "%q must be 1-64 of letters, digits, - and _ (no / + #)", c.TopicPrefix)
	}
	if !haPattern.MatchString(c.HADiscoveryPref) || len(c.HADiscoveryPref) > 64 {
		bad("HA_DISCOVERY_PREFIX", "%q is not a valid topic prefix", c.HADiscoveryPref)
	}
	if c.Cameras == "auto" {
		c.AutoCameras = true
	} else if cams, err := parseCameras(c.Cameras); err != nil {
		bad("CAMERAS", "%v", err)
	} else {
		c.CameraList = cams
	}
	if c.CameraStall != 0 && (c.CameraStall < 500*time.Millisecond || c.CameraStall > time.Minute) {
		bad("CAMERA_STALL_TIMEOUT", "%s must be 0s (never) or within 500ms..1m", c.CameraStall)
	}
	checkRange := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(key, "%d is out of range %d..%d", v, lo, hi)
		}
	}
	checkRange("VIDEO_WIDTH", c.VideoWidth, 160, 3840)
	checkRange("VIDEO_HEIGHT", c.VideoHeight, 120, 2160)
	if c.VideoWidth%2 != 0 || c.VideoHeight%2 != 0 {
		bad("VIDEO_WIDTH", "width and height must be even (4:2:0), got %dx%d", c.VideoWidth, c.VideoHeight)
	}
	checkRange("VIDEO_FPS", c.VideoFPS, 1, 60)
	checkRange("VIDEO_BITRATE", c.VideoBitrate, 100, 20000)
	checkRange("AUDIO_BITRATE", c.AudioBitrate, 32, 320)
	checkRange("MAX_OUTPUTS", c.MaxOutputs, 1, 16)
	checkRange("SNAPSHOT_QUALITY", c.SnapshotQuality, 1, 100)
	if c.SnapshotEvery != 0 && (c.SnapshotEvery < time.Second || c.SnapshotEvery > 24*time.Hour) {
		bad("SNAPSHOT_INTERVAL", "%s must be 0s (off) or within 1s..24h", c.SnapshotEvery)
	}
	if c.SnapshotMinGap < 50*time.Millisecond || c.SnapshotMinGap > time.Minute {
		bad("SNAPSHOT_MIN_INTERVAL", "%s must be within 50ms..1m", c.SnapshotMinGap)
	}
	if c.SnapshotWarmup < 0 || c.SnapshotWarmup > 10*time.Second {
		bad("SNAPSHOT_WARMUP", "%s must be within 0s..10s", c.SnapshotWarmup)
	}
	checkRange("SNAPSHOT_KEEP", c.SnapshotKeep, 0, 100000)
	if !filepath.IsAbs(c.MediaDir) {
		bad("MEDIA_DIR", "%q must be an absolute path", c.MediaDir)
	}
	checkRange("MEDIA_MAX_MB", c.MediaMaxMB, 1, 1<<30)
	if c.TimelapseEvery < time.Second || c.TimelapseEvery > 24*time.Hour || c.TimelapseEvery%time.Second != 0 {
		bad("TIMELAPSE_INTERVAL", "%s must be whole seconds within 1s..24h", c.TimelapseEvery)
	}
	checkRange("TIMELAPSE_FPS", c.TimelapseFPS, 1, 60)
	if c.RecordSegment < 2*time.Second || c.RecordSegment > time.Hour {
		bad("RECORD_SEGMENT", "%s must be within 2s..1h", c.RecordSegment)
	} else if c.RecordSegment < c.KeyframeInterval {
		bad("RECORD_SEGMENT", "%s is shorter than MAKERCAST_KEYFRAME_INTERVAL (%s): files are cut at keyframes", c.RecordSegment, c.KeyframeInterval)
	}
	if c.RecordMaxAge != 0 && (c.RecordMaxAge < time.Minute || c.RecordMaxAge > 10*365*24*time.Hour) {
		bad("RECORD_MAX_AGE", "%s must be 0s (no limit) or within 1m..87600h", c.RecordMaxAge)
	}
	checkRange("RECORD_MAX_MB", c.RecordMaxMB, 1, 1<<30)
	checkRange("RECORD_MIN_FREE_MB", c.RecordMinFreeMB, 0, 1<<30)
	if c.HealthInterval < time.Second || c.HealthInterval > time.Hour {
		bad("HEALTH_INTERVAL", "%s must be within 1s..1h", c.HealthInterval)
	}
	if c.StatsInterval < time.Second || c.StatsInterval > 10*time.Minute {
		bad("STATS_INTERVAL", "%s must be within 1s..10m", c.StatsInterval)
	}
	if c.KeyframeInterval < time.Second || c.KeyframeInterval > 10*time.Second || c.KeyframeInterval%time.Second != 0 {
		bad("KEYFRAME_INTERVAL", "%s must be whole seconds within 1s..10s", c.KeyframeInterval)
	}
	switch c.VideoEncoder {
	case "auto", "x264", "v4l2":
	default:
		bad("VIDEO_ENCODER", "%q must be auto, x264 or v4l2", c.VideoEncoder)
	}
	switch c.X264Preset {
	case "ultrafast", "superfast", "veryfast", "faster", "fast":
	default:
		bad("X264_PRESET", "%q must be ultrafast, superfast, veryfast, faster or fast", c.X264Preset)
	}
	if err := checkAudio(c.Audio); err != nil {
		bad("AUDIO", "%v", err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "%q must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("LOG_FORMAT", "%q must be text or json", c.LogFormat)
	}
	dests, derrs := c.loadDestinations(env)
	errs = append(errs, derrs...)
	c.DestinationList = dests
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// serverNamePattern: a DNS name or an IP address, as a certificate names it.
var serverNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.:-]{0,251}[A-Za-z0-9])?$`)

// checkMQTTTLS checks the client certificate and TLS server name: both
// files or neither, a pair that loads, and only with a TLS broker URL.
func (c *Config) checkMQTTTLS(bad func(key, format string, args ...any)) {
	tlsURL := strings.HasPrefix(c.MQTTURL, "ssl://") || strings.HasPrefix(c.MQTTURL, "wss://")
	switch {
	case c.MQTTCertFile == "" && c.MQTTKeyFile == "":
	case c.MQTTCertFile == "":
		bad("MQTT_CERT_FILE", "missing, but MAKERCAST_MQTT_KEY_FILE is set: give both or neither")
	case c.MQTTKeyFile == "":
		bad("MQTT_KEY_FILE", "missing, but MAKERCAST_MQTT_CERT_FILE is set: give both or neither")
	case !tlsURL:
		bad("MQTT_CERT_FILE", "a client certificate needs an ssl:// or wss:// MAKERCAST_MQTT_URL")
	default:
		// crypto/tls's errors say what is wrong (no PEM data, a key that
		// does not match), never the key's bytes.
		if _, err := tls.LoadX509KeyPair(c.MQTTCertFile, c.MQTTKeyFile); err != nil {
			bad("MQTT_KEY_FILE", "client certificate %s and key %s: %v", c.MQTTCertFile, c.MQTTKeyFile, err)
		}
	}
	if c.MQTTServerName != "" {
		if !tlsURL {
			bad("MQTT_TLS_SERVER_NAME", "needs an ssl:// or wss:// MAKERCAST_MQTT_URL")
		} else if !serverNamePattern.MatchString(c.MQTTServerName) {
			bad("MQTT_TLS_SERVER_NAME", "%q must be a host name such as broker.makerspace.lan (no scheme or port)", c.MQTTServerName)
		}
	}
}

func secretOrFile(value secret.Secret, file string) (secret.Secret, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", errors.New("set either the variable or its _FILE form, not both")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	return secret.Secret(strings.TrimSpace(string(b))), nil
}

// redactURL shows a URL without its password (or nothing, if it does not
// parse, as it may hold one anywhere).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// SanitiseID turns a hostname into a device id.
func SanitiseID(host string) string {
	host = strings.ToLower(host)
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	var b strings.Builder
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), "_-")
	if len(s) > 32 {
		s = s[:32]
	}
	if s == "" {
		s = "makercast"
	}
	return s
}

func parseCameras(v string) ([]Camera, error) {
	if v == "test" {
		return []Camera{{Name: "test", Source: "test"}}, nil
	}
	var cams []Camera
	seen := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		name, def, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want name=source", item)
		}
		if !agent.ValidName(name) {
			return nil, fmt.Errorf("camera name %q must be 1-32 of a-z, 0-9, - and _", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("camera %q defined twice", name)
		}
		seen[name] = true
		parts := strings.Split(def, ":")
		cam := Camera{Name: name, Source: parts[0]}
		switch parts[0] {
		case "test":
			if len(parts) > 1 {
				return nil, fmt.Errorf("camera %q: test takes no device", name)
			}
		case "libcamera":
			cam.Device = strings.Join(parts[1:], ":")
			if !agent.ValidLibcameraName(cam.Device) {
				return nil, fmt.Errorf("camera %q: libcamera camera name %q has unexpected characters", name, cam.Device)
			}
		case "v4l2":
			// The device may itself hold colons (/dev/v4l/by-path/...-usb-0:1.2:1.0-video-index0):
			// a last part that names a format is the format.
			cam.Device, cam.Input = strings.Join(parts[1:], ":"), "auto"
			if n := len(parts); n > 2 {
				switch last := parts[n-1]; {
				case last == "auto", last == "raw", last == "mjpeg", last == "h264":
					cam.Device, cam.Input = strings.Join(parts[1:n-1], ":"), last
				case formatWord.MatchString(last):
					return nil, fmt.Errorf("camera %q: input %q must be auto, raw, mjpeg or h264", name, last)
				}
			}
			if !agent.ValidDevicePath(cam.Device) {
				return nil, fmt.Errorf("camera %q: want v4l2:/dev/videoN[:auto|raw|mjpeg|h264]; %q is not a /dev path", name, cam.Device)
			}
		default:
			return nil, fmt.Errorf("camera %q: source %q must be test, v4l2 or libcamera", name, parts[0])
		}
		cams = append(cams, cam)
	}
	return cams, nil
}

// checkAudio checks MAKERCAST_AUDIO.
func checkAudio(v string) error {
	switch {
	case v == "auto", v == "none", v == "test":
		return nil
	case strings.HasPrefix(v, "alsa:"):
		if !agent.ValidALSADevice(strings.TrimPrefix(v, "alsa:")) {
			return fmt.Errorf("%q: the ALSA device has unexpected characters", v)
		}
		return nil
	}
	return fmt.Errorf("%q must be auto, none, test or alsa:<device>", v)
}

func (c *Config) loadDestinations(env Env) ([]agent.Destination, []error) {
	var out []agent.Destination
	var errs []error
	firstCam := ""
	if len(c.CameraList) > 0 {
		firstCam = c.CameraList[0].Name
	}
	seen := map[string]bool{}
	add := func(name, rawURL string, key secret.Secret, keyVar string) {
		d, err := agent.ParseDestination(name, firstCam, rawURL, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", keyVar, err))
			return
		}
		if seen[name] {
			errs = append(errs, fmt.Errorf("config: %s: destination %q defined twice", keyVar, name))
			return
		}
		seen[name] = true
		if cam, ok := env(destVar(name, "CAMERA")); ok {
			d.Camera = cam
			found := false
			for _, cc := range c.CameraList {
				found = found || cc.Name == cam
			}
			switch {
			case c.AutoCameras && !agent.ValidName(cam):
				errs = append(errs, fmt.Errorf("config: %s: %q is not a camera name", destVar(name, "CAMERA"), cam))
			case !c.AutoCameras && !found:
				errs = append(errs, fmt.Errorf("config: %s: no camera named %q", destVar(name, "CAMERA"), cam))
			}
		}
		out = append(out, d)
	}
	if c.StreamURL != "" {
		key, err := secretOrFile(c.StreamKey, c.StreamKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: %s_STREAM_KEY: %w", Prefix, err))
		}
		if !agent.ValidName(c.StreamName) {
			errs = append(errs, fmt.Errorf("config: %s_STREAM_NAME: %q must be 1-32 of a-z, 0-9, - and _", Prefix, c.StreamName))
		}
		add(c.StreamName, c.StreamURL, key, Prefix+"_STREAM_URL")
	} else if c.StreamKey != "" || c.StreamKeyFile != "" {
		errs = append(errs, fmt.Errorf("config: %s_STREAM_KEY is set but %s_STREAM_URL is not", Prefix, Prefix))
	}
	if c.Destinations != "" {
		for i, item := range strings.Split(c.Destinations, ",") {
			name, rawURL, ok := strings.Cut(strings.TrimSpace(item), "=")
			if !ok || !agent.ValidName(name) {
				// The item may hold a key: name only its position.
				errs = append(errs, fmt.Errorf("config: %s_DESTINATIONS: item %d: want name=url with a name of 1-32 of a-z, 0-9, - and _", Prefix, i+1))
				continue
			}
			v, _ := env(destVar(name, "KEY"))
			f, _ := env(destVar(name, "KEY_FILE"))
			key, err := secretOrFile(secret.Secret(v), f)
			if err != nil {
				errs = append(errs, fmt.Errorf("config: %s: %w", destVar(name, "KEY"), err))
				continue
			}
			add(name, rawURL, key, Prefix+"_DESTINATIONS")
		}
	}
	perCamera := map[string]int{}
	for _, d := range out {
		perCamera[d.Camera]++
	}
	for cam, n := range perCamera {
		if n > c.MaxOutputs {
			errs = append(errs, fmt.Errorf("config: %s_MAX_OUTPUTS: camera %s has %d destinations, more than %d", Prefix, cam, n, c.MaxOutputs))
		}
	}
	return out, errs
}

func destVar(name, suffix string) string {
	return fmt.Sprintf("%s_DESTINATION_%s_%s", Prefix, strings.ToUpper(strings.ReplaceAll(name, "-", "_")), suffix)
}

// Var is one fixed variable, as envconfig sees the Spec.
type Var struct {
	Key, Default, Desc string
}

// Vars lists the fixed variables in Spec order, from envconfig's own view of
// the struct.
func Vars() []Var {
	var buf bytes.Buffer
	format := `{{range .}}{{.Key}}` + "\x1f" + `{{.Tags.Get "default"}}` + "\x1f" + `{{.Tags.Get "desc"}}` + "\x1e" + `{{end}}`
	if err := envconfig.Usagef(Prefix, &Spec{}, &buf, format); err != nil {
		panic(err) // the Spec is static; a failure here is a programming error
	}
	var out []Var
	for _, rec := range strings.Split(buf.String(), "\x1e") {
		f := strings.Split(rec, "\x1f")
		if len(f) == 3 {
			out = append(out, Var{Key: f[0], Default: f[1], Desc: f[2]})
		}
	}
	return out
}

// Help writes the -help text: every variable, its default and meaning.
// Defaults are from the code; secrets never have defaults and are not read.
func Help(w io.Writer) {
	fmt.Fprintln(w, "makercast-agent streams cameras to RTMP(S) destinations, driven over MQTT.")
	fmt.Fprintln(w, "It is configured by environment variables:")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, v := range Vars() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Key, v.Default, v.Desc)
	}
	fmt.Fprintf(tw, "%s_DESTINATION_<NAME>_KEY\t\tstream key (or SRT passphrase) of destination <name> from %s_DESTINATIONS (secret)\n", Prefix, Prefix)
	fmt.Fprintf(tw, "%s_DESTINATION_<NAME>_KEY_FILE\t\tfile holding that key\n", Prefix)
	fmt.Fprintf(tw, "%s_DESTINATION_<NAME>_CAMERA\t(first camera)\tcamera that feeds destination <name> (with CAMERAS=auto, the first one found)\n", Prefix)
	tw.Flush()
}

// AgentSnapshots is the snapshot part of the agent's settings.
func (c *Config) AgentSnapshots() agent.SnapshotSettings {
	return agent.SnapshotSettings{Quality: c.SnapshotQuality, MinInterval: c.SnapshotMinGap, Every: c.SnapshotEvery,
		KeepWarm: c.SnapshotWarm, Warmup: c.SnapshotWarmup, Keep: c.SnapshotKeep}
}

// AgentRecording is the recording part of the agent's settings; files is
// where retention looks (internal/store).
func (c *Config) AgentRecording(files agent.Recordings) agent.RecordingSettings {
	return agent.RecordingSettings{
		Dir: c.RecordingsDir(), Segment: c.RecordSegment, Fragment: time.Second,
		MaxAge: c.RecordMaxAge, MaxBytes: int64(c.RecordMaxMB) << 20, MinFree: int64(c.RecordMinFreeMB) << 20,
		RetentionEvery: 10 * time.Second, Files: files,
	}
}

// RecordingsDir is where recordings go, a directory per camera.
func (c *Config) RecordingsDir() string { return filepath.Join(c.MediaDir, "recordings") }

// AgentTimelapse is the timelapse part of the agent's settings.
func (c *Config) AgentTimelapse() agent.TimelapseSettings {
	return agent.TimelapseSettings{Interval: c.TimelapseEvery, FPS: c.TimelapseFPS}
}

// AgentCameras turns the configured cameras into the agent's, each with its
// capture spec.
func (c *Config) AgentCameras() []agent.Camera {
	var out []agent.Camera
	for _, cam := range c.CameraList {
		v := c.videoSpec()
		v.Source, v.Device, v.Input = agent.VideoSource(cam.Source), cam.Device, agent.InputFormat(cam.Input)
		ac := agent.Camera{Name: cam.Name, Spec: agent.CaptureSpec{Video: v, Audio: c.audioSpec(), StallTimeout: c.CameraStall}}
		switch {
		case cam.Source == "test" && c.Audio == "auto":
			ac.Spec.Audio.Source = agent.AudioTest // the test camera gets the test tone unless told otherwise
		case c.Audio == "auto":
			ac.AutoMic = true
		}
		out = append(out, ac)
	}
	return out
}

// AgentAutoCameras is the template for the cameras the agent finds
// (MAKERCAST_CAMERAS=auto), or nil.
func (c *Config) AgentAutoCameras() *agent.AutoCameras {
	if !c.AutoCameras {
		return nil
	}
	v := c.videoSpec()
	v.Source, v.Input = agent.VideoV4L2, agent.InputAuto
	return &agent.AutoCameras{
		Spec:    agent.CaptureSpec{Video: v, Audio: c.audioSpec(), StallTimeout: c.CameraStall},
		AutoMic: c.Audio == "auto",
	}
}

func (c *Config) videoSpec() agent.VideoSpec {
	return agent.VideoSpec{
		Width: c.VideoWidth, Height: c.VideoHeight, FPS: c.VideoFPS, BitrateKbps: c.VideoBitrate,
		KeyframeSec: int(c.KeyframeInterval / time.Second), Encoder: agent.Encoder(c.VideoEncoder), Preset: c.X264Preset,
		PreferH264: c.CameraH264,
	}
}

// audioSpec is the configured sound; auto starts silent (the agent puts in
// each camera's microphone).
func (c *Config) audioSpec() agent.AudioSpec {
	a := agent.AudioSpec{Source: agent.AudioSilence, BitrateKbps: c.AudioBitrate}
	switch {
	case c.Audio == "test":
		a.Source = agent.AudioTest
	case strings.HasPrefix(c.Audio, "alsa:"):
		a.Source, a.Device = agent.AudioALSA, strings.TrimPrefix(c.Audio, "alsa:")
	}
	return a
}
