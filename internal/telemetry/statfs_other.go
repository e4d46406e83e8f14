//go:build !linux

package telemetry

import (
	"errors"
	"fmt"
)

// StatFS is only implemented on Linux.
func StatFS(path string) (free, total uint64, err error) {
	return 0, 0, fmt.Errorf("telemetry: statfs %s: %w", path, errors.ErrUnsupported)
}
