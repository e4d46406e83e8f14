// Package statefile keeps one small document on disk across restarts and
// power cuts: a save replaces the whole file atomically (written beside it,
// synced, renamed over it, the directory synced), so a reader finds the old
// document or the new one, never a torn one.
package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File is a document at Path.
type File struct{ Path string }

// Load returns the document, or nil when there is none yet.
func (f File) Load() ([]byte, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("statefile: %w", err)
	}
	return b, nil
}

// Save replaces the document with data, durably: when Save returns nil the
// new document survives a power cut.
func (f File) Save(data []byte) error {
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".*")
	if err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("statefile: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("statefile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("statefile: sync %s: %w", dir, err)
	}
	return nil
}
