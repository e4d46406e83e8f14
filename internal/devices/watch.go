package devices

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/makercast/makercast/agent"
)

// Watcher reports the machine's devices whenever they change.
type Watcher struct {
	Scanner *Scanner
	// Rescan is how often the devices are read without a uevent (a
	// v4l2loopback node becomes a camera silently); default 2 s. Nodes
	// known to be cameras are not opened again by a rescan.
	Rescan time.Duration
	// Settle is how long after a uevent the devices are read, so that a
	// burst of events (a webcam brings a video node, a metadata node and a
	// sound card) gives one report; default 100 ms.
	Settle time.Duration
	Log    *slog.Logger
	// Uevents opens the kernel's uevent stream (default: a netlink
	// socket); tests pass their own.
	Uevents func() (UeventSource, error)
}

// UeventSource yields kernel uevents. Read returns (nil, nil) when no event
// came within its poll interval, so that the reader can notice the end.
type UeventSource interface {
	Read() (Uevent, error)
	Close() error
}

// Uevent is one kernel device event.
type Uevent struct {
	Action, Subsystem, DevName string
}

// Run delivers the inventory after every change from last (the one read at
// start-up), until ctx ends. deliver must not block (agent.DevicesChanged
// does not).
func (w *Watcher) Run(ctx context.Context, last agent.Inventory, deliver func(agent.Inventory)) error {
	rescan := w.Rescan
	if rescan == 0 {
		rescan = 2 * time.Second
	}
	settle := w.Settle
	if settle == 0 {
		settle = 100 * time.Millisecond
	}
	open := w.Uevents
	if open == nil {
		open = openNetlink
	}
	changed := make(chan string, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if src, err := open(); err != nil {
		w.Log.Warn("no kernel uevents; devices are read every "+rescan.String()+" only", "err", err)
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer src.Close()
			w.read(ctx, src, changed)
		}()
	}
	tick := time.NewTicker(rescan)
	defer tick.Stop()
	var settleC <-chan time.Time
	lastErr := ""
	scan := func() {
		inv, err := w.Scanner.Scan()
		if msg := fmt.Sprint(err); err != nil && msg != lastErr {
			w.Log.Warn("reading devices", "err", err) // once, not every rescan
			lastErr = msg
		} else if err == nil {
			lastErr = ""
		}
		if !reflect.DeepEqual(inv, last) {
			last = inv
			w.Log.Info("devices changed", "cameras", len(inv.Cameras), "mics", len(inv.Mics))
			deliver(inv)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case node := <-changed:
			if node != "" {
				w.Scanner.Forget(node)
			}
			if settleC == nil {
				settleC = time.After(settle)
			}
		case <-settleC:
			settleC = nil
			scan()
		case <-tick.C:
			scan()
		}
	}
}

// read passes the names of changed video and sound nodes to changed ("" for
// a sound card) until ctx ends.
func (w *Watcher) read(ctx context.Context, src UeventSource, changed chan<- string) {
	for ctx.Err() == nil {
		ev, err := src.Read()
		if err != nil {
			w.Log.Warn("reading uevents; devices are read periodically only", "err", err)
			select {
			case changed <- "*": // what was cached is no longer kept current
			default:
			}
			return
		}
		switch ev.Subsystem {
		case "video4linux", "sound":
		default:
			continue
		}
		node := ""
		if ev.Subsystem == "video4linux" {
			node = ev.DevName
		}
		select {
		case changed <- node:
		default: // a scan is coming anyway
		}
	}
}

// netlinkSource reads the kernel's uevents (NETLINK_KOBJECT_UEVENT, the
// kernel's multicast group): no udev daemon is needed, and devtmpfs has
// made the /dev node by the time the event is read.
type netlinkSource struct {
	fd  int
	buf []byte
}

func openNetlink() (UeventSource, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("devices: uevent socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: 1}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("devices: uevent socket: %w", err)
	}
	// Wake up twice a second so that Run can end.
	tv := syscall.NsecToTimeval(int64(500 * time.Millisecond))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("devices: uevent socket: %w", err)
	}
	return &netlinkSource{fd: fd, buf: make([]byte, 64<<10)}, nil
}

func (n *netlinkSource) Read() (Uevent, error) {
	k, _, err := syscall.Recvfrom(n.fd, n.buf, 0)
	switch {
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		return Uevent{}, nil
	case errors.Is(err, syscall.ENOBUFS):
		// Events were lost: every node may have changed.
		return Uevent{Action: "change", Subsystem: "video4linux", DevName: "*"}, nil
	case err != nil:
		return Uevent{}, fmt.Errorf("devices: uevent socket: %w", err)
	}
	return ParseUevent(n.buf[:k]), nil
}

func (n *netlinkSource) Close() error { return syscall.Close(n.fd) }

// ParseUevent reads a kernel uevent: "action@devpath" then NUL-separated
// KEY=value fields.
func ParseUevent(b []byte) Uevent {
	var ev Uevent
	for i, f := range bytes.Split(b, []byte{0}) {
		if i == 0 {
			continue // action@devpath
		}
		k, v, ok := bytes.Cut(f, []byte{'='})
		if !ok {
			continue
		}
		switch string(k) {
		case "ACTION":
			ev.Action = string(v)
		case "SUBSYSTEM":
			ev.Subsystem = string(v)
		case "DEVNAME":
			ev.DevName = string(bytes.TrimPrefix(v, []byte("/dev/")))
		}
	}
	return ev
}
