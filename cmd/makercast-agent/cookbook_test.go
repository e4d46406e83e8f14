package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// TestCookbook runs every command of examples/mosquitto/cookbook.md, as
// printed, against a real broker and agent, and checks each one's effect.
// The list below must match the cookbook line for line: editing one means
// editing the other.
func TestCookbook(t *testing.T) {
	b, err := os.ReadFile("../../examples/mosquitto/cookbook.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```")
	var lines []string
	for _, m := range block.FindAllStringSubmatch(string(b), -1) {
		for _, l := range strings.Split(strings.TrimSpace(m[1]), "\n") {
			lines = append(lines, l)
		}
	}

	r := newRig(t)
	startAgent(t, r.env(map[string]string{"MAKERCAST_STREAM_KEY": "cookbook"}))
	r.online(t)
	var bg []*exec.Cmd
	bgOut := map[*exec.Cmd]*syncBuffer{}
	// run executes one cookbook line with the broker's real address and
	// returns its output (background lines return at once).
	run := func(line string) string {
		t.Helper()
		l := strings.ReplaceAll(line, "-h localhost", fmt.Sprintf("-h 127.0.0.1 -p %d", r.broker.Port))
		l = strings.ReplaceAll(l, "rtmp://localhost/live", r.rtmp.URL())
		if strings.HasSuffix(l, "&") {
			cmd := exec.Command("sh", "-c", strings.TrimSuffix(l, "&"))
			out := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			bg = append(bg, cmd)
			time.Sleep(300 * time.Millisecond) // subscribed before the request goes out
			bgOut[cmd] = out
			return ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "sh", "-c", l).CombinedOutput()
		// mosquitto_sub -W exits 27 when its time is up: fine for "-W 2".
		if err != nil && !(strings.Contains(l, "-W 2") && strings.Contains(err.Error(), "27")) {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		return string(out)
	}
	lastBg := func() string {
		t.Helper()
		cmd := bg[len(bg)-1]
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("background mosquitto_sub got no answer")
		}
		return bgOut[cmd].String()
	}

	type step struct {
		cmd   string
		check func(out string)
	}
	steps := []step{
		{`mosquitto_sub -h localhost -t makercast/pi1/availability -C 1`, func(out string) {
			if strings.TrimSpace(out) != "online" {
				t.Errorf("availability: %q", out)
			}
		}},
		{`mosquitto_sub -h localhost -t 'makercast/pi1/#' -v -W 2`, func(out string) {
			if !strings.Contains(out, "makercast/pi1/destination/main/state {") {
				t.Errorf("no destination state in %q", out)
			}
		}},
		{`mosquitto_pub -h localhost -t makercast/pi1/camera/test/stream/set -m ON`, nil},
		{`mosquitto_sub -h localhost -t makercast/pi1/destination/main/state -C 1 -W 10 -R`, func(out string) {
			r.rtmp.WaitPublishing(t, "cookbook", 10*time.Second)
		}},
		{`mosquitto_pub -h localhost -t makercast/pi1/camera/test/stream/set -m OFF`, func(string) {
			r.rtmp.WaitGone(t, "cookbook", 5*time.Second)
		}},
		{`mosquitto_pub -h localhost -t makercast/pi1/destination/main/set -m ON`, func(string) {
			r.rtmp.WaitPublishing(t, "cookbook", 10*time.Second)
		}},
		{`mosquitto_pub -h localhost -t makercast/pi1/destination/main/set -m '{"state":"OFF"}'`, func(string) {
			r.rtmp.WaitGone(t, "cookbook", 5*time.Second)
		}},
		{`mosquitto_sub -h localhost -t makercast/pi1/response/status -C 1 -W 5 &`, nil},
		{`mosquitto_pub -h localhost -t makercast/pi1/request/status -m '{"transaction":"t-1"}'`, func(string) {
			if out := lastBg(); !strings.Contains(out, `"status":"ok"`) || !strings.Contains(out, `"transaction":"t-1"`) {
				t.Errorf("status answer %q", out)
			}
		}},
		{`mosquitto_sub -h localhost -t makercast/pi1/response/destination -C 1 -W 5 &`, nil},
		{`mosquitto_pub -h localhost -t makercast/pi1/request/destination -m '{"destination":"nope","state":"ON","transaction":"t-2"}'`, func(string) {
			if out := lastBg(); !strings.Contains(out, `"code":"unknown_destination"`) || !strings.Contains(out, `"transaction":"t-2"`) {
				t.Errorf("error answer %q", out)
			}
		}},
		{`mosquitto_pub -h localhost -t makercast/pi1/request/add_destination -m '{"name":"event","url":"rtmp://localhost/live","key":"event-key","transaction":"t-3"}'`, func(string) {
			r.w.Wait(r.base+"/response/add_destination", testenv.Contains(`"status":"ok"`, `"transaction":"t-3"`), 5*time.Second)
			r.w.Wait(r.base+"/destination/event/state", testenv.Contains(`"switch":"OFF"`), 5*time.Second)
		}},
		{`mosquitto_pub -h localhost -t makercast/pi1/request/remove_destination -m '{"name":"event"}'`, func(string) {
			r.w.Wait(r.base+"/response/remove_destination", testenv.Contains(`"status":"ok"`), 5*time.Second)
		}},
	}
	if len(lines) != len(steps) {
		t.Fatalf("the cookbook has %d command lines, the test knows %d", len(lines), len(steps))
	}
	for i, s := range steps {
		if lines[i] != s.cmd {
			t.Fatalf("cookbook line %d is\n  %s\nthe test expects\n  %s", i+1, lines[i], s.cmd)
		}
		out := run(s.cmd)
		if s.check != nil {
			s.check(out)
		}
	}
}
