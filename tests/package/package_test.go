//go:build pkgtest

package pkgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/makercast/makercast/internal/testenv"
)

// TestPackageSystemd boots the hardware lab's kernel with systemd as PID 1 on
// this machine's / (read-only, under a tmpfs overlay) and runs TestGuestPackage
// inside as a systemd service: the .deb is installed with dpkg and its
// makercast.service runs under systemd (guest_test.go says what is checked).
// make package-test prepares the cache (kernel, guest test binary) and names
// the .deb; without them the test fails under PKGTEST_REQUIRED=1 and skips
// otherwise.
func TestPackageSystemd(t *testing.T) {
	cache, deb := os.Getenv("PKGTEST_CACHE"), os.Getenv("PKGTEST_DEB")
	missing := ""
	switch {
	case cache == "" || deb == "":
		missing = "PKGTEST_CACHE and PKGTEST_DEB are not set"
	case !exists(filepath.Join(cache, "KVER")) || !exists(filepath.Join(cache, "lab", "package.test")):
		missing = "no kernel or guest test binary in " + cache
	case !exists(deb):
		missing = deb + " does not exist"
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil && missing == "" {
		missing = "qemu-system-x86_64 is not installed"
	}
	if missing != "" {
		if os.Getenv("PKGTEST_REQUIRED") == "1" {
			t.Fatalf("%s (make package-test prepares everything)", missing)
		}
		t.Skipf("%s: run make package-test", missing)
	}
	lab := filepath.Join(cache, "lab")
	// The guest sees this machine's / at the same paths: the .deb and the
	// repository (for testenv's broker and nginx configs) need no copying.
	job := strings.Join([]string{
		"LAB_BIN=/lab/package.test",
		"LAB_DIR=" + filepath.Join(testenv.RepoRoot(t), "tests", "package"),
		"LAB_RUN=^TestGuest",
		"LAB_TIMEOUT=9m",
		"PKGTEST_DEB=" + deb,
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(lab, "job.env"), []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 13*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.RepoRoot(t), "tests", "package", "run-vm.sh"), cache)
	cmd.Env = append(os.Environ(), "VM_TIMEOUT=720")
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	outDir := filepath.Join(lab, "out")
	log, _ := os.ReadFile(filepath.Join(outDir, "log"))
	t.Logf("guest (%s in the VM, %s with boot and power-off):\n%s", guestTime(string(log)), wall.Round(time.Second), log)
	if err != nil {
		console, _ := os.ReadFile(filepath.Join(outDir, "console"))
		journal, _ := os.ReadFile(filepath.Join(outDir, "journal"))
		t.Fatalf("run-vm.sh: %v: %s\nconsole (tail):\n%s\njournal (tail):\n%s\n(everything in %s)",
			err, out, tail(stripANSI(string(console)), 30), tail(string(journal), 60), outDir)
	}
	// The guest passed only if its test ran and passed, none skipped.
	if !regexp.MustCompile(`(?m)^--- PASS: TestGuestPackage `).Match(log) || strings.Contains(string(log), "--- SKIP") {
		t.Fatalf("the guest test did not run and pass (log in %s)", outDir)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// guestTime is TestGuestPackage's own duration from go test -v.
func guestTime(log string) string {
	m := regexp.MustCompile(`--- (?:PASS|FAIL): TestGuestPackage \(([0-9.]+s)\)`).FindStringSubmatch(log)
	if m == nil {
		return "?"
	}
	return m[1]
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }
