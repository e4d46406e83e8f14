package balena_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/makercast/makercast/internal/balena"
	"github.com/makercast/makercast/internal/balena/balenatest"
)

// The agent's use: the update entity's state from the supervisor, the lock
// held while live, and a restart refused while it is.
func Example() {
	dir, _ := os.MkdirTemp("", "balena")
	defer os.RemoveAll(dir)
	sup := balenatest.NewSupervisor(balenatest.Options{LockPath: filepath.Join(dir, "updates.lock")})
	defer sup.Close()
	pct := 42
	sup.SetTarget(&balenatest.Target{Commit: "217d55237092995e4576367e529ebb03", UpdateStatus: "downloading", Progress: &pct})

	cfg := sup.Config() // on a device: balena.ConfigFromEnv(os.LookupEnv)
	client, err := balena.New(cfg, nil, nil)
	if errors.Is(err, balena.ErrNoSupervisor) {
		return // not under balena: no balena entities
	}
	ctx := context.Background()
	state, _ := client.State(ctx)
	update, _ := json.Marshal(state.HAUpdate("makercast"))
	fmt.Println(string(update))

	lock := balena.NewUpdateLock(cfg.LockPath, nil)
	lock.ReleaseStale() // at start: a lock left by a crash goes
	lock.Lock()         // the stream goes live
	fmt.Println(errors.Is(client.RestartService(ctx, false), balena.ErrUpdatesLocked))
	lock.Unlock() // the stream has ended
	fmt.Println(client.RestartService(ctx, false))
	// Output:
	// {"installed_version":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","latest_version":"217d552","title":"makercast","in_progress":true,"update_percentage":42}
	// true
	// <nil>
}
