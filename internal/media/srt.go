package media

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/media/graph"
)

// srtSender sends MPEG-TS over SRT: the same H.264 (as byte-stream, with
// SPS/PPS before every keyframe so a caller can join at any one) and AAC,
// muxed in 7-packet (1316-byte) datagrams into srtsink. srtsink retries
// on its own and says little; auto-reconnect is off, so a failure is an
// error here and the agent's backoff retries, as for RTMP.
type srtSender struct {
	o       agent.SRTOutput
	callers atomic.Int32 // listener: connected callers (srtsink's signals)
}

// srtLiveBytes: past this many bytes sent to a caller's listener, media
// flows (SRT's handshake sends none of the payload counter).
const srtLiveBytes = 16 * 1024

func newSRTSender(o agent.SRTOutput) *srtSender { return &srtSender{o: o} }

// SRTGraph is the sender of an SRT output. The output's fields go into
// typed properties; the URI holds only the validated host and port. A
// listener's URI has no host (srtsink 1.22 accepts no caller when it has
// one): the address to listen on is its localaddress.
func SRTGraph(o agent.SRTOutput) graph.Graph {
	uri := "srt://" + net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	if o.Mode == agent.SRTListener {
		uri = "srt://" + net.JoinHostPort("", strconv.Itoa(o.Port))
	}
	sink := graph.El("srtsink", "sink",
		graph.P("uri", uri),
		graph.P("mode", string(o.Mode)),
		graph.P("latency", int(o.Latency.Milliseconds())),
		graph.P("auto-reconnect", false),
		// A listener blocks until a caller connects; while none is, the gate
		// holds the frames back (see progress.hold), so none go stale.
		graph.P("wait-for-connection", true),
		graph.P("async", false))
	if o.Mode == agent.SRTListener && o.Host != "" {
		sink.Props = append(sink.Props, graph.P("localaddress", o.Host), graph.P("localport", o.Port))
	}
	if o.StreamID != "" {
		sink.Props = append(sink.Props, graph.P("streamid", o.StreamID.Reveal()))
	}
	if o.Passphrase != "" {
		sink.Props = append(sink.Props, graph.P("passphrase", o.Passphrase.Reveal()), graph.P("pbkeylen", "16"))
	}
	return graph.Graph{Chains: []graph.Chain{
		{Elems: []graph.Elem{graph.El("mpegtsmux", "mux", graph.P("alignment", 7)), sink}},
		{Elems: []graph.Elem{
			graph.El("proxysrc", "vsrc"),
			graph.El("h264parse", "vparse", graph.P("config-interval", -1)),
			graph.Caps("vcaps", "video/x-h264,stream-format=byte-stream,alignment=au"),
		}, To: "mux.sink_%d"},
		{Elems: []graph.Elem{graph.El("proxysrc", "asrc")}, To: "mux.sink_%d"},
	}}
}

func (s *srtSender) graph() graph.Graph { return SRTGraph(s.o) }

func (s *srtSender) holds() bool { return s.o.Mode == agent.SRTListener }

func (s *srtSender) started(p *pipeline, g *gate) error {
	if s.o.Mode != agent.SRTListener {
		return nil
	}
	sink := p.els["sink"]
	g.close() // nobody to send to yet
	// Called on srtsink's own thread: a counter and the gate (atomics),
	// nothing more. The gate shuts the moment the last caller leaves, so
	// that little goes stale in the muxer for the next one; it opens again
	// at a keyframe, which poll asks for.
	if _, err := sink.Connect("caller-added", func() {
		if s.callers.Add(1) == 1 {
			g.waitKeyframe()
		}
	}); err != nil {
		return fmt.Errorf("media: srtsink caller-added: %w", err)
	}
	if _, err := sink.Connect("caller-removed", func() {
		if s.callers.Add(-1) <= 0 {
			g.close()
		}
	}); err != nil {
		return fmt.Errorf("media: srtsink caller-removed: %w", err)
	}
	return nil
}

func (s *srtSender) poll(p *pipeline) progress {
	n := statsUint(p.els["sink"], "bytes-sent-total")
	if s.o.Mode == agent.SRTListener {
		callers := int(max(0, s.callers.Load()))
		pr := progress{bytes: n, peers: callers, live: callers > 0, hold: callers == 0}
		if callers == 0 {
			pr.detail = fmt.Sprintf("waiting for a caller on port %d", s.o.Port)
		}
		return pr
	}
	return progress{bytes: n, live: n > srtLiveBytes, stalls: true}
}

func (s *srtSender) end(*pipeline, bool) []agent.Segment { return nil }

// explain: srtsink says "Connection does not exist" whatever the reason (the
// listener rejects a wrong passphrase during the handshake, and libsrt
// tells only the listener's side why), so the caller is told what it can
// be.
func (s *srtSender) explain(err error) error {
	if s.o.Mode != agent.SRTCaller || !strings.Contains(err.Error(), "Connection does not exist") {
		return err
	}
	why := "a wrong host or port, or a listener that is not running"
	if s.o.Passphrase != "" {
		why += ", or a passphrase that does not match the listener's"
	}
	return fmt.Errorf("%w (no SRT connection: %s; SRT does not tell which)", err, why)
}
