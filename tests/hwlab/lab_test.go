//go:build hwlab

package hwlab

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// TestLab is the host side of the lab (`make hwlab`). It finds the guest
// tests (guestTests), boots one VM per test, or per //hwlab:vm group, with
// run-vm.sh, HWLAB_PARALLEL at a time with HWLAB_SMP vCPUs each, and reports
// each VM as a subtest, printing the guest's go test output; then the
// HWLAB-BENCH lines as a table, also written to <cache>/lab/bench.md.
//
// Environment (the Makefile sets it): HWLAB_CACHE (default
// /var/cache/makercast-hwlab), HWLAB_GUEST_PKGS (default: every package with
// hwlab-only test files), HWLAB_RUN (a regexp on "<pkg>.<Test>": which guest
// tests), HWLAB_PARALLEL (1), HWLAB_SMP (2), HWLAB_TEST_TIMEOUT (per VM, 8m),
// HWLAB_REQUIRED (1: fail, not skip, when QEMU or the kernel is missing).
func TestLab(t *testing.T) {
	if Guest() {
		t.Skip("hwlab: the host driver does not run inside the VM")
	}
	cfg := labConfig(t)
	jobs := findJobs(t, cfg)
	if len(jobs) == 0 {
		t.Fatalf("hwlab: no guest tests to run (HWLAB_GUEST_PKGS=%q, HWLAB_RUN=%q)", strings.Join(cfg.pkgs, " "), cfg.run)
	}
	prev := loadDurations(cfg)
	// Longest first, as last measured (new ones first: they may be long):
	// with HWLAB_PARALLEL > 1 the VMs finish sooner.
	last := func(j job) float64 {
		if d, ok := prev[j.name]; ok {
			return d
		}
		return math.Inf(1)
	}
	sort.SliceStable(jobs, func(i, k int) bool { return last(jobs[i]) > last(jobs[k]) })

	start := time.Now()
	results := make([]result, len(jobs))
	queue := make(chan int, len(jobs))
	for i := range jobs {
		queue <- i
	}
	close(queue)
	var wg sync.WaitGroup
	for w := 0; w < cfg.parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				t.Logf("hwlab: VM %s: booting", jobs[i].name)
				results[i] = runJob(cfg, jobs[i])
				t.Logf("hwlab: VM %s: rc=%d after %.1f s", jobs[i].name, results[i].rc, results[i].wall.Seconds())
			}
		}()
	}
	wg.Wait()
	total := time.Since(start)

	for i, j := range jobs {
		r := results[i]
		t.Run(j.name, func(t *testing.T) { report(t, cfg, j, r) })
		if r.rc == 0 {
			prev[j.name] = r.wall.Seconds()
		}
	}
	saveDurations(t, cfg, prev)
	md := benchTable(jobs, results, total, cfg)
	fmt.Printf("\n%s\n", md)
	if err := os.WriteFile(filepath.Join(cfg.cache, "lab", "bench.md"), []byte(md), 0o644); err != nil {
		t.Errorf("hwlab: %v", err)
	}
}

type config struct {
	repo, cache, abi string
	pkgs             []string
	run              string
	runRe            *regexp.Regexp
	parallel, smp    int
	testTimeout      time.Duration
}

func labConfig(t *testing.T) config {
	t.Helper()
	required := os.Getenv("HWLAB_REQUIRED") == "1"
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if required {
			t.Fatalf("hwlab: %s (HWLAB_REQUIRED=1)", msg)
		}
		t.Skipf("hwlab: %s; skipped (set HWLAB_REQUIRED=1 to fail instead; `make hwlab` sets everything up)", msg)
	}
	c := config{
		repo:     testenv.RepoRoot(t),
		cache:    env("HWLAB_CACHE", "/var/cache/makercast-hwlab"),
		pkgs:     strings.Fields(os.Getenv("HWLAB_GUEST_PKGS")),
		run:      os.Getenv("HWLAB_RUN"),
		parallel: envInt(t, "HWLAB_PARALLEL", 1),
		smp:      envInt(t, "HWLAB_SMP", 2),
	}
	var err error
	if len(c.pkgs) == 0 {
		if c.pkgs, err = guestPkgs(c.repo); err != nil {
			t.Fatalf("hwlab: finding guest test packages: %v", err)
		}
	}
	if c.runRe, err = regexp.Compile(c.run); err != nil {
		t.Fatalf("hwlab: HWLAB_RUN: %v", err)
	}
	if c.testTimeout, err = time.ParseDuration(env("HWLAB_TEST_TIMEOUT", "8m")); err != nil {
		t.Fatalf("hwlab: HWLAB_TEST_TIMEOUT: %v", err)
	}
	if c.cache, err = filepath.Abs(c.cache); err != nil {
		t.Fatalf("hwlab: %v", err)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		missing("qemu-system-x86_64 is not installed (scripts/deps.sh hwlab)")
	}
	kver, err := os.ReadFile(filepath.Join(c.cache, "KVER"))
	if err != nil {
		missing("no kernel in %s (tests/hwlab/fetch-kernel.sh)", c.cache)
	}
	c.abi = strings.TrimSpace(string(kver))
	for _, f := range []string{"vmlinux", "initrd.gz"} {
		if !Exists(filepath.Join(c.cache, "kernel", c.abi, f)) {
			missing("kernel %s in %s has no %s (fetch-kernel.sh, build-v4l2loopback.sh, mkinitrd.sh)", c.abi, c.cache, f)
		}
	}
	if !Exists(filepath.Join(c.repo, "bin", "makercast-agent")) {
		missing("bin/makercast-agent is not built (make build)")
	}
	return c
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("hwlab: %s=%q: want a positive number", key, v)
	}
	return n
}

// guestPkgs finds, as the Makefile does, every package under repo with
// hwlab-only test files, as ./relative paths.
func guestPkgs(repo string) ([]string, error) {
	seen := map[string]bool{}
	var pkgs []string
	err := filepath.WalkDir(repo, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != repo && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		dir := filepath.Dir(path)
		if seen[dir] || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil || !hwlabOnly(f) {
			return nil // a broken file is go test's to report
		}
		seen[dir] = true
		rel, err := filepath.Rel(repo, dir)
		if err != nil {
			return err
		}
		pkgs = append(pkgs, "./"+filepath.ToSlash(rel))
		return nil
	})
	return pkgs, err
}

// job is one VM: the guest tests of one package that share it (by default
// each test has its own).
type job struct {
	name  string   // <pkg>.<Test> or <pkg>.<vm group>, also the VM's output directory
	tests []string // run with -test.run ^(A|B)$
	bin   string   // as the guest sees it: /lab/<pkg>.test
	dir   string   // the package's directory (the guest tests' working directory)
}

func (j job) run() string { return "^(" + strings.Join(j.tests, "|") + ")$" }

// findJobs lists the guest tests of each package in cfg.pkgs (guestTests)
// that match HWLAB_RUN, one VM each, or one VM per //hwlab:vm group. A
// package that does not exist or has no guest tests is skipped; one whose
// test binary `make hwlab` did not build is an error.
func findJobs(t *testing.T, cfg config) []job {
	t.Helper()
	var jobs []job
	bases := map[string]string{}
	for _, p := range cfg.pkgs {
		dir := filepath.Join(cfg.repo, filepath.FromSlash(p))
		tests, err := guestTests(dir)
		if err != nil {
			t.Fatalf("hwlab: %s: %v", p, err)
		}
		if len(tests) == 0 {
			t.Logf("hwlab: %s has no hwlab guest tests: skipped", p)
			continue
		}
		base := filepath.Base(dir)
		if other, dup := bases[base]; dup {
			t.Fatalf("hwlab: %s and %s would share the test binary %s.test: rename one package", other, p, base)
		}
		bases[base] = p
		bin := filepath.Join(cfg.cache, "lab", base+".test")
		if !Exists(bin) {
			t.Fatalf("hwlab: %s is missing: `make hwlab` builds it (go test -c -tags hwlab -o %s %s)", bin, bin, p)
		}
		warnIfStale(t, bin, dir)
		byVM := map[string]int{}
		for _, gt := range tests {
			if !cfg.runRe.MatchString(base + "." + gt.name) {
				continue
			}
			if i, ok := byVM[gt.vm]; ok {
				jobs[i].tests = append(jobs[i].tests, gt.name)
				continue
			}
			byVM[gt.vm] = len(jobs)
			jobs = append(jobs, job{name: base + "." + gt.vm, tests: []string{gt.name}, bin: "/lab/" + base + ".test", dir: dir})
		}
	}
	return jobs
}

// guestTest is one guest test and the VM it runs in.
type guestTest struct {
	name string
	vm   string // its own name, or the group its //hwlab:vm line names
}

// vmDirective, in a guest test's doc comment, puts it in a VM shared with
// the package's other tests of the same group (cheap tests that tolerate
// each other's kernel state): //hwlab:vm probes
var vmDirective = regexp.MustCompile(`^//hwlab:vm ([A-Za-z0-9_.-]+)\s*$`)

// guestTests returns the guest tests of dir: the Test functions of its
// _test.go files that build only with the hwlab tag, the host's TestLab*
// excepted (nil when dir does not exist).
func guestTests(dir string) ([]guestTest, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	var tests []guestTest
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("hwlab: %w", err)
		}
		if !hwlabOnly(af) {
			continue
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !isTestName(fd.Name.Name) || isHostTest(fd.Name.Name) || fd.Name.Name == "TestMain" {
				continue
			}
			gt := guestTest{name: fd.Name.Name, vm: fd.Name.Name}
			if fd.Doc != nil {
				for _, c := range fd.Doc.List {
					if m := vmDirective.FindStringSubmatch(c.Text); m != nil {
						gt.vm = m[1]
					}
				}
			}
			tests = append(tests, gt)
		}
	}
	return tests, nil
}

// hwlabOnly reports whether the file's //go:build line needs the hwlab tag.
func hwlabOnly(f *ast.File) bool {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				return false
			}
			with := expr.Eval(func(tag string) bool { return tag != "ignore" })
			without := expr.Eval(func(tag string) bool { return tag != "ignore" && tag != "hwlab" })
			return with && !without
		}
	}
	return false
}

// isHostTest: TestLab and TestLab* are this file's host-side tests.
func isHostTest(name string) bool { return strings.HasPrefix(name, "TestLab") }

func isTestName(name string) bool {
	if !strings.HasPrefix(name, "Test") {
		return false
	}
	rest := name[len("Test"):]
	return rest == "" || !(rest[0] >= 'a' && rest[0] <= 'z')
}

func warnIfStale(t *testing.T, bin, dir string) {
	t.Helper()
	bi, err := os.Stat(bin)
	if err != nil {
		return
	}
	srcs, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, s := range srcs {
		if si, err := os.Stat(s); err == nil && si.ModTime().After(bi.ModTime()) {
			t.Logf("hwlab: warning: %s is older than %s; `make hwlab` rebuilds it", bin, s)
			return
		}
	}
}

// result is what one VM left in <cache>/lab/out/<job>/.
type result struct {
	rc                     int
	wall                   time.Duration
	out                    string
	log, console, dmesg    string
	bootS                  string // guest uptime when userspace started
	runErr, stderr, outDir string
}

func runJob(cfg config, j job) result {
	out := filepath.Join(cfg.cache, "lab", "out", j.name)
	vmTimeout := cfg.testTimeout + 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(cfg.repo, "tests", "hwlab", "run-vm.sh"), cfg.cache, j.name)
	cmd.Env = append(os.Environ(),
		"LAB_BIN="+j.bin, "LAB_RUN="+j.run(), "LAB_DIR="+j.dir, "LAB_TIMEOUT="+cfg.testTimeout.String(),
		"LAB_ARGS=", "LAB_SCRIPT=", "LAB_UDEV=1",
		"SMP="+strconv.Itoa(cfg.smp), fmt.Sprintf("VM_TIMEOUT=%d", int(vmTimeout.Seconds())))
	start := time.Now()
	stderr, err := cmd.CombinedOutput()
	r := result{rc: -1, wall: time.Since(start), stderr: string(stderr), outDir: out}
	if err == nil {
		r.rc = 0
	} else if ee, ok := err.(*exec.ExitError); ok {
		r.rc = ee.ExitCode()
	} else {
		r.runErr = err.Error()
	}
	read := func(name string) string { b, _ := os.ReadFile(filepath.Join(out, name)); return string(b) }
	r.log, r.console, r.dmesg = read("log"), read("console"), read("dmesg")
	if m := regexp.MustCompile(`HWLAB: userspace up at ([0-9.]+)s`).FindStringSubmatch(r.console); m != nil {
		r.bootS = m[1]
	}
	return r
}

// report prints the guest's go test output and fails when the VM or the
// guest test failed, or when the guest test did not actually run.
func report(t *testing.T, cfg config, j job, r result) {
	t.Helper()
	fmt.Printf("──── guest %s (%.1f s, rc=%d; %s) ────\n%s", j.name, r.wall.Seconds(), r.rc, r.outDir, r.log)
	if !strings.HasSuffix(r.log, "\n") {
		fmt.Println()
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s\nrun-vm.sh: %s\n── console (tail) ──\n%s\n── dmesg (tail) ──\n%s",
			fmt.Sprintf(format, args...), strings.TrimSpace(r.stderr), Tail(r.console, 30), Tail(r.dmesg, 20))
	}
	switch {
	case r.runErr != "":
		fail("hwlab: run-vm.sh: %s", r.runErr)
		return
	case r.rc == 255:
		fail("hwlab: the VM for %s ended without an exit status (crashed or timed out)", j.name)
		return
	case r.rc != 0:
		fail("hwlab: guest tests %s failed (rc=%d); the output is above", j.name, r.rc)
		return
	}
	for _, test := range j.tests {
		switch {
		case strings.Contains(r.log, "--- SKIP: "+test+" "):
			fail("hwlab: guest test %s skipped inside the VM", test)
		case !strings.Contains(r.log, "--- PASS: "+test+" "):
			fail("hwlab: guest test %s did not report PASS", test)
		}
	}
}

// benchLine is one HWLAB-BENCH line from a guest.
type benchLine struct{ job, name, goal, measured, note string }

func benchLines(j job, log string) []benchLine {
	var out []benchLine
	for _, l := range strings.Split(log, "\n") {
		f := strings.Split(l, "\t")
		if len(f) == 5 && f[0] == BenchPrefix {
			out = append(out, benchLine{j.name, f[1], f[2], f[3], f[4]})
		}
	}
	return out
}

// benchTable is the run's Markdown report: the guests' measurements, then
// one row per VM.
func benchTable(jobs []job, results []result, total time.Duration, cfg config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Hardware lab (%s, kernel %s, %d VM(s) at a time, %d vCPU each, TCG)\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), cfg.abi, cfg.parallel, cfg.smp)
	b.WriteString("| guest test | measurement | goal | measured | note |\n|---|---|---|---|---|\n")
	for i, j := range jobs {
		for _, l := range benchLines(j, results[i].log) {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", l.job, md(l.name), md(l.goal), md(l.measured), md(l.note))
		}
	}
	b.WriteString("\n| VM | result | wall | guest userspace at |\n|---|---|---|---|\n")
	for i, j := range jobs {
		r := results[i]
		res := "pass"
		if r.rc != 0 {
			res = fmt.Sprintf("**fail** (rc=%d)", r.rc)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f s | %s s |\n", j.name, res, r.wall.Seconds(), r.bootS)
	}
	fmt.Fprintf(&b, "\nAll VMs: %.1f s wall.\n", total.Seconds())
	return b.String()
}

func md(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func durationsPath(cfg config) string { return filepath.Join(cfg.cache, "lab", "durations.json") }

// loadDurations reads each VM's wall time from the last run that passed.
func loadDurations(cfg config) map[string]float64 {
	d := map[string]float64{}
	if b, err := os.ReadFile(durationsPath(cfg)); err == nil {
		_ = json.Unmarshal(b, &d) // a damaged file only loses the ordering
	}
	return d
}

func saveDurations(t *testing.T, cfg config, d map[string]float64) {
	t.Helper()
	b, err := json.MarshalIndent(d, "", "  ")
	if err == nil {
		err = os.WriteFile(durationsPath(cfg), b, 0o644)
	}
	if err != nil {
		t.Logf("hwlab: durations: %v", err)
	}
}

// TestLabDiscovery checks how the driver finds guest tests, on the host.
func TestLabDiscovery(t *testing.T) {
	if Guest() {
		t.Skip("hwlab: host-side test")
	}
	repo := testenv.RepoRoot(t)
	pkgs, err := guestPkgs(repo)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pkgs, "./tests/hwlab") {
		t.Errorf("guestPkgs = %v, want ./tests/hwlab among them", pkgs)
	}
	tests, err := guestTests(filepath.Join(repo, "tests", "hwlab"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, gt := range tests {
		names = append(names, gt.name)
	}
	for _, want := range []string{"TestGuestDevices", "TestGuestRawLive", "TestGuestUnplugReplug"} {
		if !slices.Contains(names, want) {
			t.Errorf("guestTests(tests/hwlab) = %v, want %s", names, want)
		}
	}
	for _, host := range []string{"TestLab", "TestLabDiscovery"} {
		if slices.Contains(names, host) {
			t.Errorf("guestTests(tests/hwlab) = %v lists the host test %s", names, host)
		}
	}
	root := t.TempDir()
	dir := filepath.Join(root, "pkg", "x")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "//go:build hwlab\n\npackage x\n\nimport \"testing\"\n\n" +
		"func TestA(t *testing.T) {}\n\n// TestB shares a VM.\n//\n//hwlab:vm probes\nfunc TestB(t *testing.T) {}\n\n" +
		"//hwlab:vm probes\nfunc TestC(t *testing.T) {}\n\nfunc TestLabX(t *testing.T) {}\n\nfunc Testlower(t *testing.T) {}\n"
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "x_test.go"), src)
	write(filepath.Join(dir, "y_test.go"), "package x\n\nimport \"testing\"\n\nfunc TestUnit(t *testing.T) {}\n")
	got, err := guestTests(dir)
	want := []guestTest{{"TestA", "TestA"}, {"TestB", "probes"}, {"TestC", "probes"}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("guestTests = %+v, %v; want %+v", got, err, want)
	}
	write(filepath.Join(root, "cache", "lab", "x.test"), "")
	for run, want := range map[string][]string{"": {"x.TestA ^(TestA)$", "x.probes ^(TestB|TestC)$"}, "TestC": {"x.probes ^(TestC)$"}} {
		cfg := config{repo: root, cache: filepath.Join(root, "cache"), pkgs: []string{"./pkg/x", "./pkg/none"}, runRe: regexp.MustCompile(run)}
		var got []string
		for _, j := range findJobs(t, cfg) {
			got = append(got, j.name+" "+j.run())
		}
		if !slices.Equal(got, want) {
			t.Errorf("findJobs with HWLAB_RUN=%q = %q, want %q", run, got, want)
		}
	}
	if got, err := guestTests(filepath.Join(repo, "no", "such", "pkg")); err != nil || got != nil {
		t.Errorf("guestTests(missing dir) = %v, %v; want nothing, no error", got, err)
	}
	for src, want := range map[string]bool{
		"//go:build hwlab\n\npackage x\n":             true,
		"//go:build hwlab && linux\n\npackage x\n":    true,
		"//go:build linux\n\npackage x\n":             false,
		"//go:build !hwlab\n\npackage x\n":            false,
		"// a comment\n\n//go:build hwlab\npackage x": true,
		"package x\n\n//go:build hwlab\n":             false,
	} {
		f, err := parser.ParseFile(token.NewFileSet(), "x_test.go", src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if got := hwlabOnly(f); got != want {
			t.Errorf("hwlabOnly(%q) = %v, want %v", src, got, want)
		}
	}
	lines := benchLines(job{name: "j"}, "x\nHWLAB-BENCH\tunplug\t≤ 1 s\t0.50 s\tnote\nHWLAB-BENCH\tshort\n")
	if len(lines) != 1 || lines[0] != (benchLine{"j", "unplug", "≤ 1 s", "0.50 s", "note"}) {
		t.Errorf("benchLines = %+v", lines)
	}
}
