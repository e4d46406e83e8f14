package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/makercast/makercast/agent"
)

// Recordings are the recorded segments under Dir, a directory per camera
// (agent.Recordings). StatFS tells what the disk holding Dir has left
// (telemetry.StatFS in the agent).
type Recordings struct {
	Dir    string
	StatFS func(path string) (free, total uint64, err error)
}

var _ agent.Recordings = Recordings{}

// Files lists every segment (*.mp4) of every camera, open ones included.
func (r Recordings) Files() ([]agent.RecordedFile, error) {
	var out []agent.RecordedFile
	err := filepath.WalkDir(r.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".mp4") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		out = append(out, agent.RecordedFile{Path: path, Size: info.Size(), Modified: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: recordings: %w", err)
	}
	return out, nil
}

// Remove deletes one segment; it must be under Dir.
func (r Recordings) Remove(path string) error {
	rel, err := filepath.Rel(r.Dir, path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
		return fmt.Errorf("store: %s is not a recording", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Free is what the disk holding the recordings has left.
func (r Recordings) Free() (int64, error) {
	free, _, err := r.StatFS(r.Dir)
	if err != nil {
		return 0, err
	}
	return int64(free), nil
}
