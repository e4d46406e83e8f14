package agent

import "strings"

// Camera is one camera the agent drives.
type Camera struct {
	Name string
	Spec CaptureSpec
	// AutoMic takes the camera's microphone from the machine's devices
	// (MAKERCAST_AUDIO=auto): its own (a webcam's) or a free one, else a
	// silent track. Spec.Audio then only gives the bitrate.
	AutoMic bool
}

// AutoCameras is the template for cameras found on the machine.
type AutoCameras struct {
	Spec    CaptureSpec
	AutoMic bool
}

// camera is one camera's part of the agent's state: its capture as the
// runner reports it, its hardware, its snapshots, timelapse and recording.
// Only the loop touches it.
type camera struct {
	cfg Camera
	// detected cameras (MAKERCAST_CAMERAS=auto) come and go with the
	// hardware; configured ones are always there (a configured USB camera
	// that is missing fails to open, with backoff).
	detected bool
	// dev is the camera's hardware as last handed to the runner; found is
	// its entry in the inventory (nil: not found, or a test or configured
	// libcamera camera, which the inventory does not track).
	dev   camDevice
	found *DetectedCamera
	// mic is the microphone the camera got first (with AutoMic): it gets it
	// back whenever it is plugged in.
	mic string

	capture captureStatus
	runner  *cameraRunner
	given   demand // the demand last handed to the runner

	snaps     snapQueue
	timelapse timelapse
	recording recording
}

// captureStatus is what the runner last reported of the capture.
type captureStatus struct {
	state, encoder, mode, lastError string
	stats                           *CameraStats // nil while the camera is closed
}

// cameraSet is every camera: configured ones first, then as found.
type cameraSet struct {
	byName map[string]*camera
	order  []string
	// names are the stable names given to detected cameras (identity →
	// name); inv is the machine's devices as last reported.
	names map[string]string
	inv   Inventory
	// lastSnap is the id of the last snapshot asked of any runner.
	lastSnap uint64
}

func (cs *cameraSet) get(name string) *camera { return cs.byName[name] }

// each calls fn for every camera in order.
func (cs *cameraSet) each(fn func(*camera)) {
	for _, n := range cs.order {
		fn(cs.byName[n])
	}
}

func (cs *cameraSet) add(c Camera, detected bool, slots int) *camera {
	c.Spec.Slots = slots
	cam := &camera{cfg: c, capture: captureStatus{state: CaptureIdle}, detected: detected,
		dev: camDevice{spec: c.Spec, present: !detected}}
	cs.byName[c.Name] = cam
	cs.order = append(cs.order, c.Name)
	return cam
}

// first is the default camera of a destination that names none: the first
// configured camera, or the first one found ("" until one is).
func (cs *cameraSet) first() string {
	if len(cs.order) == 0 {
		return ""
	}
	return cs.order[0]
}

// resolve is the one rule for a command's camera: the camera it names, or,
// when it names none, the only camera there is. With several, a command
// must say which: it is refused, not guessed.
func (cs *cameraSet) resolve(name string) (*camera, error) {
	if name == "" {
		if len(cs.order) != 1 {
			return nil, cmdErr(CodeBadPayload, "missing camera (there are %d: %s)", len(cs.order), strings.Join(cs.order, ", "))
		}
		name = cs.order[0]
	}
	c := cs.byName[name]
	if c == nil {
		return nil, cmdErr(CodeUnknownCamera, "no camera named %s", quote(name))
	}
	return c, nil
}

// sync brings the cameras in line with the inventory: detected cameras are
// added (with stable names) and marked plugged in or not, microphones are
// paired, and every camera's device is updated. It returns the cameras
// added; the caller hands the runners their devices.
func (cs *cameraSet) sync(auto *AutoCameras, slots int, onAdd func(name string, d DetectedCamera)) (added []string) {
	if auto != nil {
		cameraNames(cs.inv.Cameras, cs.names, func(n string) bool {
			c, ok := cs.byName[n]
			return ok && !c.detected
		})
		for _, d := range cs.inv.Cameras {
			name := cs.names[d.identity()]
			if _, ok := cs.byName[name]; ok {
				continue
			}
			spec := auto.Spec
			spec.Video.Source = d.Source
			cs.add(Camera{Name: name, Spec: spec, AutoMic: auto.AutoMic}, true, slots)
			onAdd(name, d)
			added = append(added, name)
		}
	}
	// Which inventory entry is each camera now?
	cs.each(func(c *camera) {
		c.found = nil
		for i, d := range cs.inv.Cameras {
			switch {
			case c.detected && cs.names[d.identity()] == c.cfg.Name,
				!c.detected && c.cfg.Spec.Video.Source == VideoV4L2 && d.matches(c.cfg.Spec.Video.Device):
				c.found = &cs.inv.Cameras[i]
			}
		}
	})
	// Microphones, for the cameras that take theirs from the machine.
	var micCams []DetectedCamera
	var micNames, prefer []string
	cs.each(func(c *camera) {
		// A detected camera that is unplugged takes no microphone (it would
		// keep one from a camera that is there).
		if c.cfg.AutoMic && !(c.detected && c.found == nil) {
			var d DetectedCamera
			if c.found != nil {
				d = *c.found
			}
			micCams, micNames, prefer = append(micCams, d), append(micNames, c.cfg.Name), append(prefer, c.mic)
		}
	})
	mics := map[string]string{}
	for i, m := range pairMics(micCams, cs.inv.Mics, prefer) {
		mics[micNames[i]] = m
		if c := cs.byName[micNames[i]]; c.mic == "" && m != "" {
			c.mic = m
		}
	}
	cs.each(func(c *camera) {
		spec := c.cfg.Spec
		present := true
		if c.detected {
			present = c.found != nil
			if present {
				spec.Video.Device = c.found.Device
			}
		}
		if c.cfg.AutoMic {
			spec.Audio.Source, spec.Audio.Device = AudioSilence, ""
			if m := mics[c.cfg.Name]; m != "" {
				spec.Audio.Source, spec.Audio.Device = AudioALSA, m
			}
		}
		c.dev = camDevice{spec: spec, present: present}
	})
	return added
}
