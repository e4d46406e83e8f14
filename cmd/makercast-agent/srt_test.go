package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// The SRT tests use ffmpeg as the real SRT peer on loopback: as a listener
// the agent calls, and as a caller pulling from the agent's listener, the
// way OBS's Media Source does (examples/obs). What it got is checked with
// ffprobe and by decoding it.

const srtPassphrase = "correct-horse-battery"

func checkSRTMedia(t *testing.T, p *testenv.SRTPeer, pr testenv.Probe, seconds int) {
	t.Helper()
	v, ok := pr.Video()
	if !ok || v.CodecName != "h264" || v.Width != 640 || v.Height != 360 {
		t.Errorf("video over SRT: %+v (present %v)", v, ok)
	}
	if a, ok := pr.Audio(); !ok || a.CodecName != "aac" {
		t.Errorf("audio over SRT: %+v (present %v)", a, ok)
	}
	// The video starts at a keyframe (the decoder has nothing to complain
	// about), and plays at 30 fps for most of the seconds kept.
	decoded, errs := testenv.DecodedFrames(t, p.Out)
	frames, span := testenv.VideoFrames(t, p.Out)
	if span < float64(seconds)-1 || float64(frames) < 29*span || decoded != frames || len(errs) > 0 {
		t.Errorf("SRT video: %d frames over %.2f s (%d decoded) in a %d s capture, decoder errors %q", frames, span, decoded, seconds, errs)
	}
}

func TestSRTCallerToAListener(t *testing.T) {
	r := newRig(t)
	port := testenv.FreeUDPPort(t)
	a := startAgent(t, r.env(map[string]string{
		"MAKERCAST_DESTINATIONS":          fmt.Sprintf("relay=srt://127.0.0.1:%d?mode=caller&latency=200", port),
		"MAKERCAST_DESTINATION_RELAY_KEY": srtPassphrase,
	}))
	r.online(t)
	peer := testenv.StartSRTListener(t, port, srtPassphrase, 4)
	mark := r.w.Len()
	start := time.Now()
	r.w.Publish(r.base+"/destination/relay/set", []byte("ON"), false)
	r.w.WaitFrom(mark, r.base+"/destination/relay/state", testenv.Contains(`"state":"live"`, `"url":"srt://127.0.0.1:`, `(encrypted)`), 10*time.Second)
	t.Logf("live over SRT %s after ON", time.Since(start).Round(time.Millisecond))
	checkSRTMedia(t, peer, peer.Wait(t, 20*time.Second), 4)
	// The listener went away after its 4 s: the destination says so and
	// retries by itself; a new listener gets the stream again.
	r.w.WaitFrom(mark, r.base+"/destination/relay/state", testenv.Contains(`"state":"retrying"`), 15*time.Second)
	again := testenv.StartSRTListener(t, port, srtPassphrase, 2)
	again.WaitBytes(t, 20*time.Second)
	checkSRTMedia(t, again, again.Wait(t, 15*time.Second), 2)
	r.w.Publish(r.base+"/destination/relay/set", []byte("OFF"), false)
	r.w.Wait(r.base+"/destination/relay/state", testenv.Contains(`"switch":"OFF"`, `"state":"idle"`), 5*time.Second)
	a.Stop()
	for _, m := range r.w.Messages() {
		if strings.Contains(m.Payload, srtPassphrase) {
			t.Errorf("the passphrase is on MQTT: %s %s", m.Topic, m.Payload)
		}
	}
	if strings.Contains(a.logs.String(), srtPassphrase) {
		t.Error("the passphrase is in the logs")
	}
}

// A listener, as OBS pulls it: waiting for a caller is not live; a caller
// gets the stream from a keyframe; when it leaves the destination waits
// again (not an error), and the next caller is served too.
func TestSRTListenerServesCallers(t *testing.T) {
	r := newRig(t)
	port := testenv.FreeUDPPort(t)
	startAgent(t, r.env(map[string]string{
		"MAKERCAST_DESTINATIONS": fmt.Sprintf("obs=srt://127.0.0.1:%d?mode=listener", port),
	}))
	r.online(t)
	r.w.Publish(r.base+"/destination/obs/set", []byte("ON"), false)
	r.w.Wait(r.base+"/destination/obs/state", testenv.Contains(`"state":"connecting"`, fmt.Sprintf(`"detail":"waiting for a caller on port %d"`, port)), 10*time.Second)
	for i := 0; i < 2; i++ {
		mark := r.w.Len()
		caller := testenv.StartSRTCaller(t, port, "", 3)
		r.w.WaitFrom(mark, r.base+"/destination/obs/state", testenv.Contains(`"state":"live"`, `"peers":1`), 10*time.Second)
		checkSRTMedia(t, caller, caller.Wait(t, 20*time.Second), 3)
		m, _ := r.w.WaitFrom(mark, r.base+"/destination/obs/state", testenv.Contains(`"state":"connecting"`, `waiting for a caller`), 15*time.Second)
		if st := destState(t, m.Payload); st["reconnects"].(float64) != 0 {
			t.Errorf("a caller leaving counted as a reconnect: %s", m.Payload)
		}
	}
}

// Bad SRT settings on add_destination are answered with an error naming
// the problem, never the passphrase; a caller with the wrong passphrase is
// told what SRT cannot say itself.
func TestSRTBadSettingsAndWrongPassphrase(t *testing.T) {
	r := newRig(t)
	port := testenv.FreeUDPPort(t)
	a := startAgent(t, r.env(nil))
	r.online(t)
	for _, c := range []struct{ url, key, want string }{
		{"srt://127.0.0.1:9000?mode=rendezvous", "", "mode"},
		{"srt://127.0.0.1:9000?bandwidth=5", "", "unknown query key"},
		{"srt://127.0.0.1:9000", "tooshort", "SRT takes 10..79"},
		{"srt://127.0.0.1:0", "", "port is out of range"},
	} {
		mark := r.w.Len()
		r.w.Publish(r.base+"/request/add_destination", []byte(fmt.Sprintf(`{"name":"bad","url":%q,"key":%q}`, c.url, c.key)), false)
		m, _ := r.w.WaitFrom(mark, r.base+"/response/add_destination", testenv.Contains(`"status":"error"`, `"code":"bad_value"`), 5*time.Second)
		if !strings.Contains(m.Payload, c.want) || (c.key != "" && strings.Contains(m.Payload, c.key)) {
			t.Errorf("%s: %s, want an error about %q without the key", c.url, m.Payload, c.want)
		}
	}
	url := fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port)
	r.w.Publish(r.base+"/request/add_destination", []byte(fmt.Sprintf(`{"name":"relay","url":%q,"key":"wrong-passphrase-1"}`, url)), false)
	r.w.Wait(r.base+"/response/add_destination", testenv.Contains(`"status":"ok"`), 5*time.Second)
	peer := testenv.StartSRTListener(t, port, srtPassphrase, 2)
	r.w.Publish(r.base+"/destination/relay/set", []byte("ON"), false)
	m := r.w.Wait(r.base+"/destination/relay/state", testenv.Contains(`"state":"retrying"`, `passphrase`), 15*time.Second)
	t.Logf("wrong passphrase: %s", destState(t, m.Payload)["last_error"])
	if done, _ := peer.Exited(); done {
		t.Fatalf("the listener got something from a caller with the wrong passphrase: %s", peer.Logs())
	}
	a.Stop()
	if strings.Contains(a.logs.String(), "wrong-passphrase-1") {
		t.Error("the passphrase is in the logs")
	}
}
