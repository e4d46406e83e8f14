package agent

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// disk is a recordings directory on a disk of a given free space.
type disk struct {
	files   []RecordedFile
	free    int64
	removed []string
}

func (d *disk) Files() ([]RecordedFile, error) { return append([]RecordedFile(nil), d.files...), nil }
func (d *disk) Free() (int64, error)           { return d.free, nil }
func (d *disk) Remove(path string) error {
	for i, f := range d.files {
		if f.Path == path {
			d.files = append(d.files[:i], d.files[i+1:]...)
			d.free += f.Size
			d.removed = append(d.removed, path)
			return nil
		}
	}
	return errors.New("no such file")
}

func TestRetentionOldestFirstByAgeSizeAndFreeSpace(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	const mb = 1 << 20
	file := func(name string, age time.Duration, size int64) RecordedFile {
		return RecordedFile{Path: "/rec/cam/" + name, Size: size, Modified: now.Add(-age)}
	}
	files := []RecordedFile{ // listed out of order: the policy sorts by time
		file("c.mp4", 2*time.Hour, 10*mb),
		file("a.mp4", 9*24*time.Hour, 10*mb),
		file("open.mp4", 0, 10*mb),
		file("b.mp4", 3*24*time.Hour, 10*mb),
	}
	for _, c := range []struct {
		name  string
		st    RecordingSettings
		free  int64
		want  []string
		short int64
	}{
		{"nothing to do", RecordingSettings{MaxAge: 30 * 24 * time.Hour, MaxBytes: 100 * mb, MinFree: mb}, 500 * mb, nil, 0},
		{"by age", RecordingSettings{MaxAge: 7 * 24 * time.Hour}, 500 * mb, []string{"a.mp4"}, 0},
		{"by total size, oldest first", RecordingSettings{MaxBytes: 25 * mb}, 500 * mb, []string{"a.mp4", "b.mp4"}, 0},
		{"by free space, oldest first", RecordingSettings{MinFree: 15 * mb}, 0, []string{"a.mp4", "b.mp4"}, 0},
		{"the open file is never deleted", RecordingSettings{MinFree: 100 * mb}, 0, []string{"a.mp4", "b.mp4", "c.mp4"}, 70 * mb},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := &disk{files: append([]RecordedFile(nil), files...), free: c.free}
			c.st.Files = d
			removed, short, err := retain(c.st, map[string]bool{"/rec/cam/open.mp4": true}, now)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, n := range c.want {
				want = append(want, "/rec/cam/"+n)
			}
			if !slices.Equal(removed, want) || !slices.Equal(d.removed, want) {
				t.Errorf("removed %v (disk: %v), want %v", removed, d.removed, want)
			}
			if short != c.short {
				t.Errorf("short %d MiB, want %d", short/mb, c.short/mb)
			}
		})
	}
}
