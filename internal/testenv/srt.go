package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreeUDPPort returns a loopback UDP port that was free a moment ago (SRT
// runs over UDP).
func FreeUDPPort(t TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free UDP port: %v", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// SRTPeer is ffmpeg at the far end of an SRT link, copying what it receives
// into an MPEG-TS file: a listener the agent calls (an SRT server, a
// relay), or a caller that pulls from the agent's listener (what OBS's
// Media Source does).
type SRTPeer struct {
	Out  string // the file it writes
	logs *SyncBuffer
	done chan error
	cmd  *exec.Cmd
}

// StartSRTListener waits on 127.0.0.1:port for the agent to call, and
// keeps seconds of what it sends. passphrase "" is unencrypted.
func StartSRTListener(t TB, port int, passphrase string, seconds int) *SRTPeer {
	t.Helper()
	return startSRTPeer(t, "listener", port, passphrase, seconds)
}

// StartSRTCaller calls the agent's listener on 127.0.0.1:port and keeps
// seconds of what it gets.
func StartSRTCaller(t TB, port int, passphrase string, seconds int) *SRTPeer {
	t.Helper()
	return startSRTPeer(t, "caller", port, passphrase, seconds)
}

func startSRTPeer(t TB, mode string, port int, passphrase string, seconds int) *SRTPeer {
	t.Helper()
	bin := need(t, "ffmpeg")
	q := url.Values{"mode": {mode}}
	if passphrase != "" {
		q.Set("passphrase", passphrase)
	}
	if mode == "caller" {
		q.Set("connect_timeout", "3000") // ms
	}
	src := fmt.Sprintf("srt://127.0.0.1:%d?%s", port, q.Encode())
	p := &SRTPeer{Out: filepath.Join(t.TempDir(), "srt-"+mode+".ts"), logs: &SyncBuffer{}, done: make(chan error, 1)}
	// -t counts from the first packet: the file holds seconds of media.
	p.cmd = exec.Command(bin, "-hide_banner", "-nostdin", "-loglevel", "warning", "-y",
		"-i", src, "-map", "0", "-c", "copy", "-t", strconv.Itoa(seconds), "-f", "mpegts", p.Out)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testenv: start ffmpeg as SRT %s: %v", mode, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(p.Stop)
	return p
}

// Stop ends ffmpeg (it is done when its seconds are).
func (p *SRTPeer) Stop() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		err := <-p.done
		p.done <- err
	}
}

// Exited reports whether ffmpeg has ended, and how.
func (p *SRTPeer) Exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// Logs are ffmpeg's messages.
func (p *SRTPeer) Logs() string { return p.logs.String() }

// WaitBytes waits until media has arrived, and says how long that took.
func (p *SRTPeer) WaitBytes(t TB, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if st, err := os.Stat(p.Out); err == nil && st.Size() > 0 {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("testenv: nothing received over SRT within %s: %s", within, p.Logs())
	return 0
}

// Wait waits for ffmpeg to finish its seconds and probes what it kept.
func (p *SRTPeer) Wait(t TB, within time.Duration) Probe {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("testenv: ffmpeg SRT peer: %v: %s", err, p.Logs())
		}
	case <-time.After(within):
		t.Fatalf("testenv: ffmpeg SRT peer still running after %s: %s", within, p.Logs())
	}
	return FFProbe(t, p.Out)
}

// VideoFrames counts the video frames of a file and the time they span.
func VideoFrames(t TB, file string) (frames int, seconds float64) {
	t.Helper()
	bin := need(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=nb_read_frames,duration", "-of", "default=nw=1", file).Output()
	if err != nil {
		t.Fatalf("testenv: count frames of %s: %v", file, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "nb_read_frames":
			frames, _ = strconv.Atoi(v)
		case "duration":
			seconds, _ = strconv.ParseFloat(v, 64)
		}
	}
	return frames, seconds
}

// FirstVideoPacket is the first video packet of a file: its presentation
// time and whether it is a keyframe.
func FirstVideoPacket(t TB, file string) (pts float64, key bool) {
	t.Helper()
	bin := need(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
		"-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("testenv: first packet of %s: %v", file, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	ts, flags, _ := strings.Cut(line, ",")
	pts, _ = strconv.ParseFloat(ts, 64)
	return pts, strings.HasPrefix(flags, "K")
}

// DecodedFrames decodes the video of a file and counts its frames and the
// decoder's complaints.
func DecodedFrames(t TB, file string) (frames int, errors []string) {
	t.Helper()
	bin := need(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-hide_banner", "-nostdin", "-v", "error", "-i", file,
		"-map", "0:v:0", "-f", "framemd5", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: decode %s: %v: %s", file, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "0,"):
			frames++
		default:
			errors = append(errors, line)
		}
	}
	return frames, errors
}
