package statefile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	f := File{Path: filepath.Join(t.TempDir(), "state", "resume.json")}
	if b, err := f.Load(); err != nil || b != nil {
		t.Fatalf("before any save: %q, %v", b, err)
	}
	for _, doc := range []string{`{"streams":["main"]}`, `{"streams":[]}`} {
		if err := f.Save([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		if b, err := f.Load(); err != nil || string(b) != doc {
			t.Fatalf("loaded %q, %v; want %q", b, err, doc)
		}
	}
	// Nothing but the document is left in its directory.
	entries, _ := os.ReadDir(filepath.Dir(f.Path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the document", len(entries))
	}
	// A directory that cannot be written gives an error, not a silent loss.
	ro := File{Path: "/proc/makercast-cannot/resume.json"}
	if err := ro.Save([]byte("x")); err == nil {
		t.Error("save into /proc succeeded")
	}
}
