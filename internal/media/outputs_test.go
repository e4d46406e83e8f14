package media

import (
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
)

func prop(t *testing.T, g graph.Graph, elem, name string) string {
	t.Helper()
	e, ok := g.Find(elem)
	if !ok {
		t.Fatalf("no element %s in %s", elem, g)
	}
	for _, p := range e.Props {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

func TestRTMPGraphKeepsTheOutputInTypedProperties(t *testing.T) {
	g := RTMPGraph(agent.RTMPOutput{Scheme: agent.RTMPS, Host: "live-api-s.facebook.com", Port: 443, Application: "rtmp", Key: "FB-1?a=b&c=d"})
	if prop(t, g, "sink", "scheme") != "rtmps" || prop(t, g, "sink", "port") != "443" || prop(t, g, "sink", "stream") != "FB-1?a=b&c=d" {
		t.Errorf("sink %s", g)
	}
	if g.Chains[1].To != "mux.video" || g.Chains[2].To != "mux.audio" {
		t.Errorf("sender not linked to the muxer's pads: %+v", g.Chains)
	}
	if strings.Contains(prop(t, g, "sink", "host"), "/") {
		t.Error("host")
	}
}

func TestSRTGraphKeepsTheOutputInTypedProperties(t *testing.T) {
	o := agent.SRTOutput{Host: "", Port: 9000, Mode: agent.SRTListener, Latency: 800 * time.Millisecond,
		StreamID: "#!::r=live/cam,m=publish", Passphrase: "correct horse battery"}
	g := SRTGraph(o)
	for name, want := range map[string]string{
		"uri": "srt://:9000", "mode": "listener", "latency": "800", "streamid": "#!::r=live/cam,m=publish",
		"passphrase": "correct horse battery", "auto-reconnect": "false",
	} {
		if got := prop(t, g, "sink", name); got != want {
			t.Errorf("srtsink %s = %q, want %q", name, got, want)
		}
	}
	if prop(t, g, "vcaps", "caps") != "video/x-h264,stream-format=byte-stream,alignment=au" {
		t.Errorf("MPEG-TS needs byte-stream H.264: %s", g)
	}
	// The launch form (logs, the benchmark) quotes what holds spaces.
	if !strings.Contains(g.String(), `passphrase="correct horse battery"`) {
		t.Errorf("launch form %s", g)
	}
	local := SRTGraph(agent.SRTOutput{Host: "127.0.0.1", Port: 9000, Mode: agent.SRTListener, Latency: agent.DefaultSRTLatency})
	if prop(t, local, "sink", "uri") != "srt://:9000" || prop(t, local, "sink", "localaddress") != "127.0.0.1" || prop(t, local, "sink", "localport") != "9000" {
		t.Errorf("listener on one address: %s", local)
	}
	caller := SRTGraph(agent.SRTOutput{Host: "::1", Port: 7001, Mode: agent.SRTCaller, Latency: agent.DefaultSRTLatency})
	if prop(t, caller, "sink", "uri") != "srt://[::1]:7001" || prop(t, caller, "sink", "passphrase") != "" {
		t.Errorf("caller %s", caller)
	}
}
