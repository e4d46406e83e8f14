package balena

import (
	"encoding/json"
	"testing"
)

func TestDownloadProgressForms(t *testing.T) {
	for in, want := range map[string]any{
		`{"download_progress":84}`:     84,
		`{"download_progress":"84"}`:   84,
		`{"download_progress":33.6}`:   34,
		`{"download_progress":null}`:   nil,
		`{}`:                           nil,
		`{"download_progress":"lots"}`: "error",
	} {
		d, err := parseDevice([]byte(in))
		switch want {
		case "error":
			if err == nil {
				t.Errorf("%s: no error", in)
			}
		case nil:
			if err != nil || d.DownloadProgress != nil {
				t.Errorf("%s: %v, %v; want nil", in, d.DownloadProgress, err)
			}
		default:
			if err != nil || d.DownloadProgress == nil || *d.DownloadProgress != want {
				t.Errorf("%s: %v, %v; want %v", in, d.DownloadProgress, err, want)
			}
		}
	}
}

func TestStateJSONRoundTrip(t *testing.T) {
	p := 42
	s := State{Device: Device{Commit: "414e65c", Status: "Downloading", DownloadProgress: &p}, TargetCommit: "217d552", UpdateStatus: "downloading", TargetProgress: &p}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.TargetCommit != "217d552" || back.Commit != "414e65c" || back.TargetProgress == nil || *back.TargetProgress != 42 {
		t.Errorf("round trip lost fields: %s -> %+v", b, back)
	}
}
