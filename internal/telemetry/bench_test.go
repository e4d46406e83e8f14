package telemetry

import (
	"context"
	"os"
	"runtime"
	"testing"
)

// BenchmarkRead is one Read of the Pi 4 tree from memory: the parsing cost,
// with the fake vcgencmd (no process is started).
func BenchmarkRead(b *testing.B) {
	r := treeReader(b, "pi4")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Read(ctx)
	}
}

// BenchmarkReadLive reads this machine's own /proc and /sys, adding the
// system calls, still without vcgencmd.
func BenchmarkReadLive(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("Linux only")
	}
	r := &Reader{Root: os.DirFS("/"), StatFS: StatFS, MediaDir: b.TempDir()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Read(ctx)
	}
}

// BenchmarkExecVcgencmd is the cost vcgencmd adds on a Pi: one fork and exec
// per Read (a shell script stands in for the binary here).
func BenchmarkExecVcgencmd(b *testing.B) {
	if runtime.GOOS == "windows" {
		b.Skip("needs a POSIX shell")
	}
	p := b.TempDir() + "/vcgencmd"
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho throttled=0x0\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	run := ExecVcgencmd(p)
	ctx := context.Background()
	for b.Loop() {
		if _, err := run(ctx, "get_throttled"); err != nil {
			b.Fatal(err)
		}
	}
}
