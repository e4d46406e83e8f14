package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretIsMaskedEverywhere(t *testing.T) {
	s := Secret("live_123_abc")
	type holder struct {
		Key Secret
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "key", s, "holder", holder{s})
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", s)
	j, _ := json.Marshal(holder{s})
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, holder{s}, holder{s}, s),
		string(j), logs.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, "live_123_abc") {
			t.Errorf("secret shown: %s", o)
		}
	}
	if !strings.Contains(string(j), "****") || !strings.Contains(logs.String(), "key=****") {
		t.Errorf("not masked as ****: %s / %s", j, logs.String())
	}
	if s.Reveal() != "live_123_abc" || Secret("").String() != "" {
		t.Error("Reveal or empty secret wrong")
	}
}
