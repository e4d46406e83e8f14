package agent

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/media/graph"
	"github.com/makercast/makercast/internal/secret"
)

func TestParseDestination(t *testing.T) {
	ok := []struct {
		url, key string
		want     graph.Target
	}{
		{"rtmp://a.rtmp.youtube.com/live2", "abcd-efgh-ijkl-mnop-qrst",
			graph.Target{Scheme: graph.RTMP, Host: "a.rtmp.youtube.com", Port: 1935, Application: "live2", Stream: "abcd-efgh-ijkl-mnop-qrst"}},
		{"rtmps://live-api-s.facebook.com:443/rtmp/", "FB-123-0-Ab?s_bl=1&s_psm=1&a=Abx",
			graph.Target{Scheme: graph.RTMPS, Host: "live-api-s.facebook.com", Port: 443, Application: "rtmp", Stream: "FB-123-0-Ab?s_bl=1&s_psm=1&a=Abx"}},
		{"rtmp://live.twitch.tv/app/live_123_abc", "",
			graph.Target{Scheme: graph.RTMP, Host: "live.twitch.tv", Port: 1935, Application: "app", Stream: "live_123_abc"}},
		{"rtmps://live.restream.io/live", "re_1_ab",
			graph.Target{Scheme: graph.RTMPS, Host: "live.restream.io", Port: 443, Application: "live", Stream: "re_1_ab"}},
		{"rtmp://bob:pw@127.0.0.1:1936/app/inst", "k",
			graph.Target{Scheme: graph.RTMP, Host: "127.0.0.1", Port: 1936, Application: "app/inst", Stream: "k", Username: "bob", Password: "pw"}},
	}
	for _, c := range ok {
		d, err := ParseDestination("d", "cam", c.url, secret.Secret(c.key))
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if d.Target != c.want {
			t.Errorf("%s: got %+v, want %+v", c.url, d.Target, c.want)
		}
		if strings.Contains(d.Display(), d.Target.Stream.Reveal()) {
			t.Errorf("Display %q shows the key", d.Display())
		}
	}
	bad := []struct{ name, url, key, why string }{
		{"d", "http://example.com/live", "k", "scheme"},
		{"d", "srt://example.com:9000", "k", "scheme"},
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
