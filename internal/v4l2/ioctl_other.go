//go:build !linux

package v4l2

import (
	"errors"
	"fmt"
)

var errNotLinux = errors.New("video4linux2 exists only on Linux")

// QueryCap asks the node at path what it is (VIDIOC_QUERYCAP).
func QueryCap(path string) (Capability, error) {
	return Capability{}, fmt.Errorf("v4l2: %s: %w", path, errNotLinux)
}

// Modes lists the capture modes of the node at path.
func Modes(path string) ([]Mode, error) {
	return nil, fmt.Errorf("v4l2: %s: %w", path, errNotLinux)
}
