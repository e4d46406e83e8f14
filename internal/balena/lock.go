package balena

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// ErrLockTaken is returned by UpdateLock.Lock when the lock file is held by
// someone else: the supervisor (it is stopping this service for an update or
// a restart) or another process.
var ErrLockTaken = errors.New("balena: update lock held by someone else")

// supervisorUID is the owner of the lock files the supervisor itself takes
// (v13.1.0 and newer), as `nobody`.
const supervisorUID = 65534

// lockMark starts the content of a lock file this package made; a file
// without it was made by someone else and is never removed here.
const lockMark = "makercast-agent update lock\n"

// UpdateLock is balena's update lock for this service, held while a stream
// or a recording is live so that neither a new release nor a host OS update
// cuts it (docs.balena.io, "Update locks"; meta-balena README, "OS update
// locks"). Holding it means both of balena's mechanisms on the one path:
//
//   - the file exists, created with O_CREAT|O_EXCL: the supervisor does not
//     stop or restart the service for a release or a variable change,
//     reboots for configuration changes wait, and restart-service and reboot
//     through its API answer 423 unless forced; releases are still
//     downloaded and are applied once the file is gone;
//   - an exclusive flock(2) on it: the host OS update scripts (safe_reboot,
//     hostapp-update) wait before rebooting.
//
// The flock also tells a live holder from a dead one: the kernel drops it
// when the process ends, however it ends, while the file stays. A file that
// carries this package's mark and that nobody holds a flock on was left by a
// run that crashed; ReleaseStale removes it and Lock takes it over, so it
// blocks updates only until the agent runs again (and a reboot clears
// /tmp/balena). A file without the mark (made by the lockfile tool, a
// shell, another program) is never removed.
//
// Lock and Unlock are idempotent and safe for concurrent use.
type UpdateLock struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex
	f    *os.File // open with the flock while held
}

// NewUpdateLock returns the lock at path (Config.LockPath; a temporary file
// in tests). It does nothing until Lock. log nil means no logs.
func NewUpdateLock(path string, log *slog.Logger) *UpdateLock {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &UpdateLock{path: path, log: log}
}

// Path is the lock file's path.
func (l *UpdateLock) Path() string { return l.path }

// Held reports whether this process holds the lock.
func (l *UpdateLock) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f != nil
}

// Lock takes the lock, or does nothing when it is held already. It fails
// with ErrLockTaken when someone else holds it. The directory must exist
// (the supervisor mounts it).
func (l *UpdateLock) Lock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		return nil
	}
	// Three tries: the file can vanish between a failed create and the
	// open that follows.
	for range 3 {
		f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			if err := l.take(f); err != nil {
				if l.sameFile(f) {
					os.Remove(l.path)
				}
				f.Close()
				return err
			}
			l.log.Info("update lock taken", "path", l.path)
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("balena: update lock: %w", err)
		}
		f, stale, err := l.openStale()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !stale {
			f.Close()
			return fmt.Errorf("%w: %s exists and was not made by makercast-agent", ErrLockTaken, l.path)
		}
		if err := l.take(f); err != nil {
			f.Close()
			return err
		}
		l.log.Warn("update lock taken over from an earlier run that ended without releasing it", "path", l.path)
		return nil
	}
	return fmt.Errorf("balena: update lock: %s keeps appearing and vanishing", l.path)
}

// take makes f, the lock file with its flock held or to be taken, this
// process's lock.
func (l *UpdateLock) take(f *os.File) error {
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return err
	}
	mark := lockMark + "pid " + strconv.Itoa(os.Getpid()) + "\n"
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("balena: update lock: %w", err)
	}
	if _, err := f.WriteAt([]byte(mark), 0); err != nil {
		return fmt.Errorf("balena: update lock: %w", err)
	}
	l.f = f
	return nil
}

// openStale opens the existing lock file and tries its flock. It returns
// the file with the flock held and stale true when the file is this
// package's and nobody holds it; the file (flock held, to be closed) and
// stale false when it is someone else's but unheld; ErrLockTaken when
// another process holds the flock or the supervisor made it.
func (l *UpdateLock) openStale() (f *os.File, stale bool, err error) {
	f, err = os.OpenFile(l.path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("balena: update lock: %w", err)
	}
	fail := func(err error) (*os.File, bool, error) {
		f.Close()
		return nil, false, err
	}
	if st, err := f.Stat(); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid == supervisorUID {
			return fail(fmt.Errorf("%w: the supervisor holds %s (it is applying an update or a restart)", ErrLockTaken, l.path))
		}
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(err)
	}
	if !l.sameFile(f) { // removed or replaced since it was opened
		return fail(fs.ErrNotExist)
	}
	head := make([]byte, len(lockMark))
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fail(fmt.Errorf("balena: update lock: %w", err))
	}
	return f, bytes.Equal(head[:n], []byte(lockMark)), nil
}

// Unlock releases the lock: the file is removed, then closed, which drops
// the flock (in that order, so that the file never exists unheld). It does
// nothing when the lock is not held. When the file at the path is no longer
// this process's (a forced update deletes user locks and the supervisor
// puts its own there), it is left alone.
func (l *UpdateLock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	var err error
	if l.sameFile(f) {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("balena: update lock: %w", rerr)
		}
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("balena: update lock: %w", cerr)
	}
	if err == nil {
		l.log.Info("update lock released", "path", l.path)
	}
	return err
}

// ReleaseStale removes a lock file left by a run of this program that ended
// without Unlock (a crash, SIGKILL, a power cut during a container
// restart): one with this package's mark on which nobody holds a flock. It
// reports whether it removed one. Call it once at start, before anything
// that can fail, so that an agent that crashes at start cannot keep updates
// (the fixed release among them) out. It leaves a lock this process holds,
// one another process holds, and files it did not make.
func (l *UpdateLock) ReleaseStale() (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		return false, nil
	}
	f, stale, err := l.openStale()
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrLockTaken) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if !stale {
		return false, nil
	}
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("balena: update lock: %w", err)
	}
	l.log.Warn("removed the update lock left by an earlier run", "path", l.path)
	return true, nil
}

// sameFile reports whether the path still names the open file f.
func (l *UpdateLock) sameFile(f *os.File) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(l.path)
	return err == nil && os.SameFile(a, b)
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: another process holds the flock on %s", ErrLockTaken, f.Name())
		}
		if err != nil {
			return fmt.Errorf("balena: update lock: flock %s: %w", f.Name(), err)
		}
		return nil
	}
}
