package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/makercast/makercast/agent"
	"github.com/makercast/makercast/internal/balena"
)

// fleet is the agent's fleet manager when it runs under balena: the
// supervisor's API (actions, release state) and the update lock. Either
// may be absent: the lock without the supervisor-api label, both outside
// balena.
type fleet struct {
	client *balena.Client
	poller *balena.Poller
	lock   *balena.UpdateLock
}

// newFleet reads balena's environment. A lock file left by a crashed run is
// released first, so that even an agent that stops on a bad variable never
// keeps a release out.
func newFleet(log *slog.Logger) (*fleet, error) {
	cfg, err := balena.ConfigFromEnv(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	f := &fleet{}
	if cfg.UnderBalena() {
		f.lock = balena.NewUpdateLock(cfg.LockPath, log)
		if released, err := f.lock.ReleaseStale(); err != nil {
			log.Warn("update lock left by an earlier run", "err", err)
		} else if released {
			log.Info("released the update lock an earlier run left")
		}
	}
	c, err := balena.New(cfg, nil, log)
	switch {
	case errors.Is(err, balena.ErrNoSupervisor):
	case err != nil:
		return nil, err
	default:
		f.client = c
	}
	return f, nil
}

// ports are the agent's Fleet and UpdateLock, nil when absent.
func (f *fleet) ports() (agent.Fleet, agent.UpdateLock) {
	var fl agent.Fleet
	var lock agent.UpdateLock
	if f.client != nil {
		fl = f
	}
	if f.lock != nil {
		lock = f.lock
	}
	return fl, lock
}

// report makes the release state go to the agent; call it before any
// goroutine uses the fleet (Install refreshes the poller).
func (f *fleet) report(ag *agent.Agent, log *slog.Logger) {
	if f.client == nil {
		return
	}
	f.poller = balena.NewPoller(f.client, func(s balena.State) {
		u := s.HAUpdate("makercast")
		ag.FleetChanged(agent.FleetUpdate{InstalledVersion: u.InstalledVersion, LatestVersion: u.LatestVersion,
			Title: u.Title, InProgress: u.InProgress, UpdatePercentage: u.UpdatePercentage})
	}, log)
}

// watch reads the release state until ctx ends.
func (f *fleet) watch(ctx context.Context) {
	if f.poller != nil {
		_ = f.poller.Run(ctx)
	}
}

func (f *fleet) refresh() {
	if f.poller != nil {
		f.poller.Refresh()
	}
}

// locked turns the supervisor's refusal into the agent's.
func locked(err error) error {
	if errors.Is(err, balena.ErrUpdatesLocked) {
		return fmt.Errorf("%w: %v", agent.ErrUpdatesLocked, err)
	}
	return err
}

// Install forces the update: the agent refuses it itself while a stream is
// on, and a forced update is the only one that does not wait for the next
// poll when instant updates are off.
func (f *fleet) Install(ctx context.Context) error {
	_, err := f.client.Update(ctx, true)
	f.refresh()
	return err
}

// RestartAgent and Reboot are not forced: while a stream is on the
// supervisor refuses them (the update lock).
func (f *fleet) RestartAgent(ctx context.Context) error {
	return locked(f.client.RestartService(ctx, false))
}

func (f *fleet) Reboot(ctx context.Context) error { return locked(f.client.Reboot(ctx, false)) }

func (f *fleet) Identify(ctx context.Context) error { return f.client.Blink(ctx) }
