// Package balena is the adapter to the balena supervisor, for an agent that
// runs as a balena service: the release the device runs and the one it will
// run, restarting the agent, rebooting the device, and the update lock that
// keeps a release push from cutting a live stream.
//
// # Under balena or not
//
// ConfigFromEnv reads what the supervisor puts in the service's environment
// (BALENA_* and, for supervisors before v7.22, RESIN_*). New returns
// ErrNoSupervisor unless BALENA_SUPERVISOR_ADDRESS and
// BALENA_SUPERVISOR_API_KEY are set, which the supervisor does only for a
// service labelled io.balena.features.supervisor-api: '1'; the agent then
// shows no balena entities. Config.UnderBalena (BALENA=1,
// BALENA_APP_LOCK_PATH) is enough for the update lock, which needs no API.
//
// # Supervisor API
//
// All calls but /ping carry the key as ?apikey=, as documented. The key is a
// secret.Secret and never appears in logs or errors: a failed request's
// *url.Error, which prints the URL, is unwrapped to its cause, and every
// error text is scrubbed of the key besides. Answers other than the
// documented success are *APIError (errors.Is ErrUpdatesLocked for 423,
// ErrUnauthorized for 401) carrying the supervisor's own message.
//
//	GET  /ping                                   "OK"                 Ping
//	GET  /v1/device                              JSON                 Device
//	GET  /v2/applications/state                  JSON (v7.12+)        App
//	POST /v1/update {"force":bool}               204; 202 ignored     Update
//	POST /v1/reboot {"force":bool}               202 {"Data":"OK"}    Reboot
//	POST /v1/blink                               200                  Blink
//	POST /v2/applications/:appId/restart-service
//	     {"serviceName":…,"force":bool}          200 "OK" (v8.2.2+)   RestartService
//
// Sources: docs.balena.io "Interacting with the balena Supervisor"
// (balena-io/docs pages/external-docs/supervisor-api.md) and the
// supervisor's routers (balena-os/balena-supervisor src/device-api/v1.ts,
// v2.ts, actions.ts, middleware/auth.ts, middleware/errors.ts), which also
// give what the documentation leaves out: POST /v1/update answers 202 and
// does nothing when instant updates are off and force is false; bodies are
// read only as JSON (Content-Type: application/json); a held update lock
// gives 423 with {"status":"failed","message":…} or, from /v1/reboot,
// {"Data":"","Error":…}; a missing or wrong key gives 401 "Unauthorized";
// the key is scoped to the service's app.
//
// Alternatives not used: POST /v2/applications/:appId/restart restarts
// every service of the app, and POST /v1/restart {"appId"} is its v1 form;
// restart-service restarts only this one. GET /v2/state/status has the
// running commit as "release" and an overall download percentage but no
// target; /v1/device already has the former.
//
// # Installed and latest release
//
// State joins /v1/device and this app's entry of /v2/applications/state.
// The installed release is /v1/device's commit (is_on__commit: what runs).
// The latest is /v2/applications/state's commit, which the supervisor takes
// from its target state in its database: the release it applies, or has
// downloaded and waits to apply while the update lock is held. Its
// updateStatus (v17.7+) says downloading, downloaded, applying changes,
// done, aborted or rejected; services' downloadProgress give the
// percentage. /v1/device's update_pending is not used to decide: it is also
// true while the supervisor merely checks.
//
// Limits: the supervisor learns of a release when balenaCloud tells it
// (instantly over the VPN, else at its poll, BALENA_SUPERVISOR_POLL_INTERVAL,
// 15 min by default), so "latest" is the newest release the device knows of,
// not the newest in the fleet. A device pinned to a release has that as
// target; an older supervisor without /v2/applications/state gives no
// target, and latest equals installed. Versions are short commits
// (Version), as balena release semvers are not visible to the device.
//
// # Update lock
//
// UpdateLock implements both of balena's locks on /tmp/balena/updates.lock:
// the file created with O_CREAT|O_EXCL (the supervisor does not stop the
// service for an update or a restart while it exists) and an exclusive flock
// on it (host OS update reboots wait), as in the meta-balena README's
// example. See UpdateLock for how a lock left by a crash is recognised and
// removed; besides that, the lock can be overridden from the dashboard
// ("Override the update lock" configuration) or with Update(ctx, true), and
// a reboot clears /tmp/balena.
//
// # Fakes
//
// Package balenatest is a fake supervisor (an httptest.Server) that answers
// as the documented API and the supervisor's source do, honouring an update
// lock file as the real one does, for the agent's tests.
package balena
