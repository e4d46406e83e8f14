package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/balena/balenatest"
	"github.com/makercast/makercast/internal/testenv"
)

// Under balena (a fake supervisor that follows the documented API: the
// real one cannot run here): Home Assistant gets the release as an update
// entity and restart, reboot and identify buttons; while a stream is on the
// update lock is held, so reboot and restart are refused by the supervisor
// and install by the agent; with the stream off they go through.
func TestFleetUnderBalena(t *testing.T) {
	lockPath := filepath.Join(t.TempDir(), "updates.lock")
	sup := balenatest.NewSupervisor(balenatest.Options{LockPath: lockPath})
	t.Cleanup(sup.Close)
	sup.SetTarget(&balenatest.Target{Commit: "bbbbbbbdeadbeef0123456789abcdef01", UpdateStatus: "done"})
	cfg := sup.Config()
	r := newRig(t)
	disc := testenv.Watch(t, r.broker.URL, "homeassistant/#")
	p := startAgent(t, r.env(map[string]string{
		"BALENA_SUPERVISOR_ADDRESS": cfg.Address, "BALENA_SUPERVISOR_API_KEY": sup.Key(),
		"BALENA_APP_ID": strconv.Itoa(cfg.AppID), "BALENA_SERVICE_NAME": cfg.ServiceName, "BALENA_APP_LOCK_PATH": lockPath,
	}))
	r.online(t)
	for _, e := range []string{"update/makercast_pi1/fleet_update", "button/makercast_pi1/fleet_restart",
		"button/makercast_pi1/fleet_reboot", "button/makercast_pi1/fleet_identify"} {
		disc.Wait("homeassistant/"+e+"/config", testenv.Contains(`"command_topic":"makercast/pi1/fleet/`), 10*time.Second)
	}
	m := r.w.Wait(r.base+"/fleet/update", testenv.Contains(`"latest_version":"bbbbbbbd"`), 10*time.Second)
	if !strings.Contains(m.Payload, `"installed_version":"aaaa`) || !strings.Contains(m.Payload, `"in_progress":false`) {
		t.Errorf("release state %s", m.Payload)
	}
	if _, err := os.Stat(lockPath); err == nil {
		t.Fatal("update lock held with nothing on")
	}

	r.goLive(t)
	waitFor(t, "update lock taken", 5*time.Second, func() bool { _, err := os.Stat(lockPath); return err == nil })
	mark := r.w.Len()
	r.w.Publish(r.base+"/fleet/reboot/set", []byte("PRESS"), false)
	r.w.WaitFrom(mark, r.base+"/response/fleet_reboot", testenv.Contains(`"code":"updates_locked"`), 10*time.Second)
	if n := len(sup.Requested("POST", "/v1/reboot")); n != 1 {
		t.Errorf("reboot reached the supervisor %d times, want once (refused there)", n)
	}
	r.w.Publish(r.base+"/fleet/update/set", []byte("install"), false)
	r.w.WaitFrom(mark, r.base+"/response/fleet_update", testenv.Contains(`"code":"updates_locked"`, `main`), 10*time.Second)
	if n := len(sup.Requested("POST", "/v1/update")); n != 0 {
		t.Errorf("an update was forced while live")
	}
	if !r.rtmp.Publishing("s3cretKEY-42") {
		t.Error("the stream stopped")
	}

	r.w.Publish(r.base+"/camera/test/stream/set", []byte("OFF"), false)
	waitFor(t, "update lock released", 5*time.Second, func() bool { _, err := os.Stat(lockPath); return err != nil })
	mark = r.w.Len()
	r.w.Publish(r.base+"/fleet/update/set", []byte("install"), false)
	r.w.WaitFrom(mark, r.base+"/response/fleet_update", testenv.Contains(`"status":"ok"`), 10*time.Second)
	if reqs := sup.Requested("POST", "/v1/update"); len(reqs) != 1 || reqs[0].Body["force"] != true {
		t.Errorf("update requests %+v, want one forced", reqs)
	}
	r.w.Publish(r.base+"/fleet/restart/set", []byte(`{"transaction":"r1"}`), false)
	r.w.WaitFrom(mark, r.base+"/response/fleet_restart", testenv.Contains(`"status":"ok"`, `"transaction":"r1"`), 10*time.Second)
	if reqs := sup.Requested("POST", "/v2/applications/"+strconv.Itoa(cfg.AppID)+"/restart-service"); len(reqs) != 1 || reqs[0].Body["serviceName"] != cfg.ServiceName {
		t.Errorf("restart requests %+v", reqs)
	}
	// A malformed press is refused and reaches nothing.
	r.w.Publish(r.base+"/fleet/reboot/set", []byte(`{"force":true}`), false)
	r.w.WaitFrom(mark, r.base+"/response/fleet_reboot", testenv.Contains(`"code":"bad_payload"`), 10*time.Second)
	for _, m := range r.w.Messages() {
		if strings.Contains(m.Payload, sup.Key()) {
			t.Errorf("the supervisor key appeared on MQTT: %s", m.Topic)
		}
	}
	if strings.Contains(p.logs.String(), sup.Key()) {
		t.Error("the supervisor key appeared in the log")
	}
}

// waitFor polls cond every 20 ms for up to within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
	}
}

// Outside balena there are no fleet entities, and a press says why.
func TestNoFleetOutsideBalena(t *testing.T) {
	r := newRig(t)
	disc := testenv.Watch(t, r.broker.URL, "homeassistant/#")
	startAgent(t, r.env(nil))
	r.online(t)
	mark := r.w.Len()
	r.w.Publish(r.base+"/fleet/reboot/set", []byte("PRESS"), false)
	r.w.WaitFrom(mark, r.base+"/response/fleet_reboot", testenv.Contains(`"code":"unavailable"`), 10*time.Second)
	disc.Wait("homeassistant/switch/makercast_pi1/test_stream/config", testenv.Contains(`"command_topic"`), 10*time.Second)
	for _, m := range disc.Messages() {
		if strings.Contains(m.Topic, "fleet") {
			t.Errorf("fleet entity outside balena: %s", m.Topic)
		}
	}
}
