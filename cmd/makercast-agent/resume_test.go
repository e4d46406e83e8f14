package main

import (
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// A power cut in the middle of an event (kill -9), or a clean stop: the
// restarted agent goes live again by itself (MAKERCAST_RESUME, on by
// default). A stream switched off stays off after a restart, and
// RESUME=false resumes nothing.
func TestResumeAfterCrash(t *testing.T) {
	r := newRig(t)
	env := r.env(map[string]string{"MAKERCAST_MEDIA_DIR": t.TempDir()})
	a := startAgent(t, env)
	r.online(t)
	r.goLive(t)
	_ = a.cmd.Process.Kill()
	r.rtmp.WaitGone(t, "s3cretKEY-42", 15*time.Second)

	mark := r.w.Len()
	b := startAgent(t, env)
	d := r.rtmp.WaitPublishing(t, "s3cretKEY-42", 20*time.Second)
	t.Logf("live again %s after the restart, with no command", d.Round(time.Millisecond))
	m, _ := r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"state":"live"`), 10*time.Second)
	if !strings.Contains(m.Payload, `"switch":"ON"`) {
		t.Errorf("resumed destination: %s", m.Payload)
	}

	// A clean stop (SIGTERM: an update, a reboot) while live: live again
	// after the restart too.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	r.rtmp.WaitGone(t, "s3cretKEY-42", 15*time.Second)
	b = startAgent(t, env)
	r.rtmp.WaitPublishing(t, "s3cretKEY-42", 20*time.Second)

	// Switched off, then restarted (SIGTERM): it stays off.
	mark = r.w.Len()
	r.w.Publish(r.base+"/camera/test/stream/set", []byte("OFF"), false)
	r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"switch":"OFF"`), 5*time.Second)
	r.rtmp.WaitGone(t, "s3cretKEY-42", 10*time.Second)
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	mark = r.w.Len()
	c := startAgent(t, env)
	r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"switch":"OFF"`), 15*time.Second)
	time.Sleep(3 * time.Second)
	if r.rtmp.Publishing("s3cretKEY-42") {
		t.Fatal("a stream switched off before the restart went live after it")
	}

	// On again, crash, and restart with RESUME=false: nothing resumes.
	r.goLive(t)
	_ = c.cmd.Process.Kill()
	r.rtmp.WaitGone(t, "s3cretKEY-42", 15*time.Second)
	off := map[string]string{}
	for k, v := range env {
		off[k] = v
	}
	off["MAKERCAST_RESUME"] = "false"
	mark = r.w.Len()
	startAgent(t, off)
	r.w.WaitFrom(mark, r.base+"/destination/main/state", testenv.Contains(`"switch":"OFF"`), 15*time.Second)
	time.Sleep(3 * time.Second)
	if r.rtmp.Publishing("s3cretKEY-42") {
		t.Fatal("RESUME=false resumed a stream")
	}
}
