package balena

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Device is GET /v1/device: the device as the supervisor reports it to
// balenaCloud, plus the update flags it keeps to itself. Fields the
// supervisor has not set yet are zero.
type Device struct {
	// Commit is the release running now.
	Commit string `json:"commit"`
	// Status is the first service's status: "Idle" (running), "Downloading",
	// "Downloaded", "Installing", "Starting", "Stopping", ...
	Status string `json:"status"`
	// DownloadProgress is the percentage of the first service's new image
	// downloaded, nil when nothing is downloading.
	DownloadProgress *int `json:"download_progress"`
	// UpdatePending is true while the supervisor checks for an update (at
	// boot and every poll) and when it has found one.
	UpdatePending bool `json:"update_pending"`
	// UpdateDownloaded is true when a pending update has been downloaded (it
	// then waits for the update lock to go).
	UpdateDownloaded bool `json:"update_downloaded"`
	// UpdateFailed is true when applying an update failed (locked, network,
	// ...).
	UpdateFailed      bool   `json:"update_failed"`
	OSVersion         string `json:"os_version"`
	SupervisorVersion string `json:"supervisor_version"`
	IPAddress         string `json:"ip_address"`
}

// parseDevice decodes GET /v1/device. It accepts download_progress as a
// number, a numeric string (the balena SDK types it as a string) or null.
// (Not an UnmarshalJSON method: State embeds Device and would inherit it.)
func parseDevice(b []byte) (Device, error) {
	var raw struct {
		Device
		DownloadProgress json.RawMessage `json:"download_progress"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Device{}, err
	}
	d := raw.Device
	p, err := percent(raw.DownloadProgress)
	if err != nil {
		return Device{}, fmt.Errorf("download_progress: %w", err)
	}
	d.DownloadProgress = p
	return d, nil
}

// App is this app's entry in GET /v2/applications/state (supervisor v7.12+):
// the release the supervisor is to run and how far it got.
type App struct {
	Name  string `json:"-"` // the key it is listed under
	AppID int    `json:"appId"`
	// Commit is the target release: the one the supervisor applies, or waits
	// to apply while the update lock is held.
	Commit string `json:"commit"`
	// UpdateStatus (supervisor v17.7+) is the target release's status:
	// "done", "downloading", "downloaded", "applying changes", "aborted" or
	// "rejected"; empty on older supervisors.
	UpdateStatus string                `json:"updateStatus"`
	Services     map[string]AppService `json:"services"`
}

// AppService is one service of the target release.
type AppService struct {
	Status           string `json:"status"`
	DownloadProgress *int   `json:"downloadProgress"`
}

// UnmarshalJSON accepts downloadProgress as a number, a numeric string or
// null.
func (s *AppService) UnmarshalJSON(b []byte) error {
	var raw struct {
		Status           string          `json:"status"`
		DownloadProgress json.RawMessage `json:"downloadProgress"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p, err := percent(raw.DownloadProgress)
	if err != nil {
		return fmt.Errorf("downloadProgress: %w", err)
	}
	*s = AppService{Status: raw.Status, DownloadProgress: p}
	return nil
}

func percent(raw json.RawMessage) (*int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, fmt.Errorf("not a number: %s", raw)
		}
		if f, err = strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64); err != nil {
			return nil, fmt.Errorf("not a number: %s", raw)
		}
	}
	p := min(max(int(f+0.5), 0), 100)
	return &p, nil
}

// State is what the agent shows about the release: GET /v1/device and this
// app's entry of GET /v2/applications/state together.
type State struct {
	Device
	// TargetCommit is the release the supervisor is to run (App.Commit);
	// empty when the supervisor does not say (older than v7.12, or no
	// target yet).
	TargetCommit string `json:"target_commit"`
	// UpdateStatus is App.UpdateStatus.
	UpdateStatus string `json:"update_status"`
	// TargetProgress is the mean download percentage of the target
	// release's services that are downloading, nil when none is.
	TargetProgress *int `json:"target_progress"`
}

// UpdateAvailable reports whether the supervisor has a release to run other
// than the one running: it is downloading or applying it, or waiting for the
// update lock.
func (s State) UpdateAvailable() bool {
	return s.TargetCommit != "" && s.Commit != "" && s.TargetCommit != s.Commit
}

// InProgress reports whether the new release is being downloaded or
// installed now. A release that is downloaded and waits for the update lock
// is available but not in progress.
func (s State) InProgress() bool {
	if !s.UpdateAvailable() {
		return false
	}
	switch s.UpdateStatus {
	case "downloading", "applying changes":
		return true
	case "":
		// Supervisors before v17.7: the first service's status.
		switch s.Status {
		case "Downloading", "Installing", "Starting", "Stopping":
			return true
		}
	}
	return false
}

// Percentage is the download progress of the new release while it is in
// progress, nil otherwise (or when the supervisor gives none).
func (s State) Percentage() *int {
	if !s.InProgress() {
		return nil
	}
	if s.TargetProgress != nil {
		return s.TargetProgress
	}
	return s.DownloadProgress
}

// Installed is the running release as a version for Home Assistant
// (Version(Commit)); empty before the first release is known.
func (s State) Installed() string { return Version(s.Commit) }

// Latest is the release the device will run: the target when the supervisor
// names one, else the running release.
func (s State) Latest() string {
	if s.TargetCommit != "" {
		return Version(s.TargetCommit)
	}
	return s.Installed()
}

// HAUpdate is the JSON state of a Home Assistant MQTT update entity: only
// keys its state_topic accepts (Home Assistant validates the JSON since
// 2024.11, which added in_progress and update_percentage), so publish it
// alone on the entity's topic, not inside a larger document.
type HAUpdate struct {
	InstalledVersion string `json:"installed_version"`
	LatestVersion    string `json:"latest_version"`
	Title            string `json:"title,omitempty"`
	InProgress       bool   `json:"in_progress"`
	UpdatePercentage *int   `json:"update_percentage"`
}

// HAUpdate gives the state for a Home Assistant update entity.
func (s State) HAUpdate(title string) HAUpdate {
	return HAUpdate{
		InstalledVersion: s.Installed(), LatestVersion: s.Latest(), Title: title,
		InProgress: s.InProgress(), UpdatePercentage: s.Percentage(),
	}
}

// Version shortens a release commit for display: its first 7 characters,
// more when needed to include one of d, e or f. Home Assistant decides
// whether latest_version is newer than installed_version with AwesomeVersion
// and only falls back to "different means newer" when a version cannot be
// parsed; a short commit of digits (1234567) or digits around a or b
// (1234b56, a PEP 440 pre-release) would parse and could compare as older,
// hiding the update. A d, e or f makes it unparseable. Equal commits give
// equal versions.
func Version(commit string) string {
	const short = 7
	if len(commit) <= short {
		return commit
	}
	n := short
	for n < len(commit) && !strings.ContainsAny(commit[:n], "def") {
		n++
	}
	return commit[:n]
}
