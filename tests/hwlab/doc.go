// Package hwlab is makercast's hardware lab: the agent's real V4L2 and ALSA
// code paths, exercised in a throw-away VM. `make hwlab` boots a stock Debian
// kernel under QEMU (software emulation) with emulated devices (vivid,
// v4l2loopback, snd-aloop, snd-dummy) and runs Go tests inside it; see
// README.md for what it proves and what it cannot.
//
// Everything but this file carries the hwlab build tag, so `make test` and
// `go vet ./...` do not see the lab. The package holds three things:
//
//   - the host driver, TestLab (lab_test.go): it finds the guest tests,
//     boots one VM per test (run-vm.sh), two at a time, and reports their
//     output and the HWLAB-BENCH lines as a table;
//   - the guest helpers (guest.go, agent.go): Modprobe, Unbind/Bind, Settle,
//     StartLoopbackWriter, PlayTone, StartAgent, MeanVolume, Bench; other
//     packages' hwlab tests may import them;
//   - the guest scenarios (TestGuest*), which skip unless
//     MAKERCAST_HWLAB_GUEST=1, that is outside the VM.
package hwlab
