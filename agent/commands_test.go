package agent

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

var topics = NewTopics("makercast", "pi1")

func TestParseCommand(t *testing.T) {
	cases := []struct {
		name, topic, payload string
		want                 Command
		code                 string // "" = accepted
	}{
		{"plain ON", "makercast/pi1/camera/test/stream/set", "ON", Command{Name: CmdStream, Camera: "test", On: true}, ""},
		{"lowercase off with newline", "makercast/pi1/camera/test/stream/set", "off\n", Command{Name: CmdStream, Camera: "test"}, ""},
		{"json with transaction", "makercast/pi1/camera/test/stream/set", `{"state":"ON","transaction":"t1"}`, Command{Name: CmdStream, Camera: "test", On: true, Transaction: "t1"}, ""},
		{"destination", "makercast/pi1/destination/yt/set", "ON", Command{Name: CmdDestination, Destination: "yt", On: true}, ""},
		{"request stream", "makercast/pi1/request/stream", `{"camera":"test","state":"OFF"}`, Command{Name: CmdStream, Camera: "test"}, ""},
		{"request status empty", "makercast/pi1/request/status", ``, Command{Name: CmdStatus}, ""},
		{"request add", "makercast/pi1/request/add_destination", `{"name":"fb","url":"rtmps://live-api-s.facebook.com:443/rtmp","key":"FB-1-0-Ab?s_bl=1"}`,
			Command{Name: CmdAddDestination, Destination: "fb", URL: "rtmps://live-api-s.facebook.com:443/rtmp", Key: "FB-1-0-Ab?s_bl=1"}, ""},
		{"bad state", "makercast/pi1/camera/test/stream/set", "MAYBE", Command{}, CodeBadValue},
		{"json without state", "makercast/pi1/camera/test/stream/set", `{"transaction":"x"}`, Command{}, CodeBadPayload},
		{"json state wrong type", "makercast/pi1/camera/test/stream/set", `{"state":true}`, Command{}, CodeBadPayload},
		{"unknown field", "makercast/pi1/camera/test/stream/set", `{"state":"ON","foo":1}`, Command{}, CodeBadPayload},
		{"trailing data", "makercast/pi1/request/status", `{} {}`, Command{}, CodeBadPayload},
		{"set topic with extra fields", "makercast/pi1/camera/test/stream/set", `{"state":"ON","url":"rtmp://x/y"}`, Command{}, CodeBadPayload},
		{"too large", "makercast/pi1/camera/test/stream/set", strings.Repeat(" ", MaxPayload+1), Command{}, CodePayloadTooLarge},
		{"long transaction", "makercast/pi1/request/status", `{"transaction":"` + strings.Repeat("x", 65) + `"}`, Command{}, CodeBadValue},
		{"unknown request", "makercast/pi1/request/reboot", `{}`, Command{}, CodeUnknownCommand},
		{"destination request without name", "makercast/pi1/request/destination", `{"state":"ON"}`, Command{}, CodeBadPayload},
		{"add without url", "makercast/pi1/request/add_destination", `{"name":"x"}`, Command{}, CodeBadPayload},
		{"other device", "makercast/pi2/camera/test/stream/set", "ON", Command{}, CodeUnknownCommand},
		{"not a command topic", "makercast/pi1/camera/test/stream", "ON", Command{}, CodeUnknownCommand},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := topics.ParseCommand(c.topic, []byte(c.payload))
			if c.code == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if got != c.want {
					t.Fatalf("got %+v, want %+v", got, c.want)
				}
				return
			}
			var ce *CommandError
			if !errors.As(err, &ce) || ce.Code != c.code {
				t.Fatalf("err = %v, want code %s", err, c.code)
			}
		})
	}
}

// Fleet presses: any non-empty plain payload, JSON with only a
// transaction; an empty payload (a retained message being cleared) and
// other fields are refused.
func TestFleetPress(t *testing.T) {
	for _, c := range []struct {
		sub, payload, want, code string
	}{
		{"fleet/reboot/set", "PRESS", CmdFleetReboot, ""},
		{"fleet/update/set", "install", CmdFleetUpdate, ""},
		{"fleet/identify/set", `{"transaction":"t1"}`, CmdFleetIdentify, ""},
		{"request/fleet_restart", `{"transaction":"t2"}`, CmdFleetRestart, ""},
		{"fleet/reboot/set", "", "", CodeBadPayload},
		{"fleet/reboot/set", `{"force":true}`, "", CodeBadPayload},
		{"request/fleet_reboot", `{"state":"ON"}`, "", CodeBadPayload},
		{"fleet/selfdestruct/set", "PRESS", "", CodeUnknownCommand},
	} {
		cmd, err := topics.ParseCommand(topics.Base+"/"+c.sub, []byte(c.payload))
		var ce *CommandError
		switch {
		case c.code == "" && (err != nil || cmd.Name != c.want):
			t.Errorf("%s %q: %+v, %v; want %s", c.sub, c.payload, cmd, err, c.want)
		case c.code != "" && (!errors.As(err, &ce) || ce.Code != c.code):
			t.Errorf("%s %q: %v, want code %s", c.sub, c.payload, err, c.code)
		}
	}
}

func TestResponseName(t *testing.T) {
	for topic, want := range map[string]string{
		"makercast/pi1/camera/x/stream/set":    "stream",
		"makercast/pi1/destination/x/set":      "destination",
		"makercast/pi1/request/status":         "status",
		"makercast/pi1/request/Weird Name!":    "error",
		"makercast/pi1/somewhere/else":         "error",
		"makercast/pi1/request/" + "abc_def_g": "abc_def_g",
		"makercast/pi1/fleet/reboot/set":       "fleet_reboot",
		"makercast/pi1/fleet/update/set":       "fleet_update",
		"makercast/pi1/fleet/format/set":       "error",
	} {
		if got := topics.ResponseName(topic); got != want {
			t.Errorf("ResponseName(%q) = %q, want %q", topic, got, want)
		}
	}
}

// FuzzParseCommand: no input may panic, every rejection carries a known
// code and a message, and nothing accepted is out of the command set.
// Seeds are in testdata/fuzz/FuzzParseCommand.
func FuzzParseCommand(f *testing.F) {
	f.Add("camera/test/stream/set", []byte("ON"))
	f.Add("request/add_destination", []byte(`{"name":"a","url":"rtmp://h/app","key":"k"}`))
	codes := map[string]bool{CodeBadPayload: true, CodePayloadTooLarge: true, CodeUnknownCommand: true, CodeBadValue: true}
	f.Add("camera/test/timelapse/set", []byte(`{"state":"ON","interval":5}`))
	f.Add("camera/test/snapshot/set", []byte(`{"width":640,"quality":80}`))
	f.Fuzz(func(t *testing.T, sub string, payload []byte) {
		cmd, err := topics.ParseCommand(topics.Base+"/"+sub, payload)
		if err != nil {
			var ce *CommandError
			if !errors.As(err, &ce) || !codes[ce.Code] || ce.Message == "" {
				t.Fatalf("bad rejection %#v", err)
			}
			if !utf8.ValidString(ce.Message) {
				t.Fatalf("message is not valid UTF-8: %q", ce.Message)
			}
			return
		}
		switch cmd.Name {
		case CmdStream, CmdDestination, CmdStatus, CmdAddDestination, CmdRemoveDestination, CmdSnapshot, CmdTimelapse, CmdTimelapseFrame,
			CmdFleetUpdate, CmdFleetRestart, CmdFleetReboot, CmdFleetIdentify:
		default:
			t.Fatalf("accepted unknown command %q", cmd.Name)
		}
		if len(cmd.Transaction) > 64 {
			t.Fatalf("accepted a %d-byte transaction", len(cmd.Transaction))
		}
	})
}
