package agent

import (
	"sort"
	"sync"
	"time"
)

// The loop's helpers: the mailbox other goroutines leave their newest news
// in, the worker that does file work off the loop, and the loop's own
// timers.

// mailbox holds what other goroutines hand the agent where only the newest
// matters (the machine's devices, the fleet manager's release) or only the
// fact (a reconnect, dropped commands). Posting never blocks; wake tells
// the loop to look.
type mailbox struct {
	mu   sync.Mutex
	m    mail
	wake chan struct{}
}

type mail struct {
	inv       *Inventory
	fleet     *FleetUpdate
	connected bool
	dropped   int
}

func newMailbox() *mailbox { return &mailbox{wake: make(chan struct{}, 1)} }

func (b *mailbox) post(f func(m *mail)) {
	b.mu.Lock()
	f(&b.m)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *mailbox) inventory(inv Inventory) { b.post(func(m *mail) { m.inv = &inv }) }
func (b *mailbox) fleet(u FleetUpdate)     { b.post(func(m *mail) { m.fleet = &u }) }
func (b *mailbox) connected()              { b.post(func(m *mail) { m.connected = true }) }
func (b *mailbox) dropped()                { b.post(func(m *mail) { m.dropped++ }) }

// take empties the mailbox.
func (b *mailbox) take() mail {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.m
	b.m = mail{}
	return m
}

// worker runs file work (saving snapshots and timelapse frames, the
// resume state, deleting old recordings) off the loop, one job at a time,
// in order. A job returns what to do with its result on the loop (nil:
// nothing).
type worker struct {
	mu   sync.Mutex
	jobs []func() func()
	wake chan struct{}
}

func newWorker() *worker { return &worker{wake: make(chan struct{}, 1)} }

// do queues a job; it never blocks.
func (w *worker) do(job func() func()) {
	w.mu.Lock()
	w.jobs = append(w.jobs, job)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) next() (func() func(), bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.jobs) == 0 {
		return nil, false
	}
	j := w.jobs[0]
	w.jobs = w.jobs[1:]
	return j, true
}

// run does the jobs, handing their results to the loop as workDone events,
// until stop is closed; then it does what is still queued (a resume state
// saved at shutdown must reach the disk) and returns.
func (w *worker) run(stop <-chan struct{}, events chan<- any) {
	for {
		for {
			job, ok := w.next()
			if !ok {
				break
			}
			if done := job(); done != nil {
				select {
				case events <- workDone{done}:
				case <-stop:
				}
			}
		}
		select {
		case <-stop:
			for job, ok := w.next(); ok; job, ok = w.next() {
				job()
			}
			return
		case <-w.wake:
		}
	}
}

// timers are the loop's own timers, by name: what to do at a time (and
// again every `every`, for repeating ones). They run on the loop, so they
// touch the state like any step, and they end with it.
type timers struct {
	due map[string]timer
	t   *time.Timer
	at  time.Time // what t is set for (zero: not set)
}

type timer struct {
	at    time.Time
	every time.Duration
	fn    func()
}

// after runs fn once, d from now; a timer of the same name is replaced.
func (a *Agent) after(name string, d time.Duration, fn func()) {
	a.timers.due[name] = timer{at: time.Now().Add(d), fn: fn}
}

// every runs fn every d.
func (a *Agent) every(name string, d time.Duration, fn func()) {
	a.timers.due[name] = timer{at: time.Now().Add(d), every: d, fn: fn}
}

// pending reports whether a timer of that name is set.
func (t *timers) pending(name string) bool {
	_, ok := t.due[name]
	return ok
}

func (t *timers) cancel(name string) { delete(t.due, name) }

// fired is the channel of the next timer (nil, which never fires, when
// none is set).
func (t *timers) fired() <-chan time.Time {
	if t.t == nil || t.at.IsZero() {
		return nil
	}
	return t.t.C
}

// run runs every timer due by now, earliest first.
func (t *timers) run(now time.Time) {
	t.at = time.Time{}
	var names []string
	for n, tm := range t.due {
		if !tm.at.After(now) {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return t.due[names[i]].at.Before(t.due[names[j]].at) })
	for _, n := range names {
		tm, ok := t.due[n]
		if !ok { // cancelled by an earlier one
			continue
		}
		if tm.every > 0 {
			tm.at = now.Add(tm.every)
			t.due[n] = tm
		} else {
			delete(t.due, n)
		}
		tm.fn()
	}
}

// arm sets the one runtime timer for the earliest deadline.
func (t *timers) arm() {
	var next time.Time
	for _, tm := range t.due {
		if next.IsZero() || tm.at.Before(next) {
			next = tm.at
		}
	}
	if next.IsZero() {
		if t.t != nil {
			t.t.Stop()
		}
		t.at = time.Time{}
		return
	}
	if next.Equal(t.at) {
		return
	}
	d := max(0, time.Until(next))
	if t.t == nil {
		t.t = time.NewTimer(d)
	} else {
		t.t.Reset(d)
	}
	t.at = next
}

// stop ends every timer (Run's end).
func (t *timers) stop() {
	clear(t.due)
	if t.t != nil {
		t.t.Stop()
	}
}
