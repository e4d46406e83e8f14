package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/makercast/makercast/internal/testenv"
)

// benchTB is the benchmark's testenv.TB: Fatalf stops the current section
// (a panic caught by runSection), cleanups run in reverse order when the
// section ends, and TempDir makes real temporary directories.
type benchTB struct {
	name string
	keep bool // keep temporary directories (-keep)

	mu       sync.Mutex
	cleanups []func()
	logs     []namedFile // shown when the section fails
}

type namedFile struct{ name, path string }

var _ testenv.TB = (*benchTB)(nil)

// fatal is what Fatalf panics with.
type fatal struct{ msg string }

// live holds every section whose cleanups have not run yet, so that an
// interrupt can stop what they started.
var (
	liveMu sync.Mutex
	live   = map[*benchTB]bool{}
)

func newTB(name string, keep bool) *benchTB {
	tb := &benchTB{name: name, keep: keep}
	liveMu.Lock()
	live[tb] = true
	liveMu.Unlock()
	return tb
}

func (b *benchTB) Helper() {}

func (b *benchTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", b.name, fmt.Sprintf(format, args...))
}

func (b *benchTB) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.Logf("FATAL: %s", msg)
	panic(fatal{msg})
}

func (b *benchTB) Cleanup(f func()) {
	b.mu.Lock()
	b.cleanups = append(b.cleanups, f)
	b.mu.Unlock()
}

func (b *benchTB) TempDir() string {
	dir, err := os.MkdirTemp("", "makercast-bench-")
	if err != nil {
		b.Fatalf("temp dir: %v", err)
	}
	b.Cleanup(func() {
		if b.keep {
			b.Logf("kept %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// attachLog names a log file whose tail is printed if the section fails.
func (b *benchTB) attachLog(name, path string) {
	b.mu.Lock()
	b.logs = append(b.logs, namedFile{name, path})
	b.mu.Unlock()
}

// runCleanups pops and runs every cleanup, newest first; each runs once,
// even when an interrupt and the section race to run them.
func (b *benchTB) runCleanups() {
	for {
		b.mu.Lock()
		n := len(b.cleanups)
		if n == 0 {
			b.mu.Unlock()
			break
		}
		f := b.cleanups[n-1]
		b.cleanups = b.cleanups[:n-1]
		b.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					b.Logf("cleanup failed: %v", r)
				}
			}()
			f()
		}()
	}
	liveMu.Lock()
	delete(live, b)
	liveMu.Unlock()
}

func (b *benchTB) showLogs() {
	b.mu.Lock()
	logs := append([]namedFile(nil), b.logs...)
	b.mu.Unlock()
	for _, l := range logs {
		data, err := os.ReadFile(l.path)
		if err != nil {
			continue
		}
		const tail = 4000
		if len(data) > tail {
			data = data[len(data)-tail:]
		}
		fmt.Fprintf(os.Stderr, "[%s] --- last lines of %s ---\n%s\n", b.name, l.name, data)
	}
}

// runSection runs f with a fresh TB and returns why it stopped early (nil
// when it completed). Everything the section started is stopped before it
// returns, also on failure.
func runSection(name string, keep bool, f func(tb *benchTB)) (err error) {
	tb := newTB(name, keep)
	defer tb.runCleanups()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if ft, ok := r.(fatal); ok {
			err = fmt.Errorf("%s", ft.msg)
		} else {
			err = fmt.Errorf("panic: %v", r)
			fmt.Fprintf(os.Stderr, "[%s] panic: %v\n%s", name, r, debug.Stack())
		}
		tb.showLogs()
	}()
	f(tb)
	return nil
}

// handleInterrupt stops every started process and exits on SIGINT/SIGTERM.
func handleInterrupt() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-ch
		fmt.Fprintf(os.Stderr, "makercast-bench: %v: stopping everything\n", s)
		liveMu.Lock()
		tbs := make([]*benchTB, 0, len(live))
		for tb := range live {
			tbs = append(tbs, tb)
		}
		liveMu.Unlock()
		for _, tb := range tbs {
			tb.runCleanups()
		}
		os.Exit(130)
	}()
}
