package telemetry

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
)

// StatFS returns the bytes an unprivileged process can still write to the
// file system holding path, and its size (statfs(2)).
func StatFS(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	// The media directory may not exist yet (it is made on first use): the
	// file system it will be on is that of its nearest existing parent.
	p := filepath.Clean(path)
	for {
		err = syscall.Statfs(p, &st)
		if !errors.Is(err, syscall.ENOENT) || filepath.Dir(p) == p {
			break
		}
		p = filepath.Dir(p)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("telemetry: statfs %s: %w", path, err)
	}
	// Block counts are in fragment-size units; Frsize is 0 on kernels that
	// predate it.
	unit := uint64(st.Frsize)
	if unit == 0 {
		unit = uint64(st.Bsize)
	}
	return uint64(st.Bavail) * unit, uint64(st.Blocks) * unit, nil
}
