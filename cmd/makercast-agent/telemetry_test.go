package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// On this (x86, no Wi-Fi, no Pi firmware) machine the health report has
// what the machine has, and leaves out what it lacks instead of zeros.
func TestHealthOnThisMachine(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(map[string]string{"MAKERCAST_HEALTH_INTERVAL": "1s"}))
	r.online(t)
	m := r.w.Wait(r.base+"/health", testenv.Contains(`"cpu_percent"`), 15*time.Second)
	var h map[string]any
	if err := json.Unmarshal([]byte(m.Payload), &h); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"memory", "uptime_s", "load", "cpu_percent", "disk"} {
		if _, ok := h[k]; !ok {
			t.Errorf("health lacks %s: %s", k, m.Payload)
		}
	}
	for _, k := range []string{"wifi", "throttling"} { // no Wi-Fi, no Pi firmware here
		if _, ok := h[k]; ok {
			t.Errorf("health has %s on a machine without it: %s", k, m.Payload)
		}
	}
	if mem := h["memory"].(map[string]any); mem["total_bytes"].(float64) <= 0 {
		t.Errorf("memory %v", mem)
	}
}

// The bitrate the agent reports for a destination is within 5 % of what the
// RTMP server received over the same time; the camera's frame rates are
// reported.
func TestReportedBitrateMatchesTheServer(t *testing.T) {
	r := newRig(t)
	startAgent(t, r.env(map[string]string{"MAKERCAST_STATS_INTERVAL": "1s", "MAKERCAST_VIDEO_BITRATE": "1500"}))
	r.online(t)
	r.goLive(t)
	time.Sleep(3 * time.Second) // past the encoder's start
	st0, _ := r.rtmp.Stats()
	t0 := time.Now()
	mark := r.w.Len()
	time.Sleep(12 * time.Second)
	st1, _ := r.rtmp.Stats()
	t1 := time.Now()
	server := float64(st1["s3cretKEY-42"].BytesIn-st0["s3cretKEY-42"].BytesIn) * 8 / 1000 / t1.Sub(t0).Seconds()

	var reports []float64
	for _, m := range r.w.Messages()[mark:] {
		if m.Topic != r.base+"/destination/main/state" {
			continue
		}
		var s struct {
			BitrateKbps float64 `json:"bitrate_kbps"`
		}
		json.Unmarshal([]byte(m.Payload), &s)
		if s.BitrateKbps > 0 {
			reports = append(reports, s.BitrateKbps)
		}
	}
	if len(reports) < 5 {
		t.Fatalf("only %d bitrate reports in 12 s", len(reports))
	}
	var sum float64
	for _, x := range reports {
		sum += x
	}
	agent := sum / float64(len(reports))
	t.Logf("server received %.1f kbit/s, agent reported %.1f kbit/s (mean of %d)", server, agent, len(reports))
	if math.Abs(agent/server-1) > 0.05 {
		t.Errorf("reported %.1f kbit/s, server got %.1f kbit/s: off by more than 5 %%", agent, server)
	}
	m := r.w.Wait(r.base+"/camera/test/stats", testenv.Contains(`"encoder_fps"`), 5*time.Second)
	var cs struct {
		CaptureFPS float64 `json:"capture_fps"`
		EncoderFPS float64 `json:"encoder_fps"`
	}
	json.Unmarshal([]byte(m.Payload), &cs)
	last, _ := r.w.Last(r.base + "/camera/test/stats")
	json.Unmarshal([]byte(last), &cs)
	if cs.CaptureFPS < 25 || cs.EncoderFPS < 25 || strings.Contains(last, `"capture_fps":0,`) {
		t.Errorf("camera stats %s, want about 30 fps", last)
	}
}
