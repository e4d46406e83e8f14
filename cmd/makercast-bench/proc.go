package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is the kernel's USER_HZ (getconf CLK_TCK), the unit of the
// utime and stime fields of /proc/<pid>/stat.
func clockTicks() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// parseStatTicks returns utime+stime from the text of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc: malformed stat")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("proc: short stat")
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc: utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc: stime: %w", err)
	}
	return ut + st, nil
}

// parseVmRSS returns VmRSS in kB (KiB) from the text of /proc/<pid>/status.
func parseVmRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("proc: no VmRSS")
}

// parseSysCPU returns busy and total jiffies from the "cpu" line of
// /proc/stat (idle and iowait count as not busy).
func parseSysCPU(stat string) (busy, total uint64, err error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, errors.New("proc: no cpu line in /proc/stat")
	}
	// user nice system idle iowait irq softirq steal (guest is in user).
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("proc: /proc/stat: %w", err)
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total, nil
}

func sysCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	busy, total, _ = parseSysCPU(string(b))
	return busy, total
}

func cpuTicksOf(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatTicks(string(b))
}

func rssKBOf(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(string(b))
}

// usage is what one measurement window saw of a process.
type usage struct {
	CPUPct float64 // share of one core, 100 = one full core
	SysPct float64 // the whole machine's busy time, same unit
	// OtherPct is SysPct minus the measured process and its companions
	// (nginx, the broker, this benchmark): load from anything else.
	OtherPct float64
	RSSMax   float64 // MiB
	RSSMean  float64 // MiB
	Samples  int
	Wall     time.Duration
}

// measure samples a process for d: CPU from the utime+stime delta over the
// window, RSS (VmRSS) at the start and then once a second. alive is checked
// at each sample; a process that dies fails the measurement. The CPU time
// of companions (processes the benchmark itself runs) is subtracted from the
// machine's busy time to tell how much other load there was.
func measure(pid int, d time.Duration, hz int, alive func() bool, companions ...int) (usage, error) {
	var u usage
	var rss []int64
	sample := func() error {
		if alive != nil && !alive() {
			return errors.New("process exited during the measurement")
		}
		kb, err := rssKBOf(pid)
		if err != nil {
			return err
		}
		rss = append(rss, kb)
		return nil
	}
	companionTicks := func() uint64 {
		var n uint64
		for _, c := range companions {
			if t, err := cpuTicksOf(c); err == nil {
				n += t
			}
		}
		return n
	}
	t0 := time.Now()
	sb0, st0 := sysCPU()
	k0 := companionTicks()
	c0, err := cpuTicksOf(pid)
	if err != nil {
		return u, err
	}
	if err := sample(); err != nil {
		return u, err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(t0) < d-100*time.Millisecond {
		<-tick.C
		if err := sample(); err != nil {
			return u, err
		}
	}
	c1, err := cpuTicksOf(pid)
	if err != nil {
		return u, err
	}
	k1 := companionTicks()
	sb1, st1 := sysCPU()
	u.Wall = time.Since(t0)
	u.CPUPct = float64(c1-c0) / float64(hz) / u.Wall.Seconds() * 100
	if st1 > st0 {
		u.SysPct = float64(sb1-sb0) / float64(st1-st0) * float64(runtime.NumCPU()) * 100
		u.OtherPct = max(0, u.SysPct-u.CPUPct-float64(k1-k0)/float64(hz)/u.Wall.Seconds()*100)
	}
	var sum, hi int64
	for _, v := range rss {
		sum += v
		hi = max(hi, v)
	}
	u.RSSMax = float64(hi) / 1024
	u.RSSMean = float64(sum) / float64(len(rss)) / 1024
	u.Samples = len(rss)
	return u, nil
}

// proc is a child process the benchmark started and must stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startProc starts argv with env (nil: a minimal PATH/HOME environment),
// output to a log file in dir. It is stopped by the section's cleanup with
// stopSig, then SIGKILL after grace.
func startProc(tb *benchTB, name string, argv []string, env []string, stopSig syscall.Signal, grace time.Duration) *proc {
	dir := tb.TempDir()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		tb.Fatalf("%s: log: %v", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group: a Ctrl-C reaches the benchmark only, which then
	// stops its children in order. Pdeathsig: nothing outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		tb.Fatalf("%s: start: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	tb.attachLog(name, logPath)
	tb.Cleanup(func() {
		if err := p.stop(stopSig, grace); err != nil {
			tb.Logf("%s: %v", name, err)
		}
	})
	return p
}

func (p *proc) Pid() int { return p.cmd.Process.Pid }

// Alive reports whether the process is still running.
func (p *proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends sig and waits up to grace, then kills. It reports a process
// that had to be killed; it is a no-op once the process has exited.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not exit within %s of %v; killed", grace, sig)
	}
}

// Stop stops the process now (the cleanup then has nothing left to do); the
// error says it had to be killed.
func (p *proc) Stop(sig syscall.Signal, grace time.Duration) error {
	if err := p.stop(sig, grace); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// envList turns a map into KEY=value entries, sorted for stable logs.
func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
