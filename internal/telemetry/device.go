package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// NewDeviceReader returns a Reader for the machine it runs on: the live
// root, vcgencmd when it is on PATH, statfs(2) for the media directory and
// the wall clock.
func NewDeviceReader(mediaDir, version string) *Reader {
	r := &Reader{Root: os.DirFS("/"), StatFS: StatFS, MediaDir: mediaDir, Version: version, Now: time.Now}
	if p, err := exec.LookPath("vcgencmd"); err == nil {
		r.Vcgencmd = ExecVcgencmd(p)
	}
	return r
}

// ExecVcgencmd returns a Reader.Vcgencmd that runs the program at path.
// vcgencmd fails, for instance, when the user may not open /dev/vchiq (not
// in the video group); the error then carries its standard error.
func ExecVcgencmd(path string) func(ctx context.Context, args ...string) (string, error) {
	return func(ctx context.Context, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.WaitDelay = time.Second
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = strings.TrimSpace(stdout.String())
			}
			if msg != "" {
				return "", fmt.Errorf("telemetry: vcgencmd %s: %w: %s", strings.Join(args, " "), err, clip(msg))
			}
			return "", fmt.Errorf("telemetry: vcgencmd %s: %w", strings.Join(args, " "), err)
		}
		return stdout.String(), nil
	}
}
