package agent

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/makercast/makercast/internal/secret"
)

// Output is one consumer of a camera's encoded stream (the one H.264 and
// AAC encoding, never a second encoder). The kinds are a closed set, one
// type each: RTMPOutput, SRTOutput and RecordOutput (later: a pre-roll
// buffer, a program mix). A fourth kind is a new type here with its case in
// ParseDestination (when it has a URL) and one adapter file in
// internal/media that builds its sender.
type Output interface {
	// Kind names the kind in state and logs: rtmp, rtmps, srt, recording.
	Kind() string
	// Redacted is the output in words with every secret masked: safe for
	// logs, errors and MQTT state.
	Redacted() string
	// Secrets are the values that must never appear in a message; the
	// adapter removes them from GStreamer's texts.
	Secrets() []string
	// tcpEndpoint is the server a supervisor probes while the output
	// fails; ok is false for kinds without one (SRT is UDP, a recording a
	// file). It also closes the set of kinds to this package.
	tcpEndpoint() (host string, port int, ok bool)
}

// Scheme is an RTMP transport.
type Scheme string

const (
	RTMP  Scheme = "rtmp"
	RTMPS Scheme = "rtmps"
)

// RTMPOutput is an RTMP(S) server: YouTube, Twitch, Facebook, Restream,
// nginx-rtmp. Key and Password are secrets.
type RTMPOutput struct {
	Scheme      Scheme
	Host        string
	Port        int
	Application string
	Key         secret.Secret
	Username    string
	Password    secret.Secret
}

func (o RTMPOutput) Kind() string { return string(o.Scheme) }

func (o RTMPOutput) Redacted() string {
	return fmt.Sprintf("%s://%s/%s/****", o.Scheme, net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), o.Application)
}

func (o RTMPOutput) Secrets() []string { return nonEmpty(o.Key.Reveal(), o.Password.Reveal()) }

func (o RTMPOutput) tcpEndpoint() (string, int, bool) { return o.Host, o.Port, true }

// SRTMode is who opens an SRT connection.
type SRTMode string

const (
	// SRTCaller connects to a listener (an SRT server, a relay, belabox's
	// receiver).
	SRTCaller SRTMode = "caller"
	// SRTListener waits for callers: OBS's Media Source with
	// srt://pi:port?mode=caller pulls the camera.
	SRTListener SRTMode = "listener"
)

// SRTOutput is an SRT peer, MPEG-TS over SRT. Passphrase (10..79
// characters, AES when set) and StreamID (some services put a key in it)
// are secrets.
type SRTOutput struct {
	// Host is the listener to call, or the address to listen on ("" for
	// every address).
	Host       string
	Port       int
	Mode       SRTMode
	Latency    time.Duration
	StreamID   secret.Secret
	Passphrase secret.Secret
}

// DefaultSRTLatency is SRT's receive buffer when the URL gives none: enough
// for Wi-Fi retransmissions (SRT's own 120 ms is meant for wired links).
const DefaultSRTLatency = 500 * time.Millisecond

func (o SRTOutput) Kind() string { return "srt" }

func (o SRTOutput) Redacted() string {
	s := fmt.Sprintf("srt://%s?mode=%s&latency=%d", net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), o.Mode, o.Latency.Milliseconds())
	if o.StreamID != "" {
		s += "&streamid=****"
	}
	if o.Passphrase != "" {
		s += " (encrypted)"
	}
	return s
}

func (o SRTOutput) Secrets() []string { return nonEmpty(o.StreamID.Reveal(), o.Passphrase.Reveal()) }

func (o SRTOutput) tcpEndpoint() (string, int, bool) { return "", 0, false }

// RecordOutput writes the camera's stream into fragmented MP4 segments in
// Dir: a new file every Segment (cut at the first keyframe after it), a
// fragment every Fragment, so a power cut loses at most the last fragment.
type RecordOutput struct {
	Dir      string
	Segment  time.Duration
	Fragment time.Duration
}

func (o RecordOutput) Kind() string { return "recording" }

func (o RecordOutput) Redacted() string {
	return fmt.Sprintf("%s (segments of %s)", o.Dir, o.Segment)
}

func (o RecordOutput) Secrets() []string { return nil }

func (o RecordOutput) tcpEndpoint() (string, int, bool) { return "", 0, false }

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

var (
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9.-]{1,253}$`)
	appPattern  = regexp.MustCompile(`^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$`)
	userPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	// Stream keys seen in the wild: YouTube xxxx-xxxx-..., Twitch live_1_ab,
	// Facebook FB-1-0-Ab?s_bl=1&s_sc=..., Restream re_1_ab. No spaces,
	// quotes, '!' or other characters with meaning in a pipeline description.
	keyPattern = regexp.MustCompile(`^[A-Za-z0-9._~?&=%+:@-]{1,256}$`)
	// SRT stream ids: plain names or the access-control syntax
	// #!::r=live/cam,m=publish.
	streamIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~:=,#!/@+-]{1,512}$`)
	// plainWord is what an error may quote from a URL's query: a word that
	// cannot be a pasted key (no digits, no mixed case, short).
	plainWord = regexp.MustCompile(`^[a-z_]{1,16}$`)
)

// quoteWord shows a query key or value in an error only when it is a plain
// word, so that a secret pasted in the wrong place is never echoed.
func quoteWord(s string) string {
	if plainWord.MatchString(s) {
		return fmt.Sprintf("%q", s)
	}
	return "(not shown)"
}

// ParseDestination checks a destination's URL and key and gives the output
// it names, by scheme: rtmp:// and rtmps:// (key: the stream key; with none,
// the URL's last path segment is the key, as Twitch and YouTube show it),
// srt:// (key: the passphrase, optional). Errors name the destination and
// never contain the key, a password or a stream id.
func ParseDestination(name, camera, rawURL string, key secret.Secret) (Destination, error) {
	if !ValidName(name) {
		return Destination{}, fmt.Errorf("agent: destination name %.40q must be 1-32 of a-z, 0-9, - and _", name)
	}
	fail := func(format string, args ...any) (Destination, error) {
		return Destination{}, fmt.Errorf("agent: destination %s: "+format, append([]any{name}, args...)...)
	}
	if len(rawURL) > 1024 {
		return fail("URL is longer than 1024 bytes")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fail("URL does not parse")
	}
	var out Output
	switch u.Scheme {
	case "rtmp", "rtmps":
		out, err = parseRTMP(u, key)
	case "srt":
		out, err = parseSRT(u, key)
	default:
		return fail("scheme %.20q is not supported (rtmp, rtmps or srt)", u.Scheme)
	}
	if err != nil {
		return fail("%s", err.Error())
	}
	return Destination{Name: name, Camera: camera, Output: out}, nil
}

// port reads a URL's port; def 0 means it must be given.
func port(u *url.URL, def int) (int, error) {
	ps := u.Port()
	if ps == "" {
		if def == 0 {
			return 0, fmt.Errorf("the URL needs a port (srt://host:port)")
		}
		return def, nil
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port is out of range")
	}
	return p, nil
}

func validHost(h string) bool { return hostPattern.MatchString(h) || net.ParseIP(h) != nil }

func parseRTMP(u *url.URL, key secret.Secret) (RTMPOutput, error) {
	o := RTMPOutput{Scheme: Scheme(u.Scheme)}
	def := 1935
	if o.Scheme == RTMPS {
		def = 443
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return o, fmt.Errorf("query parameters belong in the stream key, not the URL")
	}
	o.Host = u.Hostname()
	if !validHost(o.Host) {
		return o, fmt.Errorf("host is not a host name or IP address")
	}
	p, err := port(u, def)
	if err != nil {
		return o, err
	}
	o.Port = p
	if u.User != nil {
		o.Username = u.User.Username()
		pw, _ := u.User.Password()
		o.Password = secret.Secret(pw)
		if !userPattern.MatchString(o.Username) {
			return o, fmt.Errorf("user name has unexpected characters")
		}
	}
	path := strings.Trim(u.Path, "/")
	if key == "" {
		i := strings.LastIndexByte(path, '/')
		if i < 0 {
			return o, fmt.Errorf("no stream key: give it separately or end the URL with /<key>")
		}
		path, key = path[:i], secret.Secret(path[i+1:])
	}
	o.Application, o.Key = path, key
	if !appPattern.MatchString(o.Application) {
		return o, fmt.Errorf("application path has unexpected characters (allowed: letters, digits, . _ ~ - /)")
	}
	if !keyPattern.MatchString(key.Reveal()) {
		return o, fmt.Errorf("stream key is too long or has characters that are not allowed (spaces, quotes, !, ',', ';' and the like)")
	}
	return o, nil
}

// parseSRT reads srt://host:port?mode=caller|listener&latency=<ms>&streamid=<id>;
// key is the passphrase (none: unencrypted).
func parseSRT(u *url.URL, key secret.Secret) (SRTOutput, error) {
	o := SRTOutput{Mode: SRTCaller, Latency: DefaultSRTLatency, Passphrase: key}
	if u.Fragment != "" || u.Opaque != "" || strings.Trim(u.Path, "/") != "" || u.User != nil {
		return o, fmt.Errorf("an SRT URL is srt://host:port?mode=caller|listener&latency=<ms>&streamid=<id>, without a path or user")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return o, fmt.Errorf("the URL's query does not parse")
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return o, fmt.Errorf("query key %s is given %d times", quoteWord(k), len(vs))
		}
		v := vs[0]
		switch k {
		case "mode":
			switch SRTMode(v) {
			case SRTCaller, SRTListener:
				o.Mode = SRTMode(v)
			default:
				return o, fmt.Errorf("mode %s must be caller or listener", quoteWord(v))
			}
		case "latency":
			ms, err := strconv.Atoi(v)
			if err != nil || ms < 20 || ms > 10000 {
				return o, fmt.Errorf("latency must be whole milliseconds within 20..10000")
			}
			o.Latency = time.Duration(ms) * time.Millisecond
		case "streamid":
			if !streamIDPattern.MatchString(v) {
				return o, fmt.Errorf("streamid is longer than 512 characters or has characters that are not allowed")
			}
			o.StreamID = secret.Secret(v)
		case "passphrase":
			return o, fmt.Errorf("the passphrase goes in the destination's key (MAKERCAST_DESTINATION_<NAME>_KEY or add_destination's key), not the URL")
		default:
			return o, fmt.Errorf("unknown query key %s (mode, latency, streamid)", quoteWord(k))
		}
	}
	o.Host = u.Hostname()
	switch {
	case o.Host == "" && o.Mode == SRTCaller:
		return o, fmt.Errorf("a caller needs the listener's host")
	case o.Host != "" && !validHost(o.Host):
		return o, fmt.Errorf("host is not a host name or IP address")
	}
	p, err := port(u, 0)
	if err != nil {
		return o, err
	}
	o.Port = p
	if pw := key.Reveal(); pw != "" {
		if n := len([]rune(pw)); n < 10 || n > 79 {
			return o, fmt.Errorf("the SRT passphrase has %d characters; SRT takes 10..79", n)
		}
		for _, r := range pw {
			if r < 0x20 || r > 0x7e {
				return o, fmt.Errorf("the SRT passphrase must be printable ASCII")
			}
		}
	}
	return o, nil
}
