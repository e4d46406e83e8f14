package agent

import "time"

// Events come to the loop from the goroutines the agent started (camera
// runners, the health reader, background work); each kind is its own type
// and apply tells them apart with a type switch.

// captureChanged: a camera's capture opened, runs, failed or closed.
type captureChanged struct {
	camera  string
	state   string
	err     string
	retryIn time.Duration
	opened  *Resolved // what the media adapter chose, once it runs
}

// outputChanged: one consumer of a camera connects, is live, fails.
type outputChanged struct {
	camera  string
	id      consumerID
	gen     uint64
	state   string
	detail  string // what a connecting output waits for
	err     string
	retryIn time.Duration
}

// outputProgressed: a consumer's counters, read at `at`.
type outputProgressed struct {
	camera string
	id     consumerID
	gen    uint64
	at     time.Time
	p      OutputProgress
}

// segmentChanged: a recording opened or closed a file.
type segmentChanged struct {
	camera string
	id     consumerID
	gen    uint64
	seg    Segment
}

// cameraStatsRead: a running camera's frame rates.
type cameraStatsRead struct {
	camera string
	stats  CameraStats
}

// snapshotTaken: the picture a runner was asked for (id), or why not.
type snapshotTaken struct {
	camera string
	id     uint64
	pic    Picture
	err    error
}

// healthRead: the device's health, read off the loop.
type healthRead struct {
	report   any
	problems []string
}

// timelapseAssembled: a timelapse's video is encoded (or failed).
type timelapseAssembled struct {
	camera, session, out string
	frames               int
	err                  error
}

// fleetAnswered: the fleet manager answered an action.
type fleetAnswered struct {
	cmd Command
	err error
}

// workDone: a job of the file worker finished; done runs on the loop.
type workDone struct{ done func() }
