package media

import (
	"time"

	"github.com/go-gst/go-gst/gst"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
)

// rtmpSender sends to an RTMP(S) server: flvmux into rtmp2sink.
type rtmpSender struct{ o agent.RTMPOutput }

// rtmpLiveBytes: the RTMP handshake and connect/publish commands take
// about 3.5 kB; past this many bytes written, media is flowing.
const rtmpLiveBytes = 16 * 1024

// RTMPGraph is the sender of an RTMP(S) output: the proxysrc pair into
// flvmux into rtmp2sink. The output's fields go into typed properties, so
// nothing in them can alter the pipeline.
func RTMPGraph(o agent.RTMPOutput) graph.Graph {
	sink := graph.El("rtmp2sink", "sink",
		graph.P("scheme", string(o.Scheme)), graph.P("host", o.Host), graph.P("port", o.Port),
		graph.P("application", o.Application), graph.P("stream", o.Key.Reveal()), graph.P("async-connect", true), graph.P("timeout", 5))
	if o.Username != "" {
		sink.Props = append(sink.Props, graph.P("username", o.Username), graph.P("password", o.Password.Reveal()), graph.P("authmod", "auto"))
	}
	return graph.Graph{Chains: []graph.Chain{
		{Elems: []graph.Elem{graph.El("flvmux", "mux", graph.P("streamable", true), graph.P("latency", 100_000_000)), sink}},
		{Elems: []graph.Elem{graph.El("proxysrc", "vsrc")}, To: "mux.video"},
		{Elems: []graph.Elem{graph.El("proxysrc", "asrc")}, To: "mux.audio"},
	}}
}

func (s *rtmpSender) graph() graph.Graph { return RTMPGraph(s.o) }

func (s *rtmpSender) holds() bool { return false }

func (s *rtmpSender) started(*pipeline, *gate) error { return nil }

func (s *rtmpSender) explain(err error) error { return err }

func (s *rtmpSender) poll(p *pipeline) progress {
	n := statsUint(p.els["sink"], "out-bytes-total")
	return progress{bytes: n, live: n > rtmpLiveBytes, stalls: true}
}

// end: EOS makes rtmp2sink send FCUnpublish and deleteStream, so the
// platform ends the broadcast at once instead of waiting for a timeout.
func (s *rtmpSender) end(p *pipeline, live bool) []agent.Segment {
	if !live {
		return nil
	}
	p.pipe.SendEvent(gst.NewEOSEvent())
	select {
	case <-p.errc:
	case <-time.After(time.Second):
	}
	return nil
}
