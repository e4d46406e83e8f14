package agent

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/secret"
)

func TestParseDestination(t *testing.T) {
	ok := []struct {
		url, key string
		want     RTMPOutput
	}{
		{"rtmp://a.rtmp.youtube.com/live2", "abcd-efgh-ijkl-mnop-qrst",
			RTMPOutput{Scheme: RTMP, Host: "a.rtmp.youtube.com", Port: 1935, Application: "live2", Key: "abcd-efgh-ijkl-mnop-qrst"}},
		{"rtmps://live-api-s.facebook.com:443/rtmp/", "FB-123-0-Ab?s_bl=1&s_psm=1&a=Abx",
			RTMPOutput{Scheme: RTMPS, Host: "live-api-s.facebook.com", Port: 443, Application: "rtmp", Key: "FB-123-0-Ab?s_bl=1&s_psm=1&a=Abx"}},
		{"rtmp://live.twitch.tv/app/live_123_abc", "",
			RTMPOutput{Scheme: RTMP, Host: "live.twitch.tv", Port: 1935, Application: "app", Key: "live_123_abc"}},
		{"rtmps://live.restream.io/live", "re_1_ab",
			RTMPOutput{Scheme: RTMPS, Host: "live.restream.io", Port: 443, Application: "live", Key: "re_1_ab"}},
		{"rtmp://bob:pw@127.0.0.1:1936/app/inst", "k",
			RTMPOutput{Scheme: RTMP, Host: "127.0.0.1", Port: 1936, Application: "app/inst", Key: "k", Username: "bob", Password: "pw"}},
	}
	for _, c := range ok {
		d, err := ParseDestination("d", "cam", c.url, secret.Secret(c.key))
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if d.Output != c.want {
			t.Errorf("%s: got %+v, want %+v", c.url, d.Output, c.want)
		}
		if strings.Contains(d.Redacted(), c.want.Key.Reveal()) {
			t.Errorf("Redacted %q shows the key", d.Redacted())
		}
	}
	bad := []struct{ name, url, key, why string }{
		{"d", "http://example.com/live", "k", "scheme"},
		{"d", "udp://example.com:9000", "k", "scheme"},
		{"d", "rtmp://example.com/live?x=1", "k", "query"},
		{"d", "rtmp://exa mple.com/live", "k", "does not parse"},
		{"d", "rtmp://example.com:0/live", "k", "port"},
		{"d", "rtmp://example.com/li!ve", "k", "application"},
		{"d", "rtmp://example.com/live", "k k", "stream key"},
		{"d", "rtmp://example.com/live", `k"`, "stream key"},
		{"d", "rtmp://example.com/live", "k;rm", "stream key"},
		{"d", "rtmp://example.com", "", "no stream key"},
		{"D!", "rtmp://example.com/live", "k", "name"},
		{"d", "rtmp://" + strings.Repeat("a", 1100), "k", "longer"},
	}
	for _, c := range bad {
		_, err := ParseDestination(c.name, "cam", c.url, secret.Secret(c.key))
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s %q: err = %v, want one about %q", c.url, c.key, err, c.why)
		}
		if err != nil && len(c.key) > 2 && strings.Contains(err.Error(), c.key) {
			t.Errorf("error %q shows the key", err)
		}
	}
}

func TestParseSRTDestination(t *testing.T) {
	ok := []struct {
		url, key string
		want     SRTOutput
	}{
		{"srt://relay.example.org:9000", "",
			SRTOutput{Host: "relay.example.org", Port: 9000, Mode: SRTCaller, Latency: DefaultSRTLatency}},
		{"srt://:9000?mode=listener&latency=120", "correct horse",
			SRTOutput{Port: 9000, Mode: SRTListener, Latency: 120 * time.Millisecond, Passphrase: "correct horse"}},
		{"srt://10.0.0.5:7001?mode=caller&streamid=%23%21%3A%3Ar%3Dlive%2Fcam%2Cm%3Dpublish", "",
			SRTOutput{Host: "10.0.0.5", Port: 7001, Mode: SRTCaller, Latency: DefaultSRTLatency, StreamID: "#!::r=live/cam,m=publish"}},
		{"srt://[::1]:7001?latency=2000", strings.Repeat("p", 79),
			SRTOutput{Host: "::1", Port: 7001, Mode: SRTCaller, Latency: 2 * time.Second, Passphrase: secret.Secret(strings.Repeat("p", 79))}},
	}
	for _, c := range ok {
		d, err := ParseDestination("obs", "cam", c.url, secret.Secret(c.key))
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if d.Output != c.want {
			t.Errorf("%s: got %+v, want %+v", c.url, d.Output, c.want)
		}
		for _, s := range d.Output.Secrets() {
			if strings.Contains(d.Redacted(), s) {
				t.Errorf("Redacted %q shows a secret", d.Redacted())
			}
		}
	}
	bad := []struct{ url, key, why string }{
		{"srt://h:9000?mode=rendezvous", "", "mode"},
		{"srt://h:9000?mode=caller&mode=listener", "", "given 2 times"},
		{"srt://h:9000?pbkeylen=16", "", "unknown query key"},
		{"srt://h:9000?passphrase=inthequery1", "", "goes in the destination's key"},
		{"srt://h:9000?latency=5", "", "latency"},
		{"srt://h:9000?latency=fast", "", "latency"},
		{"srt://h:9000?streamid=a%20b", "", "streamid"},
		{"srt://h", "", "needs a port"},
		{"srt://h:70000", "", "port is out of range"},
		{"srt://:9000", "", "needs the listener's host"},
		{"srt://h:9000/path", "", "without a path"},
		{"srt://h:9000", "short", "5 characters; SRT takes 10..79"},
		{"srt://h:9000", strings.Repeat("x", 80), "80 characters"},
		{"srt://h:9000", "tab\there!!", "printable ASCII"},
	}
	for _, c := range bad {
		_, err := ParseDestination("obs", "cam", c.url, secret.Secret(c.key))
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s %q: err = %v, want one about %q", c.url, c.key, err, c.why)
		}
		if err != nil && len(c.key) > 4 && strings.Contains(err.Error(), c.key) {
			t.Errorf("error %q shows the passphrase", err)
		}
	}
}

func TestBackoffSteps(t *testing.T) {
	b := NewBackoff()
	b.rand = func() float64 { return 0.5 } // no jitter
	var got []string
	for i := 0; i < 8; i++ {
		got = append(got, b.Next().String())
	}
	if want := "1s 1s 1s 2s 5s 10s 10s 10s"; strings.Join(got, " ") != want {
		t.Fatalf("steps %v, want %s", got, want)
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Fatalf("after Reset: %s", d)
	}
	b.rand = func() float64 { return 0 }
	if d := b.Next(); d != 800*time.Millisecond {
		t.Fatalf("jitter low end: %s", d)
	}
}

// waitRetry with a real listener: it returns as soon as a server that was
// down accepts again, and waits the whole delay when it never went down.
func TestWaitRetryCutShortWhenServerReturns(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx := context.Background()
	go func() {
		time.Sleep(300 * time.Millisecond)
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			time.Sleep(2 * time.Second)
			l2.Close()
		}
	}()
	start := time.Now()
	if !waitRetry(ctx, 10*time.Second, dialReachable, "127.0.0.1", port, 50*time.Millisecond) {
		t.Fatal("waitRetry returned false")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %s; the server was back after 0.3 s", el)
	}

	l3, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	start = time.Now()
	waitRetry(ctx, 400*time.Millisecond, dialReachable, "127.0.0.1", l3.Addr().(*net.TCPAddr).Port, 50*time.Millisecond)
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("returned after %s although the server never went down", el)
	}
}
