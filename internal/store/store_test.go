package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBudgetAndWholeFiles(t *testing.T) {
	s := New(t.TempDir(), 100)
	if _, err := s.Write("a/1.jpg", make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write("a/2.jpg", make([]byte, 60)); !errors.Is(err, ErrFull) {
		t.Fatalf("over budget: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "a/2.jpg")); err == nil {
		t.Fatal("a refused write left a file")
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "a/2.jpg.part")); err == nil {
		t.Fatal("a refused write left a part file")
	}
	if err := s.RemoveAll("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write("a/2.jpg", make([]byte, 60)); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	for _, bad := range []string{"../x", "/etc/passwd", "."} {
		if _, err := s.Write(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPruneKeepsNewest(t *testing.T) {
	s := New(t.TempDir(), 1<<20)
	for _, n := range []string{"20261124T100000.jpg", "20261124T100001.jpg", "20261124T100002.jpg"} {
		if _, err := s.Write("snap/"+n, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Prune("snap", 2); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Dir, "snap"))
	if len(entries) != 2 || entries[0].Name() != "20261124T100001.jpg" {
		t.Fatalf("left %v", entries)
	}
	if used, _ := s.Used(); used != 2 {
		t.Fatalf("used %d, want 2", used)
	}
}
