package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Real-work job names.
const (
	JobGoBuild    = "go-build"
	JobCMake      = "c-make"
	JobGoTest     = "go-test"
	JobFileSearch = "file-search"
)

// PhaseRealWork and PhaseSustained name the slices of those phases.
const (
	PhaseRealWork  = "real-work"
	PhaseSustained = "sustained"
)

// goTestPackages are packages of this repository whose tests need no
// privileges and no kernel: the test-suite job runs them.
var goTestPackages = []string{"./internal/chain", "./internal/record", "./internal/decoder", "./internal/config", "./internal/ocsf"}

// searchNeedle is what the file search looks for: it occurs in one file
// the harness writes, so grep succeeds after reading every file.
const searchNeedle = "agenttrace-bench-needle-7f3a"

// realJob is one job of the real-work suite: what an agent runs, present on
// the machine and reproducible offline.
type realJob struct {
	Name  string
	Title string
	// Runs is how many times one slice runs the command: a short job runs
	// several times so that a slice is long enough to time.
	Runs int
	// command returns one slice's command line and environment; dir is the
	// slice's own scratch directory, removed after it.
	command func(h *harness, dir string) (argv, env []string)
}

var realJobs = []realJob{
	{Name: JobGoBuild, Runs: 1, command: func(h *harness, dir string) ([]string, []string) {
		return []string{h.cfg.Go, "-C", h.moduleCopy, "build", "./..."}, h.goEnv(filepath.Join(dir, "gocache"))
	}},
	{Name: JobCMake, Runs: 1, command: func(h *harness, dir string) ([]string, []string) {
		return []string{"make", "-s", "-j" + strconv.Itoa(runtime.NumCPU()), "-C", h.ctree, "O=" + filepath.Join(dir, "build")}, h.baseEnv()
	}},
	{Name: JobGoTest, Runs: 1, command: func(h *harness, dir string) ([]string, []string) {
		return append([]string{h.cfg.Go, "-C", h.moduleCopy, "test", "-count=1"}, goTestPackages...), h.goEnv(h.gocache)
	}},
	{Name: JobFileSearch, Runs: 2, command: func(h *harness, dir string) ([]string, []string) {
		return append([]string{"grep", "-r", "-n", "-I", "-s", "-F", searchNeedle}, h.searchDirs...), h.baseEnv()
	}},
}

// RealWorkNames lists every real-work job, in report order.
func RealWorkNames() []string {
	names := make([]string, len(realJobs))
	for i, j := range realJobs {
		names[i] = j.Name
	}
	return names
}

func lookupJob(name string) *realJob {
	for i := range realJobs {
		if realJobs[i].Name == name {
			return &realJobs[i]
		}
	}
	return nil
}

// title says what the job runs on this machine.
func (h *harness) jobTitle(j *realJob) string {
	switch j.Name {
	case JobGoBuild:
		return "`go build ./...` of this repository (a copy, which -mod=mod may tidy) with an empty build cache (GOCACHE a new empty directory, module cache warm, GOFLAGS=-mod=mod, GOPROXY=off)"
	case JobCMake:
		return fmt.Sprintf("`make -j%d` of a generated C project (%d files, gcc -O2, each including libc and project headers) into an empty build directory",
			runtime.NumCPU(), h.cfg.CFiles)
	case JobGoTest:
		return "`go test -count=1` of " + strings.Join(goTestPackages, " ") + " (the machine's build cache, warm; test results not cached)"
	case JobFileSearch:
		return fmt.Sprintf("`grep -r -n -I` for a string over %s (%d files), %d times", strings.Join(h.searchDirs, ", "), h.searchFiles, j.Runs)
	}
	return j.Name
}

// baseEnv is a real-work command's environment: only what the job needs.
func (h *harness) baseEnv() []string {
	env := []string{"PATH=" + filepath.Dir(h.goBin) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if home, err := os.UserHomeDir(); err == nil {
		env = append(env, "HOME="+home)
	}
	return env
}

// goEnv is the environment of a go command that must not reach the
// network or the user's build cache: the module cache is the machine's
// (warm), the build cache is gocache.
func (h *harness) goEnv(gocache string) []string {
	return append(h.baseEnv(), "GOCACHE="+gocache, "GOMODCACHE="+h.gomodcache, "GOFLAGS=-mod=mod", "GOPROXY=off",
		"GOTOOLCHAIN=local", "GOENV=off", "GOTELEMETRY=off")
}

// setupRealWork prepares what the jobs need: the runner, the C project,
// the search trees.
func (h *harness) setupRealWork(ctx context.Context) error {
	var err error
	if h.goBin, err = exec.LookPath(h.cfg.Go); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, h.cfg.Go, "env", "GOMODCACHE", "GOROOT", "GOCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return fmt.Errorf("go env GOMODCACHE GOROOT GOCACHE printed %q", out)
	}
	h.gomodcache, h.gocache = f[0], f[2]
	// The Go jobs build a copy: with -mod=mod the go command may rewrite
	// go.mod, and the harness must not change the source tree.
	h.moduleCopy = filepath.Join(h.dir, "module")
	if err := copyTree(h.module, h.moduleCopy); err != nil {
		return fmt.Errorf("copying the module: %w", err)
	}
	h.ctree = filepath.Join(h.dir, "ctree")
	if err := writeCProject(h.ctree, h.cfg.CFiles); err != nil {
		return fmt.Errorf("writing the C project: %w", err)
	}
	needle := filepath.Join(h.dir, "search")
	if err := os.MkdirAll(needle, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(needle, "needle.txt"), []byte(searchNeedle+"\n"), 0o644); err != nil {
		return err
	}
	h.searchDirs = slices.Clone(h.cfg.SearchDirs)
	if len(h.searchDirs) == 0 {
		h.searchDirs = []string{filepath.Join(f[1], "src"), h.gomodcache}
	}
	h.searchDirs = append(h.searchDirs, needle)
	for _, d := range h.searchDirs {
		filepath.WalkDir(d, func(_ string, e os.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				h.searchFiles++
			}
			return nil
		})
	}
	return nil
}

// copyTree copies the regular files and directories of src into dst,
// leaving out version control and build output.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if e.Name() == ".git" || rel == "bin" { // a worktree's .git is a file
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case e.IsDir():
			return os.MkdirAll(target, 0o755)
		case e.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		}
		return nil
	})
}

// writeCProject writes a C project of n source files, each with four
// functions and a header of its own, including libc's headers and its
// neighbour's, and a Makefile that builds it into $(O).
func writeCProject(dir string, n int) error {
	for _, d := range []string{"src", "include"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"Makefile": "O ?= build\nSRCS := $(wildcard src/*.c)\nOBJS := $(patsubst src/%.c,$(O)/%.o,$(SRCS))\n" +
			"$(O)/prog: $(OBJS)\n\t$(CC) -o $@ $^\n$(O)/%.o: src/%.c | $(O)\n\t$(CC) -O2 -Wall -Iinclude -c -o $@ $<\n$(O):\n\tmkdir -p $@\n",
		"include/common.h": "#ifndef COMMON_H\n#define COMMON_H\n#include <stddef.h>\n#include <stdint.h>\n" +
			"struct item { uint64_t key; uint32_t flags; char name[32]; };\nuint64_t mix(uint64_t a, uint64_t b);\n#endif\n",
		"src/main.c": "#include <stdio.h>\n#include \"common.h\"\n" +
			"uint64_t mix(uint64_t a, uint64_t b) { return (a ^ b) * 0x9E3779B97F4A7C15ull; }\n" +
			"int main(void) { printf(\"ok\\n\"); return 0; }\n",
	}
	const funcs = 4
	for i := range n {
		var hdr, src strings.Builder
		fmt.Fprintf(&hdr, "#ifndef MOD%d_H\n#define MOD%d_H\n#include \"common.h\"\n", i, i)
		fmt.Fprintf(&src, "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include \"common.h\"\n#include \"mod%d.h\"\n#include \"mod%d.h\"\n", i, (i+1)%n)
		for j := range funcs {
			fmt.Fprintf(&hdr, "uint64_t mod%d_f%d(struct item *it, size_t n);\n", i, j)
			fmt.Fprintf(&src, `
uint64_t mod%[1]d_f%[2]d(struct item *it, size_t n)
{
	uint64_t acc = %[3]d;
	for (size_t k = 0; k < n; k++) {
		switch ((it[k].flags + %[2]d) & 7) {
		case 0: acc = mix(acc, it[k].key); break;
		case 1: acc ^= strlen(it[k].name) * %[4]du; break;
		case 2: acc += (uint64_t)snprintf(it[k].name, sizeof(it[k].name), "m%[1]df%[2]d-%%llu", (unsigned long long)acc); break;
		case 3: acc = acc * 6364136223846793005ull + it[k].key; break;
		default: if (it[k].key > acc) acc = it[k].key - acc; else acc -= it[k].flags;
		}
	}
	return acc;
}
`, i, j, i*131+j, j+3)
		}
		hdr.WriteString("#endif\n")
		files[fmt.Sprintf("include/mod%d.h", i)] = hdr.String()
		files[fmt.Sprintf("src/mod%d.c", i)] = src.String()
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// realWorkConditions are the conditions the real-work suite and the
// sustained load run under: no tracer, agenttrace tracing the workload,
// and the peers.
func (h *harness) phaseConditions() []string {
	var conds []string
	for _, c := range []string{CondNone, CondTraced, CondAuditd, CondSnoop} {
		if h.ran(c) {
			conds = append(conds, c)
		}
	}
	return conds
}

// realWork runs the real-work suite: round 0, a warm-up with no tracer
// (page cache, the test job's build cache), then cfg.RealWorkRounds rounds
// in which every job runs once under every condition, condition order
// rotated by round. Each agenttrace slice has a session of its own.
func (h *harness) realWork(ctx context.Context) error {
	conds := h.phaseConditions()
	for round := 0; round <= h.cfg.RealWorkRounds; round++ {
		for _, name := range h.report.Settings.RealWork {
			j := lookupJob(name)
			w := &workload{Name: j.Name, Title: h.jobTitle(j), Program: "run", Tree: true}
			order := []string{CondNone}
			if round > 0 {
				order = rotate(conds, round-1)
			}
			for _, c := range order {
				if !h.ran(c) {
					continue // stopped during the run
				}
				dir := filepath.Join(h.dir, "job")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				argv, env := j.command(h, dir)
				run := sliceRun{Phase: PhaseRealWork, Round: round, Workload: w, Cond: c, MaxOps: int64(j.Runs), Record: true,
					Env: env, Operands: append([]string{"--"}, argv...)}
				var err error
				if c == CondTraced {
					err = h.agenttraceUnit(ctx, run, []string{CondTraced})
				} else {
					_, err = h.slice(ctx, run)
				}
				os.RemoveAll(dir)
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sustained runs the openat workload for cfg.Sustained without a pause
// under each condition, agenttrace writing its log on the same CPUs as in
// real use, for cfg.SustainedRounds rounds, condition order rotated by
// round. No warm-up round: the interleaved rounds ran before.
func (h *harness) sustained(ctx context.Context) error {
	conds := h.phaseConditions()
	w := lookupWorkload(WorkloadOpenat)
	for round := 1; round <= h.cfg.SustainedRounds; round++ {
		for _, c := range rotate(conds, round-1) {
			if !h.ran(c) {
				continue
			}
			run := sliceRun{Phase: PhaseSustained, Round: round, Workload: w, Cond: c, Duration: h.cfg.Sustained, Record: true}
			var err error
			if c == CondTraced {
				err = h.agenttraceUnit(ctx, run, []string{CondTraced})
			} else {
				_, err = h.slice(ctx, run)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func rotate(s []string, by int) []string {
	if len(s) == 0 {
		return nil
	}
	by %= len(s)
	return append(slices.Clone(s[by:]), s[:by]...)
}
