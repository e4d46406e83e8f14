// Package sdnotify is the agent's side of systemd's notify protocol
// (sd_notify(3)), in pure Go: one datagram per message to the unix socket
// named by NOTIFY_SOCKET (a path, or an abstract name starting with '@').
//
// The agent says READY=1 once it runs, WATCHDOG=1 every half WatchdogSec
// while it is healthy, and STOPPING=1 when it shuts down. Without
// NOTIFY_SOCKET (not started by systemd, or not Type=notify) every call is a
// no-op, so the same binary runs by hand, in Docker and under systemd.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Messages of the protocol the agent sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// Notifier sends notifications to systemd. The zero value and a nil
// *Notifier are no-ops.
type Notifier struct {
	addr     *net.UnixAddr // nil: no NOTIFY_SOCKET
	watchdog time.Duration // WATCHDOG_USEC; 0: no watchdog for this process
}

// FromEnv reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through lookup
// (os.LookupEnv) for the process pid (os.Getpid()). An unset NOTIFY_SOCKET
// gives a no-op notifier; a set but unusable one is an error, as systemd
// would otherwise kill a Type=notify service that never became ready.
func FromEnv(lookup func(string) (string, bool), pid int) (*Notifier, error) {
	n := &Notifier{}
	socket, ok := lookup("NOTIFY_SOCKET")
	if !ok || socket == "" {
		return n, nil
	}
	// systemd 252 sets a path or an abstract name; vsock: came in 253.
	if !strings.HasPrefix(socket, "/") && !strings.HasPrefix(socket, "@") {
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither a path nor an abstract socket name (@...)", socket)
	}
	// Go's syscall package turns a leading '@' into the abstract namespace's NUL.
	n.addr = &net.UnixAddr{Name: socket, Net: "unixgram"}
	usec, ok := lookup("WATCHDOG_USEC")
	if !ok || usec == "" {
		return n, nil
	}
	// WATCHDOG_PID names the process the watchdog is meant for; a child
	// that inherited the environment must not feed it.
	if p, ok := lookup("WATCHDOG_PID"); ok && p != "" && p != strconv.Itoa(pid) {
		return n, nil
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		return nil, fmt.Errorf("sdnotify: WATCHDOG_USEC %q is not a positive number of microseconds", usec)
	}
	n.watchdog = time.Duration(us) * time.Microsecond
	return n, nil
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// WatchdogTimeout is the service's WatchdogSec (0: no watchdog).
func (n *Notifier) WatchdogTimeout() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog
}

// Notify sends one datagram holding the given assignments, one a line
// ("READY=1", "STATUS=…"). Without NOTIFY_SOCKET it does nothing.
func (n *Notifier) Notify(states ...string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	// systemd reads the sender's credentials from the kernel (SO_PASSCRED);
	// with NotifyAccess=main only the main process is heard.
	if _, err := c.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Start says READY=1, feeds the watchdog (RunWatchdog) on a goroutine and
// returns stop, which says STOPPING=1 and returns once that goroutine has.
// Problems (a failed health check, a failed send) go to log. Without
// NOTIFY_SOCKET, Start and stop do nothing.
func (n *Notifier) Start(ctx context.Context, health func() error, log *slog.Logger) (stop func()) {
	if !n.Enabled() {
		return func() {}
	}
	if err := n.Notify(Ready); err != nil {
		log.Warn("telling systemd the agent is ready", "err", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.RunWatchdog(wctx, health, func(err error) { log.Warn("systemd watchdog", "err", err) })
	}()
	return func() {
		cancel()
		<-done
		if err := n.Notify(Stopping); err != nil {
			log.Warn("telling systemd the agent stops", "err", err)
		}
	}
}

// ErrUnhealthy wraps a failed health check: the watchdog was not fed.
var ErrUnhealthy = errors.New("sdnotify: not healthy, watchdog not fed")

// RunWatchdog sends WATCHDOG=1 every half WatchdogSec for as long as ctx
// lasts, but only when health() returns nil: a process that is alive but
// stuck then stops feeding the watchdog and systemd restarts it. It returns
// nil at once when there is no watchdog, and ctx's error when ctx ends.
// report, when not nil, hears of every failed check (wrapped in
// ErrUnhealthy) and failed send; a failed send is retried on the next tick.
func (n *Notifier) RunWatchdog(ctx context.Context, health func() error, report func(error)) error {
	every := n.WatchdogTimeout() / 2
	if every <= 0 {
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		err := health()
		if err == nil {
			err = n.Notify(Watchdog)
		} else {
			err = fmt.Errorf("%w: %w", ErrUnhealthy, err)
		}
		if err != nil && report != nil {
			report(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ErrStale is what Pulse.Check reports when no beat came within the limit.
var ErrStale = errors.New("sdnotify: no sign of life")

// Pulse records when some loop last showed it was alive (Beat) so that a
// watchdog's health check can ask how long ago that was. It is safe for
// concurrent use; the zero value has never beaten.
type Pulse struct{ last atomic.Int64 }

// Beat records a sign of life now.
func (p *Pulse) Beat() { p.last.Store(time.Now().UnixNano()) }

// Check returns nil when the last beat is no older than within, and
// ErrStale (wrapped, with the age) when it is older or there was none.
func (p *Pulse) Check(within time.Duration) error {
	last := p.last.Load()
	if last == 0 {
		return fmt.Errorf("%w: never", ErrStale)
	}
	if age := time.Since(time.Unix(0, last)); age > within {
		return fmt.Errorf("%w for %s", ErrStale, age.Round(time.Second))
	}
	return nil
}
