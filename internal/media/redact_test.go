package media

import "testing"

func TestRedactWord(t *testing.T) {
	cases := []struct{ in, key, want string }{
		{"publish to rtmp://h/live/abc123 failed", "abc123", "publish to rtmp://h/live/**** failed"},
		{"sink: Connection error", "k", "sink: Connection error"},
		{"k", "k", "****"},
		{"stream k k refused", "k", "stream **** **** refused"},
		{"FB-1?a=b&c=d rejected", "FB-1?a=b&c=d", "**** rejected"},
	}
	for _, c := range cases {
		if got := redactWord(c.in, c.key); got != c.want {
			t.Errorf("redactWord(%q, %q) = %q, want %q", c.in, c.key, got, c.want)
		}
	}
}
