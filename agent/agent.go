package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Settings is what the agent is built from.
type Settings struct {
	Topics       Topics
	Cameras      []Camera
	Destinations []Destination
	// MaxOutputs bounds destinations per camera; the capture has a slot for
	// each and one for each consumer of the camera's own (consumerSlots).
	MaxOutputs int
	// PublishTimeout bounds each MQTT publish (default 2 s).
	PublishTimeout time.Duration
	// Reachable is the TCP probe used while a destination waits to retry
	// (default: a real dial with a 300 ms timeout); ProbeEvery its period.
	Reachable  Reachable
	ProbeEvery time.Duration
	// NewBackoff makes the retry schedule (default NewBackoff).
	NewBackoff func() *Backoff
	// Discovery, when set, announces the device to Home Assistant.
	Discovery Discovery
	// Snapshots, Timelapse, Recording and Telemetry tune those parts.
	Snapshots SnapshotSettings
	Timelapse TimelapseSettings
	Recording RecordingSettings
	Telemetry TelemetrySettings
	// CleanupDelay is how long after (re)connecting the agent waits for the
	// broker's retained discovery configs before clearing stale ones
	// (default 2 s).
	CleanupDelay time.Duration
	// AutoCameras, when set, makes every camera the machine has a camera of
	// the agent (MAKERCAST_CAMERAS=auto), as it is plugged in, with this
	// spec (device and microphone filled in per camera). Destinations
	// without a camera then go to the first camera found.
	AutoCameras *AutoCameras
	// Devices is what was plugged in at start-up; DevicesChanged reports
	// every change after.
	Devices Inventory
	// Resume, when set, keeps which configured destinations and recordings
	// are switched on, and Run switches them on again (MAKERCAST_RESUME): a
	// power cut or an update in the middle of an event does not end it.
	Resume StateFile
	// Fleet and UpdateLock, when set, are the fleet manager (balena): its
	// release and actions in Home Assistant, and updates held off while a
	// stream is on.
	Fleet      Fleet
	UpdateLock UpdateLock
}

// Message is one MQTT message handed to the agent.
type Message struct {
	Topic   string
	Payload []byte
	// Retained is set on a message the broker kept and sends again on
	// every (re)connect.
	Retained bool
}

// Agent is the device: it owns the state, runs the camera supervisors and
// answers commands. Run's loop is the only goroutine that touches the
// state; everything else hands it messages and events (see doc.go).
type Agent struct {
	s     Settings
	media Media
	store Store // nil: no media directory
	log   *slog.Logger

	inbox  chan Message // commands, from paho's goroutine
	events chan any     // from the goroutines the agent started
	mail   *mailbox     // newest inventory, fleet state, reconnects
	out    *outbox      // MQTT messages on their way: the loop never waits on the broker
	files  *worker      // file work: the loop never waits on the disk
	timers timers       // the loop's own timers

	cams  cameraSet
	dests destinationSet
	parts parts // discovery, health, fleet, resume
	shown shown // retained documents as last published

	nextGen uint64 // agent-wide: a destination added again never reuses one
	run     runGroup
}

// parts are the device-wide parts of the state.
type parts struct {
	discovery discoveryState
	health    healthState
	fleet     fleetState
	resume    resumeState
	retention retentionState
}

// runGroup is the goroutines Run starts: camera runners (also for cameras
// plugged in while it runs) and background work (timelapse encoding,
// fleet actions), all waited for before Run returns.
type runGroup struct {
	ctx      context.Context
	runners  sync.WaitGroup
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// New builds an agent. store may be nil (no media directory: no timelapse).
func New(s Settings, media Media, pub Publisher, store Store, log *slog.Logger) (*Agent, error) {
	s = withDefaults(s)
	if len(s.Cameras) == 0 && s.AutoCameras == nil {
		return nil, errors.New("agent: no camera")
	}
	a := &Agent{
		s: s, media: media, store: store, log: log,
		inbox:  make(chan Message, 64),
		events: make(chan any, 64),
		mail:   newMailbox(),
		out:    newOutbox(pub, s.PublishTimeout, log),
		files:  newWorker(),
		cams:   cameraSet{byName: map[string]*camera{}, names: map[string]string{}},
		dests:  destinationSet{byName: map[string]*destination{}},
		shown:  shown{docs: map[string][]byte{}, cleared: map[string]bool{}},
		timers: timers{due: map[string]timer{}},
	}
	a.parts.discovery = discoveryState{seen: map[string]bool{}, current: map[string]bool{}}
	for _, c := range s.Cameras {
		if !ValidName(c.Name) {
			return nil, fmt.Errorf("agent: camera name %q is not valid", c.Name)
		}
		if a.cams.get(c.Name) != nil {
			return nil, fmt.Errorf("agent: camera %q twice", c.Name)
		}
		a.cams.add(c, false, a.slots())
	}
	a.cams.inv = s.Devices
	a.syncCameras()
	for _, d := range s.Destinations {
		if d.Camera == "" {
			d.Camera = a.cams.first() // "" until a camera is found
		}
		if err := a.addDestination(d); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func withDefaults(s Settings) Settings {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	setInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	set(&s.PublishTimeout, 2*time.Second)
	set(&s.ProbeEvery, 200*time.Millisecond)
	set(&s.CleanupDelay, 2*time.Second)
	set(&s.Snapshots.MinInterval, 250*time.Millisecond)
	set(&s.Snapshots.Warmup, time.Second)
	set(&s.Timelapse.Interval, 10*time.Second)
	set(&s.Recording.Segment, time.Minute)
	set(&s.Recording.Fragment, time.Second)
	set(&s.Telemetry.Every, 30*time.Second)
	set(&s.Telemetry.Check, min(10*time.Second, s.Telemetry.Every))
	set(&s.Telemetry.Stats, 5*time.Second)
	setInt(&s.MaxOutputs, 6)
	setInt(&s.Snapshots.Quality, 85)
	setInt(&s.Timelapse.FPS, 25)
	setInt(&s.Timelapse.Quality, 90)
	if s.Reachable == nil {
		s.Reachable = dialReachable
	}
	if s.NewBackoff == nil {
		s.NewBackoff = NewBackoff
	}
	return s
}

// slots is how many outputs each capture has room for.
func (a *Agent) slots() int { return consumerSlots(a.s.MaxOutputs) }

func dialReachable(ctx context.Context, host string, port int) error {
	d := net.Dialer{Timeout: 300 * time.Millisecond}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return c.Close()
}

// Subscriptions are the MQTT filters the agent needs: its command topics
// and, with discovery, the birth topic and its own config topics.
func (a *Agent) Subscriptions() []string {
	subs := a.s.Topics.Subscriptions()
	if d := a.s.Discovery; d != nil {
		subs = append(subs, d.BirthTopic(), d.Filter())
	}
	return subs
}

// Deliver hands an MQTT message to the agent without blocking (it is called
// from paho's goroutine). It returns false when the inbox is full.
func (a *Agent) Deliver(m Message) bool {
	select {
	case a.inbox <- m:
		return true
	default:
		a.mail.dropped()
		return false
	}
}

// Connected tells the agent the MQTT session is (re)established, so it
// republishes its retained state. It never blocks.
func (a *Agent) Connected() { a.mail.connected() }

// DevicesChanged hands the agent the machine's devices after a change
// (internal/devices calls it from its own goroutine). It never blocks: an
// inventory not yet taken is replaced by the newer one.
func (a *Agent) DevicesChanged(inv Inventory) { a.mail.inventory(inv) }

// FleetChanged hands the agent the fleet manager's release state; it never
// blocks (a state not yet taken is replaced by the newer one).
func (a *Agent) FleetChanged(u FleetUpdate) { a.mail.fleet(u) }

// Run runs the agent until ctx ends, then stops every stream and returns
// once all goroutines it started have (the last messages are sent first).
//
// Each turn of the loop is one step: a command, an event, a timer or the
// mailbox changes the state; then afterStep derives what follows from it
// (each camera's demand, the published documents, the saved switches and
// the update lock), in one place.
func (a *Agent) Run(ctx context.Context) error {
	a.run.ctx = ctx
	a.run.bgCtx, a.run.bgCancel = context.WithCancel(context.Background())
	// The outbox and the file worker outlive the loop by a moment: what is
	// queued when it ends is still sent and saved.
	octx, stopOut := context.WithCancel(context.Background())
	stopFiles := make(chan struct{})
	var helpers sync.WaitGroup
	helpers.Add(2)
	go func() { defer helpers.Done(); a.out.run(octx) }()
	go func() { defer helpers.Done(); a.files.run(stopFiles, a.events) }()
	if a.s.Telemetry.Health != nil {
		helpers.Add(1)
		go func() { defer helpers.Done(); a.runHealth(ctx) }()
	}
	a.cams.each(a.startRunner)
	a.every("stats", a.s.Telemetry.Stats, a.statsTick)
	if a.s.Snapshots.Every > 0 {
		a.every("periodic snapshots", a.s.Snapshots.Every, a.periodicSnapshots)
	}
	a.startRetention()
	a.recoverTimelapses()
	a.resumeSwitches()
	a.afterStep()
	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			close(stopFiles)
			a.out.flush(a.s.PublishTimeout)
			stopOut()
			helpers.Wait()
			return nil
		case m := <-a.inbox:
			a.handle(m)
		case ev := <-a.events:
			a.apply(ev)
		case <-a.mail.wake:
			a.takeMail()
		case now := <-a.timers.fired():
			a.timers.run(now)
		}
		a.afterStep()
	}
}

// shutdown stops every camera (streams end with EOS) and the background
// work, and drops the update lock.
func (a *Agent) shutdown() {
	a.timers.stop()
	if a.parts.fleet.updatesHeld {
		if err := a.s.UpdateLock.Unlock(); err != nil { // streams end with the agent
			a.log.Warn("update lock", "hold", false, "err", err)
		}
	}
	// No runner is added once the loop has left: wait for all of them,
	// including cameras plugged in while running, and for background work.
	// They may be blocked handing over an event: keep draining until they
	// are gone.
	a.run.bgCancel()
	done := make(chan struct{})
	go func() { a.run.runners.Wait(); a.run.bg.Wait(); close(done) }()
	for {
		select {
		case <-a.events:
		case <-done:
			return
		}
	}
}

// afterStep derives from the state what follows from it: the demand each
// camera runner is given, waiting destinations' state, the retained
// documents (only those that changed are published), the switches saved
// for Resume and the update lock.
func (a *Agent) afterStep() {
	a.cams.each(a.reconcile)
	a.markWaiting()
	a.publishChanges()
	a.saveSwitches()
	a.holdUpdates()
	a.timers.arm()
}

// handle executes one command and always answers it. Discovery traffic
// (Home Assistant's birth message, this device's retained configs) is
// noted, not answered.
func (a *Agent) handle(m Message) {
	if a.discoveryMessage(m) {
		return
	}
	name := a.s.Topics.ResponseName(m.Topic)
	cmd, err := a.s.Topics.ParseCommand(m.Topic, m.Payload)
	if err == nil && m.Retained && fleetCommand(cmd.Name) {
		err = cmdErr(CodeBadPayload, "a retained fleet command is ignored (it would run again on every reconnect); clear it with mosquitto_pub -r -n -t %s", m.Topic)
	}
	if err == nil {
		var data any
		var answered bool
		data, answered, err = a.execute(cmd)
		if answered {
			return // answered later: when the picture is taken, the fleet manager is done
		}
		if err == nil {
			a.respond(name, cmd.Transaction, data, nil)
			return
		}
	}
	a.log.Info("command rejected", "topic", m.Topic, "error", err)
	a.respond(name, cmd.Transaction, nil, err)
}

// apply folds one event into the state.
func (a *Agent) apply(ev any) {
	switch ev := ev.(type) {
	case captureChanged:
		a.captureChanged(ev)
	case outputChanged:
		a.outputChanged(ev)
	case outputProgressed:
		a.outputProgressed(ev)
	case segmentChanged:
		a.segmentChanged(ev)
	case cameraStatsRead:
		if c := a.cams.get(ev.camera); c != nil && c.capture.state != CaptureIdle {
			c.capture.stats = &ev.stats
		}
	case snapshotTaken:
		a.snapshotTaken(ev)
	case healthRead:
		a.healthRead(ev)
	case timelapseAssembled:
		a.timelapseAssembled(ev)
	case fleetAnswered:
		a.fleetAnswered(ev)
	case workDone:
		ev.done()
	default:
		a.log.Error("unknown event", "type", fmt.Sprintf("%T", ev))
	}
}

// takeMail takes what other goroutines left in the mailbox.
func (a *Agent) takeMail() {
	m := a.mail.take()
	if m.dropped > 0 {
		a.log.Warn("commands arrive faster than they are handled; some were dropped", "dropped", m.dropped)
	}
	if m.inv != nil {
		a.devicesChanged(*m.inv)
	}
	if m.fleet != nil {
		a.parts.fleet.release = m.fleet
	}
	if m.connected {
		a.shown.resendAll()
		a.announce()
	}
}

func (a *Agent) startRunner(c *camera) {
	r := &cameraRunner{
		name: c.cfg.Name, dev: c.dev, media: a.media, log: a.log.With("camera", c.cfg.Name), events: a.events,
		demandc: make(chan demand, 1), devc: make(chan camDevice, 1), snapc: make(chan snapReq, 1),
		warmup: a.s.Snapshots.Warmup, reachable: a.s.Reachable, probeEvery: a.s.ProbeEvery,
		newBackoff: a.s.NewBackoff, statsEvery: a.s.Telemetry.Stats,
	}
	c.runner = r
	a.run.runners.Add(1)
	go func() { defer a.run.runners.Done(); r.run(a.run.ctx) }()
}

// syncCameras brings the cameras in line with the inventory and hands every
// runner its camera's hardware; a camera plugged in while Run is on gets
// its runner.
func (a *Agent) syncCameras() (added []string) {
	added = a.cams.sync(a.s.AutoCameras, a.slots(), func(name string, d DetectedCamera) {
		a.log.Info("camera found", "camera", name, "device", d.String())
	})
	a.cams.each(func(c *camera) {
		if c.runner != nil {
			c.runner.setDevice(c.dev)
		} else if a.run.ctx != nil { // plugged in while running
			a.startRunner(c)
		}
	})
	return added
}

// devicesChanged applies a new inventory: new cameras appear (MQTT state
// and Home Assistant discovery), and destinations waiting for a camera get
// the first one.
func (a *Agent) devicesChanged(inv Inventory) {
	before := map[string]bool{}
	a.cams.each(func(c *camera) { before[c.cfg.Name] = c.dev.present })
	a.cams.inv = inv
	added := a.syncCameras()
	a.cams.each(func(c *camera) {
		if was, ok := before[c.cfg.Name]; ok && was != c.dev.present {
			a.log.Info("camera", "camera", c.cfg.Name, "plugged_in", c.dev.present)
		}
	})
	if len(added) == 0 {
		return
	}
	if first := a.cams.first(); first != "" {
		a.dests.each(func(d *destination) {
			if d.cfg.Camera == "" {
				d.cfg.Camera = first
				a.log.Info("destination bound to the first camera found", "destination", d.cfg.Name, "camera", first)
			}
		})
	}
	a.announce()
}

// reconcile hands a camera's runner its demand when it changed.
func (a *Agent) reconcile(c *camera) {
	d := a.demandOf(c)
	if c.runner == nil || d.same(c.given) {
		return
	}
	c.given = d
	c.runner.setDemand(d)
}

// demandOf is why camera c should be open now: its destinations switched
// on, its recording, and snapshots kept warm.
func (a *Agent) demandOf(c *camera) demand {
	d := demand{consumers: map[consumerID]consumer{}, warm: a.s.Snapshots.KeepWarm}
	for _, dst := range a.dests.of(c.cfg.Name) {
		if dst.on {
			id := destinationConsumer(dst.cfg.Name)
			d.consumers[id] = consumer{id: id, out: dst.cfg.Output, gen: dst.gen}
		}
	}
	if r := &c.recording; r.on {
		d.consumers[recordingConsumer] = consumer{id: recordingConsumer, out: a.recordOutput(c.cfg.Name), gen: r.gen}
	}
	return d
}

// markWaiting shows destinations switched on whose camera is not there
// (not plugged in yet) as retrying, and says what they wait for.
func (a *Agent) markWaiting() {
	a.dests.each(func(d *destination) {
		if !d.on || a.cams.get(d.cfg.Camera) != nil {
			return
		}
		d.state, d.retryIn = StateRetrying, 0
		d.lastError = "waiting for the camera to be plugged in"
		if d.cfg.Camera != "" {
			d.lastError = "waiting for camera " + d.cfg.Camera + " to be plugged in"
		}
	})
}

// newGen is the next generation of a switch-on.
func (a *Agent) newGen() uint64 {
	a.nextGen++
	return a.nextGen
}

// captureChanged applies a camera's capture state.
func (a *Agent) captureChanged(ev captureChanged) {
	c := a.cams.get(ev.camera)
	if c == nil {
		return
	}
	st := &c.capture
	st.state, st.lastError = ev.state, ev.err
	if ev.state == CaptureIdle {
		st.stats = nil // no stale rates
	}
	if ev.opened != nil {
		st.encoder, st.mode = ev.opened.Encoder, ev.opened.Mode
	}
	a.log.Info("camera", "camera", ev.camera, "state", ev.state, "encoder", st.encoder, "err", st.lastError)
}

// outputChanged applies the state of one of a camera's consumers.
func (a *Agent) outputChanged(ev outputChanged) {
	if ev.id == recordingConsumer {
		a.recordingChanged(ev)
		return
	}
	d := a.dests.get(ev.id.destinationName())
	if d == nil || !d.on || ev.gen != d.gen {
		return // a sender that has since been stopped or replaced
	}
	prev := d.state
	d.changed(ev, time.Now())
	if prev != d.state || ev.state != StateConnecting {
		a.log.Info("destination", "destination", d.cfg.Name, "state", d.state, "err", d.lastError, "detail", d.detail)
	}
}

// outputProgressed notes a consumer's counters.
func (a *Agent) outputProgressed(ev outputProgressed) {
	if ev.id == recordingConsumer {
		a.recordingProgressed(ev)
		return
	}
	d := a.dests.get(ev.id.destinationName())
	if d == nil || !d.on || ev.gen != d.gen {
		return
	}
	d.bytes, d.bytesAt, d.peers = ev.p.Bytes, ev.at, ev.p.Peers
}

// statsTick refreshes the shown statistics of every destination and
// recording; the documents that changed are published after the step.
func (a *Agent) statsTick() {
	now := time.Now()
	a.dests.each(func(d *destination) { d.tick(now) })
	a.cams.each(func(c *camera) { c.recording.tick(now) })
}
