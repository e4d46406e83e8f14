// Package balena_test checks the balena example's files without Docker or
// balena, neither of which runs here (README.md, "What was tested").
package balena_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const root = "../.."

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// balenaComposeFields are the service fields balena supports
// (docs.balena.io, "docker-compose.yml fields").
var balenaComposeFields = []string{
	"build", "cap_add", "cap_drop", "cgroup_parent", "command", "cpu_quota", "cpu_shares", "cpuset",
	"depends_on", "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "environment",
	"extra_hosts", "group_add", "healthcheck", "hostname", "image", "ipc", "labels", "mac_address",
	"mem_limit", "mem_reservation", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid",
	"pids_limit", "ports", "privileged", "read_only", "restart", "security_opt", "shm_size",
	"stop_grace_period", "stop_signal", "sysctls", "tmpfs", "ulimits", "user", "userns_mode", "volumes",
	"working_dir",
}

type service struct {
	Build struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Privileged      bool              `yaml:"privileged"`
	NetworkMode     string            `yaml:"network_mode"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Labels          map[string]string `yaml:"labels"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
}

func TestCompose(t *testing.T) {
	text := read(t, "docker-compose.yml")
	var raw struct {
		Version  string                    `yaml:"version"`
		Services map[string]map[string]any `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatal(err)
	}
	var typed struct {
		Services map[string]service `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(text), &typed); err != nil {
		t.Fatal(err)
	}
	if raw.Version != "2.4" {
		t.Errorf("version %q: balena reads compose format 2.4", raw.Version)
	}
	if len(typed.Services) != 1 {
		t.Fatalf("%d services, want the agent only (the space's broker is used)", len(typed.Services))
	}
	for field := range raw.Services["makercast"] {
		if !slices.Contains(balenaComposeFields, field) {
			t.Errorf("field %s is not supported by balena", field)
		}
	}
	s, ok := typed.Services["makercast"]
	if !ok {
		t.Fatal("no makercast service")
	}
	if s.Build.Context != "." {
		t.Errorf("build context %q: the repository root (the compose file is copied there)", s.Build.Context)
	}
	if _, err := os.Stat(filepath.Join(root, s.Build.Dockerfile)); err != nil || !strings.HasSuffix(s.Build.Dockerfile, ".template") {
		t.Errorf("build dockerfile %q: %v", s.Build.Dockerfile, err)
	}
	if s.Labels["io.balena.features.supervisor-api"] != "1" {
		t.Errorf("labels %v lack io.balena.features.supervisor-api: '1'", s.Labels)
	}
	if !s.Privileged {
		t.Error("not privileged: hot-plugged cameras would not appear (see the comment)")
	}
	if s.NetworkMode != "host" {
		t.Errorf("network_mode %q: the default device id is the hostname, which is only stable on the host network", s.NetworkMode)
	}
	if s.Restart != "always" {
		t.Errorf("restart %q", s.Restart)
	}
	if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d < 15*time.Second {
		t.Errorf("stop_grace_period %q: the agent needs time to stop its streams and release the lock", s.StopGracePeriod)
	}
	if s.Environment["UDEV"] != "on" {
		t.Errorf("UDEV=%q, want on", s.Environment["UDEV"])
	}
	mediaDir := s.Environment["MAKERCAST_MEDIA_DIR"]
	mounted := false
	for _, v := range s.Volumes {
		name, target, _ := strings.Cut(v, ":")
		if strings.HasPrefix(name, "/") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "~") {
			t.Errorf("volume %q: balena allows no bind mounts", v)
		}
		if _, ok := raw.Volumes[name]; !ok {
			t.Errorf("volume %q is not declared at the top level", name)
		}
		mounted = mounted || (target == mediaDir && mediaDir != "")
	}
	if !mounted {
		t.Errorf("MAKERCAST_MEDIA_DIR %q is not on a volume (%v)", mediaDir, s.Volumes)
	}
	for k := range s.Environment {
		if strings.HasSuffix(k, "_PASSWORD") || strings.HasSuffix(k, "_KEY") {
			t.Errorf("%s in the compose file: secrets are device variables", k)
		}
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

func dockerfile(t *testing.T) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(read(t, "Dockerfile.template"), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// depsList reads a bash array such as runtime=( ... ) from scripts/deps.sh.
func depsList(t *testing.T, name string) []string {
	m := regexp.MustCompile(`(?ms)^` + name + `=\(([^)]*)\)`).FindStringSubmatch(read(t, filepath.Join(root, "scripts/deps.sh")))
	if m == nil {
		t.Fatalf("no %s=( ... ) in scripts/deps.sh", name)
	}
	list := strings.Fields(m[1])
	slices.Sort(list)
	return list
}

func argList(args map[string]string, name string) []string {
	list := strings.Fields(args[name])
	slices.Sort(list)
	return list
}

func TestDockerfile(t *testing.T) {
	ins := dockerfile(t)
	args := map[string]string{}
	var froms, runs []string
	var env, cmd string
	var copies []string
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
		case "ARG":
			name, value, _ := strings.Cut(in.args, "=")
			args[name] = strings.Trim(value, `"`)
		case "RUN":
			runs = append(runs, in.args)
		case "ENV":
			env += " " + in.args
		case "CMD":
			cmd = in.args
		case "COPY":
			copies = append(copies, in.args)
		}
	}
	if len(froms) != 2 {
		t.Fatalf("stages %q, want build and run", froms)
	}
	for _, f := range froms {
		if !strings.Contains(f, "bookworm") {
			t.Errorf("stage %q is not bookworm: the agent must run against the GStreamer it was built with", f)
		}
	}
	if got, want := argList(args, "RUNTIME_PACKAGES"), depsList(t, "runtime"); !slices.Equal(got, want) {
		t.Errorf("RUNTIME_PACKAGES %v\nscripts/deps.sh runtime %v", got, want)
	}
	if got, want := argList(args, "BUILD_PACKAGES"), depsList(t, "build"); !slices.Equal(got, want) {
		t.Errorf("BUILD_PACKAGES %v\nscripts/deps.sh build %v", got, want)
	}
	all := strings.Join(runs, "\n")
	for _, v := range []string{"$BUILD_PACKAGES", "$RUNTIME_PACKAGES", "$EXTRA_PACKAGES"} {
		if !strings.Contains(all, v) {
			t.Errorf("no RUN installs %s", v)
		}
	}
	if !strings.Contains(args["EXTRA_PACKAGES"], "gstreamer1.0-libcamera") {
		t.Error("no gstreamer1.0-libcamera for the Pi camera")
	}

	// The Go image is at least go.mod's Go version.
	m := regexp.MustCompile(`^golang:(\d+)\.(\d+)-bookworm AS build$`).FindStringSubmatch(froms[0])
	if m == nil {
		t.Fatalf("build stage %q, want golang:<major>.<minor>-bookworm AS build", froms[0])
	}
	g := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(read(t, filepath.Join(root, "go.mod")))
	if g == nil {
		t.Fatal("no go directive in go.mod")
	}
	image := [2]int{atoi(t, m[1]), atoi(t, m[2])}
	mod := [2]int{atoi(t, g[1]), atoi(t, g[2])}
	if image[0] < mod[0] || (image[0] == mod[0] && image[1] < mod[1]) {
		t.Errorf("golang:%s.%s is older than go.mod's go %s.%s", m[1], m[2], g[1], g[2])
	}
	if froms[1] != "balenalib/%%BALENA_ARCH%%-debian:bookworm-run" {
		t.Errorf("run stage %q", froms[1])
	}

	// The build: cgo, the agent, the release as its version.
	var build string
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=1", "./cmd/makercast-agent", "-X main.version=%%BALENA_RELEASE_HASH%%", "-o /out/makercast-agent"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build %q lacks %s", build, want)
		}
	}
	if !regexp.MustCompile(`(?m)^var version = `).MatchString(read(t, filepath.Join(root, "cmd/makercast-agent/main.go"))) {
		t.Error("cmd/makercast-agent has no var version for -X main.version")
	}
	if !slices.Contains(copies, "--from=build /out/makercast-agent /usr/local/bin/makercast-agent") ||
		cmd != `["/usr/local/bin/makercast-agent"]` {
		t.Errorf("the agent is not what runs: COPY %q, CMD %s", copies, cmd)
	}
	for _, c := range copies {
		if strings.HasPrefix(c, "--from") {
			continue
		}
		fields := strings.Fields(c)
		for _, src := range fields[:len(fields)-1] {
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("COPY source %s: %v", src, err)
			}
		}
	}
	if !regexp.MustCompile(`\bUDEV=on\b`).MatchString(env) {
		t.Errorf("ENV%s lacks UDEV=on", env)
	}

	// Only documented template variables (docs.balena.io, build variables).
	for _, v := range regexp.MustCompile(`%%([A-Z_]+)%%`).FindAllStringSubmatch(read(t, "Dockerfile.template"), -1) {
		if !slices.Contains([]string{"BALENA_APP_NAME", "BALENA_ARCH", "BALENA_MACHINE_NAME", "BALENA_RELEASE_HASH", "BALENA_SERVICE_NAME"}, v[1]) {
			t.Errorf("%%%%%s%%%% is not a balena build variable", v[1])
		}
	}

	// Every RUN is valid sh, once balena has filled in the template.
	fill := strings.NewReplacer("%%BALENA_ARCH%%", "aarch64", "%%BALENA_MACHINE_NAME%%", "raspberrypi4-64", "%%BALENA_RELEASE_HASH%%", "414e65cd378a69a96f403b75f14b40b5")
	for _, r := range runs {
		if out, err := exec.Command("sh", "-n", "-c", fill.Replace(r)).CombinedOutput(); err != nil {
			t.Errorf("RUN %s\n%s%v", r, out, err)
		}
	}
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestVariablesExist checks that every MAKERCAST_ variable the example
// names is one the agent has (the main README's table, which a test keeps
// equal to the code).
func TestVariablesExist(t *testing.T) {
	var known []*regexp.Regexp
	row := regexp.MustCompile("(?m)^\\| `(MAKERCAST_[A-Z0-9_<>]+)`")
	for _, m := range row.FindAllStringSubmatch(read(t, filepath.Join(root, "README.md")), -1) {
		// <NAME> stands for a destination's name, and for itself.
		pattern := strings.ReplaceAll(regexp.QuoteMeta(m[1]), "<NAME>", "(<NAME>|[A-Z0-9_]+)")
		known = append(known, regexp.MustCompile("^"+pattern+"$"))
	}
	if len(known) < 10 {
		t.Fatalf("only %d variables found in the main README's table", len(known))
	}
	used := regexp.MustCompile(`MAKERCAST_[A-Z0-9_<>]*[A-Z0-9>]`)
	for _, file := range []string{"README.md", "docker-compose.yml", "Dockerfile.template", "certs/README.md"} {
		for _, v := range used.FindAllString(read(t, file), -1) {
			if !slices.ContainsFunc(known, func(re *regexp.Regexp) bool { return re.MatchString(v) }) {
				t.Errorf("%s names %s, which the agent does not have", file, v)
			}
		}
	}
}
