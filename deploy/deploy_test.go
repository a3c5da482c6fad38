// Package deploy_test checks the packaging in deploy/ against itself and the
// repository: the security-relevant fields of the Kubernetes manifest, the
// systemd unit (with systemd-analyze verify), and the Dockerfile's paths.
// None of it can run a container or a unit here; it checks what can be
// checked without one.
package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/config"
	"github.com/agenttrace/agenttrace/tools"
)

const (
	manifestPath   = "kubernetes/daemonset.yaml"
	unitPath       = "agenttrace.service"
	dockerfilePath = "Dockerfile"
	// The example configuration the systemd unit and the Docker image read
	// from /etc/agenttrace/agenttrace.yaml.
	hostConfigPath = "agenttrace.yaml"
	repoRoot       = ".."

	namespace = "agenttrace"
	// What `agenttrace keygen --out DIR` writes (cmd/agenttrace/verify.go).
	signingKeyName = "signing.key"
)

// daemonArgs is the daemon's command line after the binary, the same in the
// unit, the image and the DaemonSet.
var daemonArgs = []string{"daemon", "--config", "/etc/agenttrace/agenttrace.yaml"}

// capabilities are the only ones the daemon holds, without the CAP_ prefix
// (Kubernetes spelling): BPF and PERFMON load and attach the programs,
// SYS_ADMIN freezes cgroups and enters network namespaces, SYS_PTRACE and
// DAC_READ_SEARCH read other processes' /proc entries, SYS_RESOURCE raises
// RLIMIT_MEMLOCK on old kernels.
var capabilities = []string{"BPF", "DAC_READ_SEARCH", "PERFMON", "SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE"}

// The parts of Kubernetes objects these tests look at. Pointers tell an
// absent field from a zero one.
type objectMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type object struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
}

type configMap struct {
	object `yaml:",inline"`
	Data   map[string]string `yaml:"data"`
}

type daemonSet struct {
	object `yaml:",inline"`
	Spec   struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	HostPID                       *bool               `yaml:"hostPID"`
	HostNetwork                   *bool               `yaml:"hostNetwork"`
	HostIPC                       *bool               `yaml:"hostIPC"`
	AutomountServiceAccountToken  *bool               `yaml:"automountServiceAccountToken"`
	TerminationGracePeriodSeconds *int64              `yaml:"terminationGracePeriodSeconds"`
	Tolerations                   []map[string]string `yaml:"tolerations"`
	SecurityContext               map[string]any      `yaml:"securityContext"`
	InitContainers                []container         `yaml:"initContainers"`
	Containers                    []container         `yaml:"containers"`
	Volumes                       []volume            `yaml:"volumes"`
}

type container struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		HostPort      int    `yaml:"hostPort"`
	} `yaml:"ports"`
	ReadinessProbe *struct {
		HTTPGet *struct {
			Host string `yaml:"host"`
			Port int    `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
	LivenessProbe map[string]any `yaml:"livenessProbe"`
	Resources     struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *securityContext `yaml:"securityContext"`
	VolumeMounts    []volumeMount    `yaml:"volumeMounts"`
}

type securityContext struct {
	Privileged               *bool  `yaml:"privileged"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	Capabilities             *struct {
		Add  []string `yaml:"add"`
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
	SeccompProfile *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
	AppArmorProfile *struct {
		Type string `yaml:"type"`
	} `yaml:"appArmorProfile"`
}

type volumeMount struct {
	Name             string `yaml:"name"`
	MountPath        string `yaml:"mountPath"`
	SubPath          string `yaml:"subPath"`
	ReadOnly         bool   `yaml:"readOnly"`
	MountPropagation string `yaml:"mountPropagation"`
}

type volume struct {
	Name     string `yaml:"name"`
	HostPath *struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	} `yaml:"hostPath"`
	ConfigMap *struct {
		Name        string `yaml:"name"`
		DefaultMode *int   `yaml:"defaultMode"`
		Items       []any  `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName  string `yaml:"secretName"`
		DefaultMode *int   `yaml:"defaultMode"`
		Items       []any  `yaml:"items"`
	} `yaml:"secret"`
	Projected map[string]any `yaml:"projected"`
}

// loadConfig reads a configuration with the daemon's own loader (strict:
// unknown keys, bad values and bad targets are errors; defaults applied).
// It loads a private copy, so the checkout's file modes do not matter.
func loadConfig(t *testing.T, name string, data []byte) *config.Config {
	t.Helper()
	file := filepath.Join(t.TempDir(), "agenttrace.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(c.Targets) == 0 {
		t.Errorf("%s: no targets: the daemon refuses to start", name)
	}
	return c
}

// manifest is deploy/kubernetes/daemonset.yaml, decoded.
type manifest struct {
	kinds     []string
	namespace object
	configMap configMap
	daemonSet daemonSet
	config    *config.Config // the ConfigMap's configuration file
	configKey string         // its key in the ConfigMap
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	f, err := os.Open(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m manifest
	dec := yaml.NewDecoder(f)
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", manifestPath, len(m.kinds)+1, err)
		}
		var obj object
		if err := doc.Decode(&obj); err != nil {
			t.Fatalf("%s: document %d: %v", manifestPath, len(m.kinds)+1, err)
		}
		m.kinds = append(m.kinds, obj.Kind)
		switch obj.Kind {
		case "Namespace":
			m.namespace = obj
		case "ConfigMap":
			err = doc.Decode(&m.configMap)
		case "DaemonSet":
			err = doc.Decode(&m.daemonSet)
		}
		if err != nil {
			t.Fatalf("%s: %s: %v", manifestPath, obj.Kind, err)
		}
	}
	if len(m.configMap.Data) != 1 {
		t.Fatalf("ConfigMap has %d keys, want exactly one (the configuration file)", len(m.configMap.Data))
	}
	for key, text := range m.configMap.Data {
		m.configKey = key
		m.config = loadConfig(t, "ConfigMap "+key, []byte(text))
	}
	if n := len(m.daemonSet.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("DaemonSet has %d containers, want 1", n)
	}
	return m
}

func (m manifest) pod() podSpec         { return m.daemonSet.Spec.Template.Spec }
func (m manifest) container() container { return m.daemonSet.Spec.Template.Spec.Containers[0] }

func (m manifest) volume(t *testing.T, name string) volume {
	t.Helper()
	for _, v := range m.pod().Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume named %q", name)
	return volume{}
}

func TestManifestObjects(t *testing.T) {
	m := readManifest(t)
	if want := []string{"Namespace", "ConfigMap", "DaemonSet"}; !slices.Equal(m.kinds, want) {
		t.Fatalf("documents are %v, want %v (a Secret holding the key must never be in the file)", m.kinds, want)
	}
	if m.namespace.Metadata.Name != namespace {
		t.Errorf("Namespace %q, want %q", m.namespace.Metadata.Name, namespace)
	}
	if got := m.namespace.Metadata.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
		t.Errorf("Namespace enforces pod security %q: hostPID, hostPath and capabilities need \"privileged\"", got)
	}
	if m.configMap.Metadata.Namespace != namespace || m.daemonSet.Metadata.Namespace != namespace {
		t.Errorf("ConfigMap in %q, DaemonSet in %q: want both in %q", m.configMap.Metadata.Namespace, m.daemonSet.Metadata.Namespace, namespace)
	}
	labels := m.daemonSet.Spec.Selector.MatchLabels
	if len(labels) == 0 || !reflect.DeepEqual(labels, m.daemonSet.Spec.Template.Metadata.Labels) {
		t.Errorf("selector %v does not equal the pod template's labels %v", labels, m.daemonSet.Spec.Template.Metadata.Labels)
	}
}

func TestManifestPodSecurity(t *testing.T) {
	m := readManifest(t)
	pod, c := m.pod(), m.container()

	for _, tc := range []struct {
		field string
		got   *bool
		want  bool
	}{
		{"hostPID", pod.HostPID, true},
		{"hostNetwork", pod.HostNetwork, true},
		{"automountServiceAccountToken", pod.AutomountServiceAccountToken, false},
	} {
		if tc.got == nil || *tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.field, deref(tc.got), tc.want)
		}
	}
	if pod.HostIPC != nil && *pod.HostIPC {
		t.Error("hostIPC is true; the daemon needs no host IPC namespace")
	}
	if len(pod.InitContainers) != 0 {
		t.Errorf("%d init containers, want none", len(pod.InitContainers))
	}
	if len(pod.SecurityContext) != 0 {
		t.Errorf("pod securityContext %v: the container's securityContext is the one place for these settings", pod.SecurityContext)
	}
	if want := []map[string]string{{"operator": "Exists"}}; !reflect.DeepEqual(pod.Tolerations, want) {
		t.Errorf("tolerations %v, want %v (every node)", pod.Tolerations, want)
	}

	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("the container has no securityContext")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged: true; the daemon needs the listed capabilities, not all of them")
	}
	if sc.AllowPrivilegeEscalation != nil {
		t.Errorf("allowPrivilegeEscalation: %v is set; it is no barrier with CAP_SYS_ADMIN and the API refuses false with CAP_SYS_ADMIN", *sc.AllowPrivilegeEscalation)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("runAsUser = %v, want 0: the log, key and cgroup files are root's and the daemon has no CAP_DAC_OVERRIDE", deref(sc.RunAsUser))
	}
	if sc.Capabilities == nil {
		t.Fatal("no capabilities")
	}
	if want := []string{"ALL"}; !slices.Equal(sc.Capabilities.Drop, want) {
		t.Errorf("capabilities.drop = %v, want %v", sc.Capabilities.Drop, want)
	}
	if got := sortedUnique(sc.Capabilities.Add); !slices.Equal(got, capabilities) || len(got) != len(sc.Capabilities.Add) {
		t.Errorf("capabilities.add = %v, want exactly %v", sc.Capabilities.Add, capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("seccompProfile = %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	if sc.AppArmorProfile == nil || sc.AppArmorProfile.Type != "Unconfined" {
		t.Errorf("appArmorProfile = %+v, want Unconfined (the default profile hides other processes' /proc/PID/exe)", sc.AppArmorProfile)
	}
}

func TestManifestMounts(t *testing.T) {
	m := readManifest(t)
	cfg := m.config
	configFile := configFlag(t, m.container().Args)

	// Every mount, exactly: what it is, where, and whether it is writable.
	want := map[string]volumeMount{
		configFile:        {Name: "config", SubPath: m.configKey, ReadOnly: true},
		cfg.SigningKey:    {Name: "signing-key", SubPath: signingKeyName, ReadOnly: true},
		"/sys/fs/cgroup":  {Name: "cgroup"}, // read-write: cgroup.freeze
		"/sys/kernel/btf": {Name: "btf", ReadOnly: true},
		"/sys/fs/bpf":     {Name: "bpffs"}, // read-write: the pinned kernel side outlives the pod
		cfg.Log.Dir:       {Name: "log"},
		cfg.StateDir:      {Name: "state"},
	}
	got := map[string]volumeMount{}
	for _, vm := range m.container().VolumeMounts {
		if _, dup := got[vm.MountPath]; dup {
			t.Errorf("two mounts at %s", vm.MountPath)
		}
		p := vm.MountPath
		vm.MountPath = ""
		got[p] = vm
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("volume mounts:\n got %+v\nwant %+v", got, want)
	}

	// The configuration file the daemon is told to read is the ConfigMap's
	// only key, mounted as a single file.
	if filepath.Base(configFile) != m.configKey {
		t.Errorf("--config %s, but the ConfigMap's key is %q", configFile, m.configKey)
	}
	if v := m.volume(t, "config"); v.ConfigMap == nil || v.ConfigMap.Name != m.configMap.Metadata.Name || len(v.ConfigMap.Items) != 0 {
		t.Errorf("volume config = %+v, want the whole ConfigMap %q", v.ConfigMap, m.configMap.Metadata.Name)
	} else if v.ConfigMap.DefaultMode == nil || *v.ConfigMap.DefaultMode&0o022 != 0 {
		t.Errorf("config defaultMode %o: the daemon refuses a configuration writable by group or others", deref(v.ConfigMap.DefaultMode))
	}
	// The key is a Secret the operator creates: referenced, never inlined.
	if v := m.volume(t, "signing-key"); v.Secret == nil || v.Secret.SecretName == "" {
		t.Errorf("volume signing-key = %+v, want a Secret", v)
	} else if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0 {
		t.Errorf("signing key defaultMode %o: the daemon refuses a key group or others can read", deref(v.Secret.DefaultMode))
	}
	if filepath.Dir(cfg.SigningKey) != filepath.Dir(configFile) {
		t.Errorf("signing_key %s is not beside the configuration %s (/etc/agenttrace in the image)", cfg.SigningKey, configFile)
	}

	for _, hp := range []struct{ volume, path, typ string }{
		{"cgroup", "/sys/fs/cgroup", "Directory"},
		{"btf", "/sys/kernel/btf", "Directory"},
		{"bpffs", "/sys/fs/bpf", "Directory"},
		{"log", cfg.Log.Dir, "DirectoryOrCreate"},
		{"state", cfg.StateDir, "DirectoryOrCreate"},
	} {
		v := m.volume(t, hp.volume)
		if v.HostPath == nil || v.HostPath.Path != hp.path || v.HostPath.Type != hp.typ {
			t.Errorf("volume %s = %+v, want hostPath %s (%s)", hp.volume, v.HostPath, hp.path, hp.typ)
		}
	}
	if n := len(m.pod().Volumes); n != len(want) {
		t.Errorf("%d volumes, want %d (one per mount)", n, len(want))
	}
}

func TestManifestProbesAndLifecycle(t *testing.T) {
	m := readManifest(t)
	c := m.container()
	if c.Command != nil {
		t.Errorf("command %v overrides the image's entrypoint", c.Command)
	}
	if !slices.Equal(c.Args, daemonArgs) {
		t.Errorf("args %q, want %q", c.Args, daemonArgs)
	}

	host, port, err := net.SplitHostPort(m.config.Metrics.Listen)
	if err != nil {
		t.Fatalf("metrics.listen: %v", err)
	}
	if host != "127.0.0.1" {
		t.Errorf("metrics.listen %s: the endpoint has no authentication; keep it on loopback", m.config.Metrics.Listen)
	}
	p := c.ReadinessProbe
	if p == nil || p.HTTPGet == nil {
		t.Fatal("no httpGet readiness probe")
	}
	if p.HTTPGet.Host != host || strconv.Itoa(p.HTTPGet.Port) != port || p.HTTPGet.Path != "/metrics" {
		t.Errorf("readiness probe %+v, want http://%s/metrics", *p.HTTPGet, m.config.Metrics.Listen)
	}
	if len(c.Ports) != 1 || strconv.Itoa(c.Ports[0].ContainerPort) != port {
		t.Errorf("ports %+v, want the metrics port %s (with hostNetwork it is reserved on the node)", c.Ports, port)
	}
	if c.LivenessProbe != nil {
		t.Error("a liveness probe restarts the tracer, leaving an untraced gap")
	}

	grace := m.pod().TerminationGracePeriodSeconds
	drain := m.config.DrainTimeout
	if grace == nil || time.Duration(*grace)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds %v is not longer than drain_timeout %s", deref(grace), drain)
	}
}

// TestManifestTargets checks which pod cgroups the ConfigMap's targets
// trace, with the daemon's own pattern parser and glob matcher: every
// Burstable and BestEffort pod under either cgroup driver, and no
// Guaranteed pod — agenttrace's own pod is one (requests = limits), so it
// never traces itself.
func TestManifestTargets(t *testing.T) {
	m := readManifest(t)
	patterns := m.config.Targets
	for _, tc := range []struct {
		cgroup string
		traced bool
	}{
		{"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f3c2a1e_7b8d.slice/cri-containerd-4e5f.scope", true},
		{"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9a8b7c6d_5e4f.slice/crio-1a2b.scope", true},
		{"kubepods/burstable/pod0f3c2a1e-7b8d/4e5f", true},
		{"kubepods/besteffort/pod9a8b7c6d-5e4f/1a2b", true},
		{"kubepods.slice/kubepods-pod1b2c3d4e_5f60.slice/cri-containerd-7a8b.scope", false},
		{"kubepods/pod1b2c3d4e-5f60/7a8b", false},
		{"kubepods.slice/kubepods-burstable.slice", false},
		{"kubepods.slice", false},
		{"system.slice/kubelet.service", false},
		{"system.slice/containerd.service", false},
		{"user.slice/user-1000.slice/session-1.scope", false},
	} {
		if got := traced(patterns, tc.cgroup); got != tc.traced {
			t.Errorf("cgroup %s traced = %v, want %v", tc.cgroup, got, tc.traced)
		}
	}

	res := m.container().Resources
	for _, r := range []string{"cpu", "memory"} {
		if res.Requests[r] == "" || res.Requests[r] != res.Limits[r] {
			t.Errorf("%s request %q and limit %q differ: the pod is not Guaranteed and its own cgroup matches the targets", r, res.Requests[r], res.Limits[r])
		}
	}
}

// traced reports whether the cgroup at rel, or one of its ancestors, matches
// a pattern: a matching cgroup is traced with all its descendants.
func traced(patterns []cgroup.Pattern, rel string) bool {
	comps := strings.Split(rel, "/")
	for _, p := range patterns {
		if len(comps) < len(p.Components) {
			continue
		}
		match := true
		for i, glob := range p.Components {
			match = match && cgroup.GlobMatch(glob, comps[i])
		}
		if match {
			return true
		}
	}
	return false
}

// configFlag returns the value of --config in args.
func configFlag(t *testing.T, args []string) string {
	t.Helper()
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("args %q have no --config FILE", args)
	}
	return args[i+1]
}

// unit is a systemd unit file: section → key → values in order.
type unit map[string]map[string][]string

func readUnit(t *testing.T) unit {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	s := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: continuation lines are not supported by this test", unitPath, n)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not KEY=VALUE in a section", unitPath, n, line)
			}
			u[section][key] = append(u[section][key], value)
		}
	}
	return u
}

// one returns the single value of key in [Service].
func (u unit) one(t *testing.T, key string) string {
	t.Helper()
	v := u["Service"][key]
	if len(v) != 1 {
		t.Fatalf("[Service] %s has %d values %q, want one", key, len(v), v)
	}
	return v[0]
}

func TestUnitSandbox(t *testing.T) {
	u := readUnit(t)
	for key, want := range map[string]string{
		"ExecStart":               "/usr/local/bin/agenttrace " + strings.Join(daemonArgs, " "),
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"KillSignal":              "SIGTERM",
		"Restart":                 "on-failure",
		"LogsDirectory":           "agenttrace",
		"LogsDirectoryMode":       "0700",
		"StateDirectory":          "agenttrace",
		"StateDirectoryMode":      "0700",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "read-only",
		"PrivateTmp":              "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectClock":            "yes",
		"ProtectHostname":         "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"RestrictNamespaces":      "net",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"RestrictRealtime":        "yes",
		"SystemCallArchitectures": "native",
	} {
		if got := u.one(t, key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	// Any of these would break the daemon: read-only cgroups (no
	// cgroup.freeze), hidden processes, no boot id, no host capabilities.
	for _, key := range []string{"ProtectControlGroups", "ProtectProc", "ProcSubset", "PrivateUsers", "PrivateNetwork", "User", "DynamicUser", "ReadOnlyPaths", "InaccessiblePaths"} {
		if v, ok := u["Service"][key]; ok {
			t.Errorf("%s=%v is set", key, v)
		}
	}

	var caps []string
	for _, c := range strings.Fields(u.one(t, "CapabilityBoundingSet")) {
		caps = append(caps, strings.TrimPrefix(c, "CAP_"))
	}
	if got := sortedUnique(caps); !slices.Equal(got, capabilities) || len(got) != len(caps) {
		t.Errorf("CapabilityBoundingSet = %v, want exactly %v with CAP_ prefixes", caps, capabilities)
	}
	if v, ok := u["Service"]["AmbientCapabilities"]; ok {
		t.Errorf("AmbientCapabilities=%v: the daemon runs as root, where the bounding set is the limit", v)
	}

	// The configuration the unit starts the daemon with must write where
	// the sandbox lets it, and drain before systemd kills it.
	data, err := os.ReadFile(hostConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, hostConfigPath, data)
	if want := "/var/log/" + u.one(t, "LogsDirectory"); cfg.Log.Dir != want {
		t.Errorf("%s: log.dir %s, but the unit makes only %s writable", hostConfigPath, cfg.Log.Dir, want)
	}
	if want := "/var/lib/" + u.one(t, "StateDirectory"); cfg.StateDir != want {
		t.Errorf("%s: state_dir %s, but the unit makes only %s writable", hostConfigPath, cfg.StateDir, want)
	}
	stop, err := time.ParseDuration(u.one(t, "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if drain := cfg.DrainTimeout; stop <= drain {
		t.Errorf("TimeoutStopSec %s is not longer than drain_timeout %s", stop, drain)
	}
}

// TestUnitVerify runs systemd-analyze verify on a copy of the unit whose
// ExecStart names an existing binary (this test's), so that the check that
// the binary exists passes and every other complaint is the unit's. A
// second copy with a misspelt directive shows that verify reports problems
// on this machine at all.
func TestUnitVerify(t *testing.T) {
	tools.Require(t, "systemd")
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	const binary = "ExecStart=/usr/local/bin/agenttrace "
	if !bytes.Contains(data, []byte("\n"+binary)) {
		t.Fatalf("%s has no line starting %q", unitPath, binary)
	}
	data = bytes.Replace(data, []byte("\n"+binary), []byte("\nExecStart="+self+" "), 1)

	verify := func(name string, unit []byte) (string, error) {
		dir := t.TempDir()
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, unit, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(analyze, "verify", file)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := verify("agenttrace.service", data)
	if err != nil || out != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	bad := bytes.Replace(data, []byte("\n[Install]\n"), []byte("\nProtectKernelTunnables=yes\n[Install]\n"), 1)
	if bytes.Equal(bad, data) {
		t.Fatalf("%s has no [Install] section", unitPath)
	}
	out, _ = verify("agenttrace.service", bad)
	if !strings.Contains(out, "ProtectKernelTunnables") {
		t.Errorf("systemd-analyze verify did not report a misspelt directive; its output:\n%s", out)
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var list []instruction
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		list = append(list, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur = ""
	}
	return list
}

// execForm decodes an exec-form (JSON array) argument.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("%s %s: not exec form (a JSON array): %v", in.cmd, in.args, err)
	}
	return v
}

func TestDockerfile(t *testing.T) {
	list := readDockerfile(t)
	var froms []instruction
	for _, in := range list {
		if in.cmd == "FROM" {
			froms = append(froms, in)
		}
	}
	if len(froms) != 2 {
		t.Fatalf("%d stages, want 2 (build, run)", len(froms))
	}

	// The builder's Go is go.mod's minor version.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?$`).FindSubmatch(gomod)
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	if want := "golang:" + string(goLine[1]) + " AS build"; !strings.HasSuffix(froms[0].args, want) {
		t.Errorf("FROM %s, want the image %q", froms[0].args, want)
	}

	var buildOut, binary string
	var entrypoint, command []string
	stage := 0
	for _, in := range list {
		switch in.cmd {
		case "FROM":
			stage++
		case "COPY":
			fields := strings.Fields(in.args)
			from := ""
			var rest []string
			for _, f := range fields {
				if v, ok := strings.CutPrefix(f, "--from="); ok {
					from = v
				} else if !strings.HasPrefix(f, "--") {
					rest = append(rest, f)
				}
			}
			srcs, dst := rest[:len(rest)-1], rest[len(rest)-1]
			if from == "" {
				// Sources in the build context: the repository root.
				for _, src := range srcs {
					if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
						t.Errorf("COPY %s: %v", in.args, err)
					}
				}
				continue
			}
			if from != "build" || stage != 2 {
				t.Errorf("COPY %s: want --from=build in the final stage", in.args)
			}
			if len(srcs) == 1 && srcs[0] == buildOut {
				binary = dst
			}
		case "RUN":
			if !strings.Contains(in.args, "go build") {
				continue
			}
			fields := strings.Fields(in.args)
			if !slices.Contains(fields, "CGO_ENABLED=0") {
				t.Errorf("RUN %s: not CGO_ENABLED=0: the final image has no C library", in.args)
			}
			pkg := fields[len(fields)-1]
			if pkg != "./cmd/agenttrace" {
				t.Errorf("RUN %s builds %s, want ./cmd/agenttrace", in.args, pkg)
			}
			src, err := os.ReadFile(filepath.Join(repoRoot, pkg, "main.go"))
			if err != nil || !bytes.Contains(src, []byte("\npackage main\n")) {
				t.Errorf("%s is not a main package: %v", pkg, err)
			}
			if i := slices.Index(fields, "-o"); i >= 0 && i+1 < len(fields) {
				buildOut = fields[i+1]
			}
		case "ENTRYPOINT":
			entrypoint = execForm(t, in)
		case "CMD":
			command = execForm(t, in)
		}
	}
	if buildOut == "" || binary == "" {
		t.Fatalf("the built binary (%q) is not copied into the final stage", buildOut)
	}
	if !slices.Equal(entrypoint, []string{binary}) {
		t.Errorf("ENTRYPOINT %q, want [%q], the binary copied from the build stage", entrypoint, binary)
	}
	if !slices.Equal(command, daemonArgs) {
		t.Errorf("CMD %q, want %q (the DaemonSet's args and the unit's ExecStart)", command, daemonArgs)
	}
}

// TestDockerignore checks that the build context keeps what the build
// embeds (go:embed) and reads. The patterns are matched as Docker does for
// these forms: a leading **/ matches in any directory, otherwise a pattern
// matches a path from the context root or one of its parent directories.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(dockerfilePath + ".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
			if line[0] == '!' {
				t.Fatalf("exception %q: this test does not handle them", line)
			}
			patterns = append(patterns, line)
		}
	}
	for _, needed := range []string{
		"go.mod", "go.sum", "cmd/agenttrace/main.go",
		"internal/loader/bpf_x86_bpfel.o", "schema/record.schema.json",
	} {
		if _, err := os.Stat(filepath.Join(repoRoot, needed)); err != nil {
			t.Fatal(err)
		}
		for _, p := range patterns {
			if ignored(p, needed) {
				t.Errorf("pattern %q excludes %s from the build context", p, needed)
			}
		}
	}
	if !ignored(".git", ".git/HEAD") || !ignored("**/*.jsonl", "demo/x.jsonl") {
		t.Error("the matcher of this test is broken")
	}
}

func ignored(pattern, name string) bool {
	if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
		ok, _ := path.Match(rest, path.Base(name))
		return ok
	}
	for p := name; p != "."; p = path.Dir(p) {
		if ok, _ := path.Match(pattern, p); ok {
			return true
		}
	}
	return false
}

func sortedUnique(list []string) []string {
	s := slices.Clone(list)
	slices.Sort(s)
	return slices.Compact(s)
}

func deref[T any](p *T) any {
	if p == nil {
		return "absent"
	}
	return *p
}
