package telemetry

import (
	"fmt"
	"syscall"
)

// StatFS returns the bytes an unprivileged process can still write to the
// file system holding path, and its size (statfs(2)).
func StatFS(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
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
