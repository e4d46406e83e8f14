// Package store keeps snapshots, timelapse frames and videos in the media
// directory, within a byte budget. Files appear whole or not at all: they
// are written to a temporary name and renamed.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ErrFull is returned when a write would take the directory past its budget.
var ErrFull = errors.New("store: media directory is at its size limit")

// Store is a media directory with a size budget.
type Store struct {
	Dir      string
	MaxBytes int64

	// Skip are top-level directories the budget does not count (the
	// recordings, which have a retention of their own).
	Skip []string

	mu   sync.Mutex
	used int64 // -1 until first measured
}

// New returns a store over dir; the directory is created on first write.
// The top-level directories in skip are not counted in its budget.
func New(dir string, maxBytes int64, skip ...string) *Store {
	return &Store{Dir: dir, MaxBytes: maxBytes, Skip: skip, used: -1}
}

// Path joins rel onto the directory; rel must stay inside it.
func (s *Store) Path(rel string) (string, error) {
	clean := filepath.Clean(rel)
	if filepath.IsAbs(clean) || clean == "." || strings.HasPrefix(clean, "..") {
		return "", fmt.Errorf("store: %q is not a path inside the media directory", rel)
	}
	return filepath.Join(s.Dir, clean), nil
}

// Used is the bytes the directory holds now.
func (s *Store) Used() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usedLocked()
}

func (s *Store) usedLocked() (int64, error) {
	if s.used >= 0 {
		return s.used, nil
	}
	var n int64
	err := filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() && filepath.Dir(path) == filepath.Clean(s.Dir) {
			for _, skip := range s.Skip {
				if d.Name() == skip {
					return filepath.SkipDir
				}
			}
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: measure %s: %w", s.Dir, err)
	}
	s.used = n
	return n, nil
}

// Write stores data at rel, whole, if it fits the budget.
func (s *Store) Write(rel string, data []byte) (string, error) {
	path, err := s.Path(rel)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	used, err := s.usedLocked()
	if err != nil {
		return "", err
	}
	if used+int64(len(data)) > s.MaxBytes {
		return "", ErrFull
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	tmp := path + ".part"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("store: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("store: %w", err)
	}
	s.used += int64(len(data))
	return path, nil
}

// Added tells the store that a file was written at path by someone else
// (the timelapse encoder), so the budget stays right.
func (s *Store) Added(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, err := os.Stat(path); err == nil && s.used >= 0 {
		s.used += info.Size()
	}
}

// MkdirAll creates directory rel (and checks the media directory is
// writable).
func (s *Store) MkdirAll(rel string) error {
	path, err := s.Path(rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// RemoveAll deletes rel (a file or a directory tree).
func (s *Store) RemoveAll(rel string) error {
	path, err := s.Path(rel)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	s.used = -1 // measured again on next use
	return nil
}

// List returns the names of the directories and of the regular files in
// directory rel, sorted; a directory that does not exist is empty.
func (s *Store) List(rel string) (dirs, files []string, err error) {
	dir, err := s.Path(rel)
	if err != nil {
		return nil, nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	for _, e := range entries {
		switch {
		case e.IsDir():
			dirs = append(dirs, e.Name())
		case e.Type().IsRegular():
			files = append(files, e.Name())
		}
	}
	return dirs, files, nil
}

// Prune keeps the newest keep files (by name, which starts with a time
// stamp) in directory rel and deletes the rest.
func (s *Store) Prune(rel string, keep int) error {
	dir, err := s.Path(rel)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("store: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".part") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) <= keep {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names[:len(names)-keep] {
		p := filepath.Join(dir, n)
		if info, err := os.Stat(p); err == nil && s.used >= 0 {
			s.used -= info.Size()
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}
