// Package agent is makercast's domain: cameras, destinations, the commands
// that drive them and the state they report. It talks to GStreamer and MQTT
// only through the small interfaces in ports.go.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/makercast/makercast/internal/media/graph"
)

// Settings is what the agent is built from.
type Settings struct {
	Topics       Topics
	Cameras      []Camera
	Destinations []Destination
	// MaxOutputs bounds destinations per camera (the capture's slots).
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
	// Snapshots tune snapshots.
	Snapshots SnapshotSettings
	// Timelapse tunes timelapses.
	Timelapse TimelapseSettings
	// Telemetry tunes health and stream statistics.
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
	// Resume, when set, keeps which configured destinations are switched
	// on, and Run switches them on again (MAKERCAST_RESUME): a power cut or
	// an update in the middle of an event does not end it.
	Resume StateFile
	// Fleet and UpdateLock, when set, are the fleet manager (balena): its
	// release and actions in Home Assistant, and updates held off while a
	// stream is on.
	Fleet      Fleet
	UpdateLock UpdateLock
}

// AutoCameras is the template for cameras found on the machine.
type AutoCameras struct {
	Spec    graph.CaptureSpec
	AutoMic bool
}

type destStatus struct {
	dest       Destination
	on         bool
	gen        uint64
	state      string
	lastError  string
	reconnects int
	bytes      uint64
	liveSince  time.Time
	retryIn    time.Duration
	// bytes was read at bytesAt; prev* are the values at the last stats
	// tick, for the bitrate.
	bytesAt   time.Time
	prevBytes uint64
	prevAt    time.Time
	kbps      float64
}

type cameraStatus struct {
	cam       Camera
	state     string
	encoder   string
	mode      string
	lastError string
	stats     *CameraStats
	runner    *cameraRunner
	// dev is the camera's hardware as last handed to the runner; found is
	// the camera's entry in the inventory (nil: not found, or a test or
	// configured libcamera camera, which the inventory does not track).
	dev   camDevice
	found *DetectedCamera
	// detected cameras (MAKERCAST_CAMERAS=auto) come and go with the
	// hardware; configured ones are always there (a configured USB camera
	// that is missing fails to open, with backoff).
	detected bool
	// mic is the microphone the camera got first (with AutoMic): it gets it
	// back whenever it is plugged in.
	mic string
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
// answers commands. Run is its only goroutine that touches state.
type Agent struct {
	s     Settings
	media Media
	pub   Publisher
	log   *slog.Logger

	inbox     chan Message
	events    chan event
	connected chan struct{}
	dropped   chan struct{}

	cams     map[string]*cameraStatus
	camOrder []string // camera names: configured first, then as found
	dests    map[string]*destStatus
	order    []string // destination names, sorted

	// The machine's devices: the latest inventory and the stable names
	// given to detected cameras (identity → name).
	inv      Inventory
	camNames map[string]string
	devicec  chan Inventory
	// Camera runners: started by Run and by cameras plugged in later, all
	// under runCtx and waited for by Run.
	runCtx  context.Context
	runners sync.WaitGroup

	// Discovery configs of this device seen retained on the broker, and
	// the ones the current model publishes.
	seenConfigs    map[string]bool
	currentConfigs map[string]bool
	cleanup        chan struct{}

	snaps    map[string]*snapState
	nextSnap uint64
	snapTick chan string

	store  Store // nil: no media directory
	tls    map[string]*timelapse
	tlTick chan tlTickMsg
	tlDone chan tlResult
	// Background work (timelapse encoding), stopped and waited for by Run.
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc

	nextGen uint64

	// resumed is the switched-on destinations last saved for Resume.
	resumed []string

	// The fleet manager: its latest release state (published again on
	// reconnect), finished actions, and whether the update lock is held.
	fleetc      chan FleetUpdate
	fleetState  *FleetUpdate
	fleetDone   chan fleetResult
	fleetBusy   bool // one action at a time
	updatesHeld bool

	healthc  chan healthResult
	problems []string
	healthAt time.Time
	health   any // the last report, published again on reconnect
}

// New builds an agent. store may be nil (no media directory: no timelapse).
func New(s Settings, media Media, pub Publisher, store Store, log *slog.Logger) (*Agent, error) {
	if s.PublishTimeout == 0 {
		s.PublishTimeout = 2 * time.Second
	}
	if s.Reachable == nil {
		s.Reachable = dialReachable
	}
	if s.ProbeEvery == 0 {
		s.ProbeEvery = 200 * time.Millisecond
	}
	if s.NewBackoff == nil {
		s.NewBackoff = NewBackoff
	}
	if s.MaxOutputs == 0 {
		s.MaxOutputs = 6
	}
	if s.CleanupDelay == 0 {
		s.CleanupDelay = 2 * time.Second
	}
	if s.Snapshots.Quality == 0 {
		s.Snapshots.Quality = 85
	}
	if s.Snapshots.MinInterval == 0 {
		s.Snapshots.MinInterval = 250 * time.Millisecond
	}
	if s.Snapshots.Warmup == 0 {
		s.Snapshots.Warmup = time.Second
	}
	if s.Timelapse.Interval == 0 {
		s.Timelapse.Interval = 10 * time.Second
	}
	if s.Timelapse.FPS == 0 {
		s.Timelapse.FPS = 25
	}
	if s.Timelapse.Quality == 0 {
		s.Timelapse.Quality = 90
	}
	if s.Telemetry.Every == 0 {
		s.Telemetry.Every = 30 * time.Second
	}
	if s.Telemetry.Check == 0 {
		s.Telemetry.Check = min(10*time.Second, s.Telemetry.Every)
	}
	if s.Telemetry.Stats == 0 {
		s.Telemetry.Stats = 5 * time.Second
	}
	a := &Agent{
		s: s, media: media, pub: pub, log: log,
		inbox:     make(chan Message, 64),
		events:    make(chan event, 64),
		connected: make(chan struct{}, 1),
		dropped:   make(chan struct{}, 1),
		cams:      map[string]*cameraStatus{},
		dests:     map[string]*destStatus{},
		cleanup:   make(chan struct{}, 1),
		snaps:     map[string]*snapState{},
		snapTick:  make(chan string, 1),
		store:     store,
		tls:       map[string]*timelapse{},
		tlTick:    make(chan tlTickMsg, 8),
		tlDone:    make(chan tlResult, 8),
		healthc:   make(chan healthResult, 1),
		devicec:   make(chan Inventory, 1),
		fleetc:    make(chan FleetUpdate, 1),
		fleetDone: make(chan fleetResult, 4),
		camNames:  map[string]string{},

		seenConfigs:    map[string]bool{},
		currentConfigs: map[string]bool{},
	}
	if len(s.Cameras) == 0 && s.AutoCameras == nil {
		return nil, errors.New("agent: no camera")
	}
	for _, c := range s.Cameras {
		if !ValidName(c.Name) {
			return nil, fmt.Errorf("agent: camera name %q is not valid", c.Name)
		}
		if _, dup := a.cams[c.Name]; dup {
			return nil, fmt.Errorf("agent: camera %q twice", c.Name)
		}
		a.addCamera(c, false)
	}
	a.inv = s.Devices
	a.syncCameras()
	for _, d := range s.Destinations {
		if d.Camera == "" && s.AutoCameras != nil {
			d.Camera = a.defaultCamera() // "" until a camera is found
		}
		if err := a.addDest(d); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// addCamera adds a camera: configured ones at start, detected ones as they
// are plugged in. Its runner starts with Run, or, for a camera plugged in
// while Run is on, once syncCameras knows its device.
func (a *Agent) addCamera(c Camera, detected bool) *cameraStatus {
	c.Spec.Slots = a.s.MaxOutputs
	cs := &cameraStatus{cam: c, state: CaptureIdle, detected: detected,
		dev: camDevice{spec: c.Spec, present: !detected}}
	a.cams[c.Name] = cs
	a.camOrder = append(a.camOrder, c.Name)
	a.snaps[c.Name] = &snapState{}
	a.tls[c.Name] = &timelapse{}
	return cs
}

// defaultCamera is the camera a destination or command without one goes
// to: the first configured camera, or the first one found.
func (a *Agent) defaultCamera() string {
	if len(a.camOrder) == 0 {
		return ""
	}
	return a.camOrder[0]
}

func (a *Agent) startRunner(cs *cameraStatus) {
	r := &cameraRunner{
		name: cs.cam.Name, dev: cs.dev, media: a.media, log: a.log.With("camera", cs.cam.Name), events: a.events,
		wantc: make(chan map[string]want, 1), devc: make(chan camDevice, 1), snapc: make(chan snapReq, 1),
		warm: a.s.Snapshots.KeepWarm, warmup: a.s.Snapshots.Warmup,
		reachable: a.s.Reachable, probeEvery: a.s.ProbeEvery, newBackoff: a.s.NewBackoff,
		statsEvery: a.s.Telemetry.Stats,
	}
	cs.runner = r
	a.runners.Add(1)
	go func() { defer a.runners.Done(); r.run(a.runCtx) }()
}

// DevicesChanged hands the agent the machine's devices after a change
// (internal/devices calls it from its own goroutine). It never blocks: an
// inventory not yet taken is replaced by the newer one.
func (a *Agent) DevicesChanged(inv Inventory) {
	select {
	case <-a.devicec:
	default:
	}
	select {
	case a.devicec <- inv:
	default: // another caller got in between; its inventory is as new
	}
}

// syncCameras brings the cameras in line with the inventory: detected
// cameras are added (with stable names) and marked plugged in or not,
// microphones are paired, and every runner learns its camera's hardware.
// It returns the cameras added.
func (a *Agent) syncCameras() (added []string) {
	if auto := a.s.AutoCameras; auto != nil {
		cameraNames(a.inv.Cameras, a.camNames, func(n string) bool {
			cs, ok := a.cams[n]
			return ok && !cs.detected
		})
		for _, d := range a.inv.Cameras {
			name := a.camNames[d.identity()]
			if _, ok := a.cams[name]; ok {
				continue
			}
			spec := auto.Spec
			spec.Video.Source = graph.VideoSource(d.Source)
			a.addCamera(Camera{Name: name, Spec: spec, AutoMic: auto.AutoMic}, true)
			a.log.Info("camera found", "camera", name, "device", d.String())
			added = append(added, name)
		}
	}
	// Which inventory entry is each camera now?
	for _, n := range a.camOrder {
		cs := a.cams[n]
		cs.found = nil
		for i, d := range a.inv.Cameras {
			switch {
			case cs.detected && a.camNames[d.identity()] == n,
				!cs.detected && cs.cam.Spec.Video.Source == graph.VideoV4L2 && d.matches(cs.cam.Spec.Video.Device):
				cs.found = &a.inv.Cameras[i]
			}
		}
	}
	// Microphones, for the cameras that take theirs from the machine.
	var micCams []DetectedCamera
	var micNames, prefer []string
	for _, n := range a.camOrder {
		// A detected camera that is unplugged takes no microphone (it would
		// keep one from a camera that is there).
		if cs := a.cams[n]; cs.cam.AutoMic && !(cs.detected && cs.found == nil) {
			var d DetectedCamera
			if cs.found != nil {
				d = *cs.found
			}
			micCams, micNames, prefer = append(micCams, d), append(micNames, n), append(prefer, cs.mic)
		}
	}
	mics := map[string]string{}
	for i, m := range pairMics(micCams, a.inv.Mics, prefer) {
		mics[micNames[i]] = m
		if cs := a.cams[micNames[i]]; cs.mic == "" && m != "" {
			cs.mic = m
		}
	}
	for _, n := range a.camOrder {
		cs := a.cams[n]
		spec := cs.cam.Spec
		present := true
		if cs.detected {
			present = cs.found != nil
			if present {
				spec.Video.Device = cs.found.Device
			}
		}
		if cs.cam.AutoMic {
			spec.Audio.Source, spec.Audio.Device = graph.AudioSilence, ""
			if m := mics[n]; m != "" {
				spec.Audio.Source, spec.Audio.Device = graph.AudioALSA, m
			}
		}
		if present != cs.dev.present {
			a.log.Info("camera", "camera", n, "plugged_in", present)
		}
		cs.dev = camDevice{spec: spec, present: present}
		switch {
		case cs.runner != nil:
			cs.runner.setDevice(cs.dev)
		case a.runCtx != nil: // plugged in while running
			a.startRunner(cs)
		}
	}
	return added
}

// devicesChanged applies a new inventory: new cameras appear (MQTT state
// and Home Assistant discovery), destinations waiting for a camera get the
// first one, and every camera's state is published again.
func (a *Agent) devicesChanged(ctx context.Context, inv Inventory) {
	a.inv = inv
	added := a.syncCameras()
	if len(added) > 0 {
		if def := a.defaultCamera(); def != "" {
			for _, n := range a.order {
				if d := a.dests[n]; d.dest.Camera == "" {
					d.dest.Camera = def
					a.log.Info("destination bound to the first camera found", "destination", n, "camera", def)
					a.publishDest(ctx, d)
				}
			}
		}
		for _, n := range added {
			a.sync(ctx, a.cams[n]) // destinations waiting for it (switched on, resumed) start now
			a.publishTimelapse(ctx, n)
		}
		a.announce(ctx)
	}
	for _, n := range a.camOrder {
		a.publishCamera(ctx, a.cams[n])
	}
	a.publishJSON(ctx, a.s.Topics.State(), a.deviceState(), true)
}

func (a *Agent) addDest(d Destination) error {
	// With cameras found as they are plugged in, a destination may name one
	// that is not there yet ("" is the first one found); it waits for it.
	if _, ok := a.cams[d.Camera]; !ok && a.s.AutoCameras == nil {
		return &CommandError{CodeUnknownCamera, fmt.Sprintf("no camera named %s", quote(d.Camera))}
	}
	if _, dup := a.dests[d.Name]; dup {
		return &CommandError{CodeConflict, fmt.Sprintf("destination %s exists already", d.Name)}
	}
	n := 0
	for _, x := range a.dests {
		if x.dest.Camera == d.Camera {
			n++
		}
	}
	if n >= a.s.MaxOutputs {
		return &CommandError{CodeConflict, fmt.Sprintf("camera %s already has %d destinations (MAKERCAST_MAX_OUTPUTS)", d.Camera, n)}
	}
	a.dests[d.Name] = &destStatus{dest: d, state: StateIdle}
	a.order = append(a.order, d.Name)
	sort.Strings(a.order)
	return nil
}

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
		select {
		case a.dropped <- struct{}{}:
		default:
		}
		return false
	}
}

// Connected tells the agent the MQTT session is (re)established, so it
// republishes its retained state. It never blocks.
func (a *Agent) Connected() {
	select {
	case a.connected <- struct{}{}:
	default:
	}
}

// Run runs the agent until ctx ends, then stops every stream and returns
// once all goroutines it started have.
func (a *Agent) Run(ctx context.Context) error {
	rctx, cancel := context.WithCancel(ctx)
	a.bgCtx, a.bgCancel = context.WithCancel(context.Background())
	defer func() {
		a.bgCancel()
		a.bg.Wait()
	}()
	var wg sync.WaitGroup
	a.runCtx = rctx
	for _, n := range a.camOrder {
		a.startRunner(a.cams[n])
	}
	if a.s.Telemetry.Health != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.runHealth(rctx) }()
	}
	stats := time.NewTicker(a.s.Telemetry.Stats)
	defer stats.Stop()
	a.recoverTimelapses(ctx)
	a.resume(ctx)
	var periodic <-chan time.Time
	if a.s.Snapshots.Every > 0 {
		t := time.NewTicker(a.s.Snapshots.Every)
		defer t.Stop()
		periodic = t.C
	}
	for {
		select {
		case <-ctx.Done():
			cancel()
			if a.updatesHeld {
				if err := a.s.UpdateLock.Unlock(); err != nil { // streams end with the agent
					a.log.Warn("update lock", "hold", false, "err", err)
				}
			}
			// No runner is added once the loop has left: wait for all of
			// them, including cameras plugged in while running. They may be
			// blocked handing over an event: keep draining until they are gone.
			done := make(chan struct{})
			go func() { wg.Wait(); a.runners.Wait(); close(done) }()
			for {
				select {
				case <-a.events:
				case <-a.healthc:
				case <-done:
					return nil
				}
			}
		case m := <-a.inbox:
			a.handle(ctx, m)
		case ev := <-a.events:
			a.apply(ctx, ev)
		case inv := <-a.devicec:
			a.devicesChanged(ctx, inv)
		case u := <-a.fleetc:
			a.fleetState = &u
			a.publishJSON(ctx, a.s.Topics.FleetUpdate(), u, true)
		case r := <-a.fleetDone:
			a.fleetAnswered(ctx, r)
		case <-a.connected:
			a.publishAll(ctx)
			a.announce(ctx)
		case <-a.cleanup:
			a.clearStale(ctx)
		case <-a.snapTick:
			for _, st := range a.snaps {
				st.timer = false
			}
			for _, n := range a.camOrder {
				a.pumpSnapshots(n)
			}
		case <-periodic:
			a.periodicSnapshots()
		case t := <-a.tlTick:
			a.timelapseTick(t)
		case r := <-a.tlDone:
			a.timelapseDone(ctx, r)
		case h := <-a.healthc:
			a.gotHealth(ctx, h)
		case <-stats.C:
			a.statsTick(ctx)
			a.holdUpdates() // a lock that could not be taken is tried again
		case <-a.dropped:
			a.log.Warn("commands arrive faster than they are handled; some were dropped")
		}
	}
}

// handle executes one command and always answers it. Discovery traffic
// (Home Assistant's birth message, this device's retained configs) is
// noted, not answered.
func (a *Agent) handle(ctx context.Context, m Message) {
	if d := a.s.Discovery; d != nil {
		switch {
		case m.Topic == d.BirthTopic():
			if string(m.Payload) == "online" {
				a.log.Info("Home Assistant is online; announcing again")
				a.announce(ctx)
				a.publishAll(ctx)
			}
			return
		case d.Owns(m.Topic):
			if len(m.Payload) == 0 {
				delete(a.seenConfigs, m.Topic)
			} else {
				a.seenConfigs[m.Topic] = true
			}
			return
		}
	}
	name := a.s.Topics.ResponseName(m.Topic)
	cmd, err := a.s.Topics.ParseCommand(m.Topic, m.Payload)
	if err == nil && cmd.Name == CmdSnapshot {
		a.snapshot(ctx, cmd) // answered when the picture is taken
		return
	}
	if err == nil && m.Retained && fleetCommand(cmd.Name) {
		err = cmdErr(CodeBadPayload, "a retained fleet command is ignored (it would run again on every reconnect); clear it with mosquitto_pub -r -n -t %s", m.Topic)
	}
	var data any
	if err == nil {
		data, err = a.execute(ctx, cmd)
		if err == nil && fleetCommand(cmd.Name) {
			return // answered when the fleet manager is done
		}
	}
	if err != nil {
		a.log.Info("command rejected", "topic", m.Topic, "error", err)
	}
	a.respond(ctx, name, cmd.Transaction, data, err)
}

type response struct {
	Status      string `json:"status"`
	Data        any    `json:"data,omitempty"`
	Code        string `json:"code,omitempty"`
	Error       string `json:"error,omitempty"`
	Transaction string `json:"transaction,omitempty"`
}

func (a *Agent) execute(ctx context.Context, c Command) (any, error) {
	switch c.Name {
	case CmdStream:
		cam := c.Camera
		if cam == "" {
			if len(a.cams) != 1 {
				return nil, cmdErr(CodeBadPayload, "missing camera (there are %d)", len(a.cams))
			}
			for n := range a.cams {
				cam = n
			}
		}
		cs, ok := a.cams[cam]
		if !ok {
			return nil, cmdErr(CodeUnknownCamera, "no camera named %s", quote(cam))
		}
		var names []string
		for _, n := range a.order {
			if d := a.dests[n]; d.dest.Camera == cam {
				names = append(names, n)
			}
		}
		if c.On && len(names) == 0 {
			return nil, cmdErr(CodeConflict, "camera %s has no destination: configure MAKERCAST_STREAM_URL or add_destination", cam)
		}
		for _, n := range names {
			a.setOn(a.dests[n], c.On)
		}
		a.sync(ctx, cs)
		return map[string]any{"camera": cam, "state": onOff(c.On), "destinations": names}, nil
	case CmdDestination:
		d, ok := a.dests[c.Destination]
		if !ok {
			return nil, cmdErr(CodeUnknownDestination, "no destination named %s", quote(c.Destination))
		}
		if c.Camera != "" && c.Camera != d.dest.Camera {
			return nil, cmdErr(CodeBadValue, "destination %s is fed by camera %s, not %s", d.dest.Name, d.dest.Camera, quote(c.Camera))
		}
		a.setOn(d, c.On)
		a.sync(ctx, a.cams[d.dest.Camera])
		return map[string]any{"destination": d.dest.Name, "state": onOff(c.On)}, nil
	case CmdStatus:
		return a.deviceState(), nil
	case CmdFleetUpdate, CmdFleetRestart, CmdFleetReboot, CmdFleetIdentify:
		return nil, a.fleetCommand(c) // answered when done
	case CmdTimelapse:
		return a.timelapseCommand(ctx, c)
	case CmdTimelapseFrame:
		cam, err := a.camera(c.Camera)
		if err != nil {
			return nil, err
		}
		if err := a.timelapseFrame(cam); err != nil {
			return nil, err
		}
		return map[string]any{"camera": cam, "frames_so_far": a.tls[cam].frames}, nil
	case CmdAddDestination:
		cam := c.Camera
		if cam == "" {
			cam = a.defaultCamera()
		}
		d, err := ParseDestination(c.Destination, cam, c.URL, c.Key)
		if err != nil {
			return nil, &CommandError{Code: CodeBadValue, Message: err.Error()}
		}
		d.Runtime = true
		if err := a.addDest(d); err != nil {
			return nil, err
		}
		a.announce(ctx)
		a.publishDest(ctx, a.dests[d.Name])
		a.publishJSON(ctx, a.s.Topics.State(), a.deviceState(), true)
		return map[string]any{"destination": d.Name, "camera": cam, "url": d.Display()}, nil
	case CmdRemoveDestination:
		d, ok := a.dests[c.Destination]
		if !ok {
			return nil, cmdErr(CodeUnknownDestination, "no destination named %s", quote(c.Destination))
		}
		if !d.dest.Runtime {
			return nil, cmdErr(CodeConflict, "destination %s comes from the configuration; only destinations added over MQTT can be removed", d.dest.Name)
		}
		a.setOn(d, false)
		delete(a.dests, d.dest.Name)
		for i, n := range a.order {
			if n == d.dest.Name {
				a.order = append(a.order[:i], a.order[i+1:]...)
				break
			}
		}
		a.sync(ctx, a.cams[d.dest.Camera])
		a.publish(ctx, a.s.Topics.DestinationState(d.dest.Name), nil, true) // clear the retained state
		a.announce(ctx)
		a.publishJSON(ctx, a.s.Topics.State(), a.deviceState(), true)
		return map[string]any{"destination": d.dest.Name}, nil
	}
	return nil, cmdErr(CodeUnknownCommand, "unknown command %s", quote(c.Name))
}

func (a *Agent) setOn(d *destStatus, on bool) {
	if d.on == on {
		return
	}
	d.on = on
	if on {
		// Generations are agent-wide: a destination removed and added again
		// under the same name never reuses one, so an old sender (old URL
		// or key) can never be taken for the new one.
		a.nextGen++
		d.gen = a.nextGen
		d.state, d.lastError, d.retryIn = StateConnecting, "", 0
	} else {
		d.state, d.retryIn, d.liveSince, d.kbps = StateIdle, 0, time.Time{}, 0
	}
}

// sync hands the camera's runner its wanted destinations and publishes the
// resulting state.
func (a *Agent) sync(ctx context.Context, cs *cameraStatus) {
	if cs == nil { // destinations still waiting for their camera
		for _, n := range a.order {
			d := a.dests[n]
			if _, ok := a.cams[d.dest.Camera]; ok {
				continue
			}
			if d.on {
				d.state, d.retryIn = StateRetrying, 0
				d.lastError = "waiting for the camera to be plugged in"
				if d.dest.Camera != "" {
					d.lastError = "waiting for camera " + d.dest.Camera + " to be plugged in"
				}
			}
			a.publishDest(ctx, d)
		}
		a.publishJSON(ctx, a.s.Topics.State(), a.deviceState(), true)
		a.switched()
		return
	}
	w := map[string]want{}
	for _, n := range a.order {
		d := a.dests[n]
		if d.dest.Camera == cs.cam.Name && d.on {
			w[n] = want{dest: d.dest, gen: d.gen}
		}
	}
	if cs.runner != nil {
		cs.runner.setWant(w)
	}
	a.publishCamera(ctx, cs)
	for _, n := range a.order {
		if d := a.dests[n]; d.dest.Camera == cs.cam.Name {
			a.publishDest(ctx, d)
		}
	}
	a.publishJSON(ctx, a.s.Topics.State(), a.deviceState(), true)
	a.switched()
}

// switched follows the switches after a change: what is on is saved for
// Resume, and updates are held off while anything is on.
func (a *Agent) switched() {
	a.saveResume()
	a.holdUpdates()
}

// resumeState is what Resume keeps: the configured destinations switched on.
type resumeState struct {
	Streams []string `json:"streams"`
}

// resume switches on again the destinations that were on when the agent
// stopped (a power cut, kill -9, an update, a reboot: SIGTERM does not
// switch anything off).
func (a *Agent) resume(ctx context.Context) {
	if a.s.Resume == nil {
		return
	}
	b, err := a.s.Resume.Load()
	if err != nil || b == nil {
		if err != nil {
			a.log.Warn("cannot read what was streaming before; nothing resumed", "err", err)
		}
		return
	}
	var st resumeState
	if err := json.Unmarshal(b, &st); err != nil {
		a.log.Warn("the saved streaming state is unreadable; nothing resumed", "err", err)
		return
	}
	cams := map[string]bool{}
	for _, n := range st.Streams {
		d, ok := a.dests[n]
		if !ok || d.dest.Runtime {
			continue // no longer configured
		}
		a.log.Info("resuming a stream that was on when the agent stopped", "destination", n, "camera", d.dest.Camera)
		a.setOn(d, true)
		cams[d.dest.Camera] = true
	}
	for cam := range cams {
		a.sync(ctx, a.cams[cam]) // nil: waiting for its camera
	}
}

// saveResume saves the switched-on configured destinations when they
// changed. It writes a few bytes, synchronously: a switch is rare, and the
// state must be on disk before a power cut can follow.
func (a *Agent) saveResume() {
	if a.s.Resume == nil {
		return
	}
	on := []string{}
	for _, n := range a.order {
		if d := a.dests[n]; d.on && !d.dest.Runtime {
			on = append(on, n)
		}
	}
	if a.resumed != nil && slices.Equal(on, a.resumed) {
		return
	}
	b, _ := json.Marshal(resumeState{Streams: on})
	if err := a.s.Resume.Save(b); err != nil {
		a.log.Warn("cannot save what is streaming (it will not resume after a restart)", "err", err)
		return
	}
	a.resumed = on
}

// apply folds a runner event into the state and publishes what changed.
func (a *Agent) apply(ctx context.Context, ev event) {
	cs := a.cams[ev.camera]
	if cs == nil {
		return
	}
	if ev.snap != 0 {
		a.snapDone(ctx, ev)
		return
	}
	if ev.stats != nil {
		cs.stats = ev.stats
		a.publishJSON(ctx, a.s.Topics.CameraStats(ev.camera), ev.stats, true)
		return
	}
	if ev.dest == "" {
		if ev.state == CaptureIdle && cs.stats != nil {
			cs.stats = nil
			a.publish(ctx, a.s.Topics.CameraStats(ev.camera), nil, true) // no stale rates
		}
		cs.state, cs.lastError = ev.state, ev.err
		if ev.encoder != "" {
			cs.encoder, cs.mode = ev.encoder, ev.mode
		}
		a.log.Info("camera", "camera", ev.camera, "state", ev.state, "encoder", cs.encoder, "err", cs.lastError)
		a.publishCamera(ctx, cs)
		return
	}
	d := a.dests[ev.dest]
	if d == nil || !d.on || ev.gen != d.gen {
		return // a sender that has since been stopped or replaced
	}
	if ev.state == "" { // byte count only
		d.bytes, d.bytesAt = ev.bytes, ev.at
		return
	}
	prev := d.state
	d.state = ev.state
	switch ev.state {
	case StateLive:
		d.liveSince, d.lastError, d.retryIn = time.Now(), "", 0
		d.prevAt, d.kbps = time.Time{}, 0
	case StateRetrying, StateError:
		d.lastError, d.retryIn = ev.err, ev.retryIn
		d.liveSince = time.Time{}
		if prev == StateLive || prev == StateConnecting {
			d.reconnects++
		}
	}
	if prev != d.state || ev.state != StateConnecting {
		a.log.Info("destination", "destination", d.dest.Name, "state", d.state, "err", d.lastError)
	}
	a.publishDest(ctx, d)
	a.publishJSON(ctx, a.s.Topics.State(), a.deviceState(), true)
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

// DestinationState is the retained JSON of one destination.
type DestinationState struct {
	Switch     string `json:"switch"`
	State      string `json:"state"`
	Camera     string `json:"camera"`
	URL        string `json:"url"`
	LastError  string `json:"last_error"`
	Reconnects int    `json:"reconnects"`
	BytesSent  uint64 `json:"bytes_sent"`
	LiveSince  string `json:"live_since,omitempty"`
	LiveS      int64  `json:"live_s,omitempty"`
	// BitrateKbps is measured from the bytes written to the server.
	BitrateKbps float64 `json:"bitrate_kbps"`
	RetryInMS   int64   `json:"retry_in_ms,omitempty"`
}

// CameraState is the retained JSON of one camera.
type CameraState struct {
	Stream    string `json:"stream"`
	Capture   string `json:"capture"`
	Encoder   string `json:"encoder,omitempty"`
	LastError string `json:"last_error"`
	// PluggedIn is false while a detected camera is unplugged.
	PluggedIn bool `json:"plugged_in"`
	// Device is the camera's node now (or the test pattern); Mode is the
	// mode it was opened in ("mjpeg 640x480@15 → 1280x720@30"); Mic the
	// ALSA device of its sound ("" for a test tone or a silent track).
	Device string `json:"device,omitempty"`
	Mode   string `json:"mode,omitempty"`
	Mic    string `json:"mic,omitempty"`
}

// DeviceState is the retained JSON of the whole device.
type DeviceState struct {
	Cameras      map[string]CameraState      `json:"cameras"`
	Destinations map[string]DestinationState `json:"destinations"`
}

func (a *Agent) destState(d *destStatus) DestinationState {
	s := DestinationState{
		Switch: onOff(d.on), State: d.state, Camera: d.dest.Camera, URL: d.dest.Display(),
		LastError: d.lastError, Reconnects: d.reconnects, BytesSent: d.bytes, RetryInMS: d.retryIn.Milliseconds(),
	}
	if !d.liveSince.IsZero() {
		s.LiveSince = d.liveSince.UTC().Format(time.RFC3339)
		s.LiveS = int64(time.Since(d.liveSince) / time.Second)
	}
	s.BitrateKbps = math.Round(d.kbps*10) / 10
	return s
}

func (a *Agent) camStreaming(name string) bool {
	for _, d := range a.dests {
		if d.dest.Camera == name && d.on {
			return true
		}
	}
	return false
}

func (a *Agent) camState(cs *cameraStatus) CameraState {
	s := CameraState{Stream: onOff(a.camStreaming(cs.cam.Name)), Capture: cs.state, Encoder: cs.encoder, LastError: cs.lastError,
		PluggedIn: cs.dev.present, Device: cs.dev.spec.Video.Device, Mode: cs.mode, Mic: cs.dev.spec.Audio.Device}
	if s.Device == "" {
		s.Device = string(cs.dev.spec.Video.Source)
	}
	return s
}

func (a *Agent) deviceState() DeviceState {
	s := DeviceState{Cameras: map[string]CameraState{}, Destinations: map[string]DestinationState{}}
	for n, cs := range a.cams {
		s.Cameras[n] = a.camState(cs)
	}
	for n, d := range a.dests {
		s.Destinations[n] = a.destState(d)
	}
	return s
}

func (a *Agent) publishCamera(ctx context.Context, cs *cameraStatus) {
	a.publish(ctx, a.s.Topics.CameraStream(cs.cam.Name), []byte(onOff(a.camStreaming(cs.cam.Name))), true)
	a.publishJSON(ctx, a.s.Topics.CameraState(cs.cam.Name), a.camState(cs), true)
}

func (a *Agent) publishDest(ctx context.Context, d *destStatus) {
	a.publishJSON(ctx, a.s.Topics.DestinationState(d.dest.Name), a.destState(d), true)
}

func (a *Agent) publishAll(ctx context.Context) {
	for _, cs := range a.cams {
		a.publishCamera(ctx, cs)
		a.publishTimelapse(ctx, cs.cam.Name)
	}
	for _, n := range a.order {
		a.publishDest(ctx, a.dests[n])
	}
	a.publishJSON(ctx, a.s.Topics.State(), a.deviceState(), true)
	if a.health != nil {
		a.publishJSON(ctx, a.s.Topics.Health(), a.health, true)
	}
	if a.fleetState != nil {
		a.publishJSON(ctx, a.s.Topics.FleetUpdate(), a.fleetState, true)
	}
}

func (a *Agent) publishJSON(ctx context.Context, topic string, v any, retained bool) {
	b, err := json.Marshal(v)
	if err != nil {
		a.log.Error("encode state", "topic", topic, "err", err)
		return
	}
	a.publish(ctx, topic, b, retained)
}

func (a *Agent) publish(ctx context.Context, topic string, payload []byte, retained bool) {
	pctx, cancel := context.WithTimeout(ctx, a.s.PublishTimeout)
	defer cancel()
	if err := a.pub.Publish(pctx, topic, payload, retained); err != nil {
		// The full state is published again on every reconnect.
		a.log.Debug("publish failed", "topic", topic, "err", err)
	}
}

// model is what discovery describes.
func (a *Agent) model() Model {
	m := Model{Fleet: a.s.Fleet != nil}
	m.Cameras = append(m.Cameras, a.camOrder...)
	for _, n := range a.order {
		m.Destinations = append(m.Destinations, ModelDestination{Name: n, Camera: a.dests[n].dest.Camera})
	}
	return m
}

// announce publishes the discovery configs of the current model and, a
// moment later (once the broker has delivered what it retains), clears the
// configs of entities that no longer exist.
func (a *Agent) announce(ctx context.Context) {
	d := a.s.Discovery
	if d == nil {
		return
	}
	clear(a.currentConfigs)
	for _, m := range d.Configs(a.model()) {
		a.currentConfigs[m.Topic] = true
		a.publish(ctx, m.Topic, m.Payload, true)
	}
	time.AfterFunc(a.s.CleanupDelay, func() {
		select {
		case a.cleanup <- struct{}{}:
		default:
		}
	})
}

func (a *Agent) clearStale(ctx context.Context) {
	var stale []string
	for t := range a.seenConfigs {
		if !a.currentConfigs[t] {
			stale = append(stale, t)
		}
	}
	sort.Strings(stale)
	for _, t := range stale {
		a.log.Info("removing a stale Home Assistant entity", "topic", t)
		a.publish(ctx, t, nil, true)
		delete(a.seenConfigs, t)
	}
}
