package agent

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/makercast/makercast/internal/media/graph"
	"github.com/makercast/makercast/internal/secret"
)

// Camera is one camera the agent drives.
type Camera struct {
	Name string
	Spec graph.CaptureSpec
	// AutoMic takes the camera's microphone from the machine's devices
	// (MAKERCAST_AUDIO=auto): its own (a webcam's) or a free one, else a
	// silent track. Spec.Audio then only gives the bitrate.
	AutoMic bool
}

// Destination is one RTMP(S) endpoint fed by a camera.
type Destination struct {
	Name   string
	Camera string
	Target graph.Target
	// Runtime is true for destinations added over MQTT (not persisted).
	Runtime bool
}

// Display is the destination's URL with the key masked: safe for logs and
// MQTT state.
func (d Destination) Display() string {
	t := d.Target
	return fmt.Sprintf("%s://%s/%s/****", t.Scheme, net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), t.Application)
}

var (
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9.-]{1,253}$`)
	appPattern  = regexp.MustCompile(`^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$`)
	userPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	// Stream keys seen in the wild: YouTube xxxx-xxxx-..., Twitch live_1_ab,
	// Facebook FB-1-0-Ab?s_bl=1&s_sc=..., Restream re_1_ab. No spaces,
	// quotes, '!' or other characters with meaning in a pipeline description.
	keyPattern = regexp.MustCompile(`^[A-Za-z0-9._~?&=%+:@-]{1,256}$`)
)

// ValidName reports whether s can name a camera or destination: it is used
// in MQTT topics and Home Assistant ids.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// ParseDestination checks an rtmp:// or rtmps:// URL and a stream key. With
// an empty key, the URL's last path segment is the key (Twitch and YouTube
// show the URL that way too). Errors never contain the key or a password.
func ParseDestination(name, camera, rawURL string, key secret.Secret) (Destination, error) {
	if !ValidName(name) {
		return Destination{}, fmt.Errorf("agent: destination name %.40q must be 1-32 of a-z, 0-9, - and _", name)
	}
	if len(rawURL) > 1024 {
		return Destination{}, fmt.Errorf("agent: destination %s: URL is longer than 1024 bytes", name)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return Destination{}, fmt.Errorf("agent: destination %s: URL does not parse", name)
	}
	t := graph.Target{Scheme: graph.Scheme(u.Scheme)}
	switch t.Scheme {
	case graph.RTMP:
		t.Port = 1935
	case graph.RTMPS:
		t.Port = 443
	default:
		return Destination{}, fmt.Errorf("agent: destination %s: scheme %.20q is not supported (rtmp or rtmps)", name, u.Scheme)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Destination{}, fmt.Errorf("agent: destination %s: query parameters belong in the stream key, not the URL", name)
	}
	t.Host = u.Hostname()
	if !hostPattern.MatchString(t.Host) && net.ParseIP(t.Host) == nil {
		return Destination{}, fmt.Errorf("agent: destination %s: host is not a host name or IP address", name)
	}
	if ps := u.Port(); ps != "" {
		p, err := strconv.Atoi(ps)
		if err != nil || p < 1 || p > 65535 {
			return Destination{}, fmt.Errorf("agent: destination %s: port is out of range", name)
		}
		t.Port = p
	}
	if u.User != nil {
		t.Username = u.User.Username()
		pw, _ := u.User.Password()
		t.Password = secret.Secret(pw)
		if !userPattern.MatchString(t.Username) {
			return Destination{}, fmt.Errorf("agent: destination %s: user name has unexpected characters", name)
		}
	}
	path := strings.Trim(u.Path, "/")
	if key == "" {
		i := strings.LastIndexByte(path, '/')
		if i < 0 {
			return Destination{}, fmt.Errorf("agent: destination %s: no stream key: give it separately or end the URL with /<key>", name)
		}
		path, key = path[:i], secret.Secret(path[i+1:])
	}
	t.Application, t.Stream = path, key
	if !appPattern.MatchString(t.Application) {
		return Destination{}, fmt.Errorf("agent: destination %s: application path has unexpected characters (allowed: letters, digits, . _ ~ - /)", name)
	}
	if !keyPattern.MatchString(key.Reveal()) {
		return Destination{}, fmt.Errorf("agent: destination %s: stream key is too long or has characters that are not allowed (spaces, quotes, !, ',', ';' and the like)", name)
	}
	return Destination{Name: name, Camera: camera, Target: t}, nil
}
