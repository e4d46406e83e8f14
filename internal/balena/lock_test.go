package balena

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func lockPath(t *testing.T) string { return filepath.Join(t.TempDir(), "updates.lock") }

// otherHolder opens path and takes its flock as another process would (a
// flock belongs to the open file, so a second open in this process
// conflicts like another process).
func otherHolder(t *testing.T, path string) (held bool, release func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil && !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatal(err)
	}
	return err == nil, func() { f.Close() }
}

func TestLockUnlock(t *testing.T) {
	path := lockPath(t)
	var logs bytes.Buffer
	l := NewUpdateLock(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if l.Held() {
		t.Fatal("held before Lock")
	}
	if err := l.Lock(); err != nil {
		t.Fatal(err)
	}
	st1, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no lock file after Lock: %v", err)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), lockMark) {
		t.Errorf("lock file content %q", data)
	}
	// The flock is held: host OS update scripts would wait.
	if held, release := otherHolder(t, path); held {
		t.Error("another process could take the flock while the lock is held")
	} else {
		release()
	}
	// Idempotent: the same file stays.
	if err := l.Lock(); err != nil {
		t.Fatal(err)
	}
	if st2, err := os.Stat(path); err != nil || !os.SameFile(st1, st2) {
		t.Error("a second Lock replaced the file")
	}
	if !l.Held() {
		t.Error("not Held after Lock")
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file still there after Unlock: %v", err)
	}
	if err := l.Unlock(); err != nil || l.Held() {
		t.Errorf("second Unlock: %v, held %v", err, l.Held())
	}
	// And again.
	if err := l.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if strings.Count(logs.String(), "update lock taken") != 2 || strings.Count(logs.String(), "update lock released") != 2 {
		t.Errorf("logs:\n%s", logs.String())
	}
}

func TestLockRefusesOthersLocks(t *testing.T) {
	t.Run("a file made by another tool", func(t *testing.T) {
		path := lockPath(t)
		if err := os.WriteFile(path, nil, 0o644); err != nil { // lockfile(1) makes it empty
			t.Fatal(err)
		}
		l := NewUpdateLock(path, nil)
		if err := l.Lock(); !errors.Is(err, ErrLockTaken) || !strings.Contains(err.Error(), "not made by makercast-agent") {
			t.Fatalf("Lock: %v; want ErrLockTaken", err)
		}
		if removed, err := l.ReleaseStale(); removed || err != nil {
			t.Errorf("ReleaseStale removed another tool's lock: %v, %v", removed, err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("the other tool's lock is gone: %v", err)
		}
	})
	t.Run("ours, held by another process", func(t *testing.T) {
		path := lockPath(t)
		other := NewUpdateLock(path, nil)
		if err := other.Lock(); err != nil {
			t.Fatal(err)
		}
		defer other.Unlock()
		l := NewUpdateLock(path, nil)
		if err := l.Lock(); !errors.Is(err, ErrLockTaken) {
			t.Fatalf("Lock while another holds it: %v; want ErrLockTaken", err)
		}
		if removed, err := l.ReleaseStale(); removed || err != nil {
			t.Errorf("ReleaseStale on a live lock: %v, %v", removed, err)
		}
		if !other.Held() {
			t.Error("the holder lost its lock")
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("the live lock file is gone: %v", err)
		}
	})
	t.Run("the supervisor's", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to make a file owned by uid 65534")
		}
		path := lockPath(t)
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, supervisorUID, supervisorUID); err != nil {
			t.Fatal(err)
		}
		l := NewUpdateLock(path, nil)
		if err := l.Lock(); !errors.Is(err, ErrLockTaken) || !strings.Contains(err.Error(), "supervisor") {
			t.Fatalf("Lock on the supervisor's lock: %v", err)
		}
		if removed, _ := l.ReleaseStale(); removed {
			t.Error("ReleaseStale removed the supervisor's lock")
		}
	})
	t.Run("no directory", func(t *testing.T) {
		l := NewUpdateLock(filepath.Join(t.TempDir(), "missing", "updates.lock"), nil)
		err := l.Lock()
		if err == nil || errors.Is(err, ErrLockTaken) || !strings.HasPrefix(err.Error(), "balena: update lock: ") {
			t.Errorf("Lock without its directory: %v", err)
		}
	})
}

func TestStaleLockFromAnEarlierRun(t *testing.T) {
	path := lockPath(t)
	// What a crashed run leaves: our mark, nobody holding the flock.
	if err := os.WriteFile(path, []byte(lockMark+"pid 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := NewUpdateLock(path, nil)
	removed, err := l.ReleaseStale()
	if !removed || err != nil {
		t.Fatalf("ReleaseStale: %v, %v; want true", removed, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale lock still there: %v", err)
	}
	if removed, err := l.ReleaseStale(); removed || err != nil {
		t.Errorf("ReleaseStale without a file: %v, %v", removed, err)
	}

	// Lock takes a stale file over.
	if err := os.WriteFile(path, []byte(lockMark+"pid 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Lock(); err != nil {
		t.Fatalf("Lock over a stale file: %v", err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("the taken-over file names %q", data)
	}
	if held, release := otherHolder(t, path); held {
		t.Error("taken-over lock has no flock")
	} else {
		release()
	}
	// ReleaseStale leaves a lock this process holds.
	if removed, _ := l.ReleaseStale(); removed || !l.Held() {
		t.Error("ReleaseStale removed our own live lock")
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestLockHeldByAKilledProcess runs a real second process that takes the lock and
// is killed with SIGKILL: while it lives its lock holds; once it is dead
// the file stays, and ReleaseStale removes it.
func TestLockHeldByAKilledProcess(t *testing.T) {
	if os.Getenv("MAKERCAST_BALENA_LOCK_HELPER") != "" {
		t.Skip("helper")
	}
	path := lockPath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "MAKERCAST_BALENA_LOCK_HELPER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "locked" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the helper process ended without taking the lock")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the helper process did not take the lock")
	}
	l := NewUpdateLock(path, nil)
	if err := l.Lock(); !errors.Is(err, ErrLockTaken) {
		t.Fatalf("Lock while the helper holds it: %v", err)
	}
	if removed, _ := l.ReleaseStale(); removed {
		t.Fatal("ReleaseStale removed a live process's lock")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a killed process's lock file should stay: %v", err)
	}
	removed, err := l.ReleaseStale()
	if !removed || err != nil {
		t.Fatalf("ReleaseStale after the crash: %v, %v", removed, err)
	}
	if err := l.Lock(); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
}

// TestLockHelperProcess is the second process of TestLockHeldByAKilledProcess.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv("MAKERCAST_BALENA_LOCK_HELPER")
	if path == "" {
		t.Skip("run by TestLockHeldByAKilledProcess")
	}
	if err := NewUpdateLock(path, nil).Lock(); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(time.Minute)
}

// TestUnlockAfterForcedUpdate: a forced update deletes user locks and the
// supervisor puts its own file there; Unlock must not remove that one.
func TestUnlockAfterForcedUpdate(t *testing.T) {
	path := lockPath(t)
	l := NewUpdateLock(path, nil)
	if err := l.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Unlock removed the supervisor's lock: %v", err)
	}
	if l.Held() {
		t.Error("still held")
	}
}

func TestLockConcurrent(t *testing.T) {
	path := lockPath(t)
	l := NewUpdateLock(path, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				var err error
				if i%2 == 0 {
					err = l.Lock()
				} else {
					err = l.Unlock()
				}
				if err != nil {
					errs <- err
				}
				l.Held()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left: %v", err)
	}
}
