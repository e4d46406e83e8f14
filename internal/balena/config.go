package balena

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/makercast/makercast/internal/secret"
)

// DefaultLockPath is where the update lock lives in a balena container: the
// supervisor bind-mounts the service's lock directory on the host at
// /tmp/balena (and at the legacy /tmp/resin) and sets BALENA_APP_LOCK_PATH
// to this path.
const DefaultLockPath = "/tmp/balena/updates.lock"

// Config is what the supervisor tells a service about itself through its
// environment.
type Config struct {
	// Address is the supervisor API's base URL, e.g. http://127.0.0.1:48484
	// (BALENA_SUPERVISOR_ADDRESS); only set for a service labelled
	// io.balena.features.supervisor-api: '1'.
	Address string
	// APIKey authenticates every call but /ping (BALENA_SUPERVISOR_API_KEY).
	// The supervisor scopes it to this service's app.
	APIKey secret.Secret
	// AppID is the fleet's app id (BALENA_APP_ID), needed for the /v2
	// service actions and to pick this app in /v2/applications/state.
	AppID int
	// ServiceName is this service's name in docker-compose.yml
	// (BALENA_SERVICE_NAME).
	ServiceName string
	// DeviceUUID is the device's balena UUID (BALENA_DEVICE_UUID).
	DeviceUUID string
	// LockPath is the update lock file (BALENA_APP_LOCK_PATH, or
	// DefaultLockPath when the process runs under balena); empty when not
	// under balena.
	LockPath string
}

// SupervisorAPI reports whether the supervisor API can be used: its address
// and key are only given to services with the supervisor-api label.
func (c Config) SupervisorAPI() bool { return c.Address != "" && c.APIKey != "" }

// UnderBalena reports whether the process runs as a balena service (the
// supervisor sets BALENA=1 and BALENA_APP_LOCK_PATH in every service).
func (c Config) UnderBalena() bool { return c.LockPath != "" }

// ConfigFromEnv reads the variables the balena supervisor sets in a
// service's environment; lookup is os.LookupEnv on a device and a map in
// tests. Supervisors older than v7.22 set RESIN_* instead of BALENA_*; both
// are read, BALENA_* first. Outside balena it returns a zero Config, which
// enables nothing.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) (string, string) {
		for _, ns := range []string{"BALENA_", "RESIN_"} {
			if v, ok := lookup(ns + name); ok && v != "" {
				return v, ns + name
			}
		}
		return "", "BALENA_" + name
	}
	var c Config
	var key string
	c.Address, _ = get("SUPERVISOR_ADDRESS")
	key, _ = get("SUPERVISOR_API_KEY")
	c.APIKey = secret.Secret(key)
	c.ServiceName, _ = get("SERVICE_NAME")
	c.DeviceUUID, _ = get("DEVICE_UUID")
	if c.Address != "" {
		u, err := url.Parse(c.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			_, name := get("SUPERVISOR_ADDRESS")
			return Config{}, fmt.Errorf("balena: %s must be an http:// URL such as http://127.0.0.1:48484, not %q", name, c.Address)
		}
	}
	if v, name := get("APP_ID"); v != "" {
		id, err := strconv.Atoi(v)
		if err != nil || id <= 0 {
			return Config{}, fmt.Errorf("balena: %s must be a positive number, not %q", name, v)
		}
		c.AppID = id
	}
	c.LockPath, _ = get("APP_LOCK_PATH")
	if c.LockPath == "" {
		for _, name := range []string{"BALENA", "RESIN"} {
			if v, _ := lookup(name); v == "1" {
				c.LockPath = DefaultLockPath
			}
		}
	}
	return c, nil
}
