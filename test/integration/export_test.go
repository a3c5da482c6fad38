package integration

// Export to a real rsyslogd: the test starts rsyslogd on loopback with a
// plain TCP input and a TLS input (gtls driver, client certificates
// required, certificates generated here), has `agenttrace run
// --export-config` ship a traced workload to both, and compares what
// rsyslogd wrote with the local log, record by record and byte by byte.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/tools"
)

// rsyslog is an rsyslogd the test runs, with its own configuration, work
// directory and output files.
type rsyslog struct {
	bin     string
	dir     string
	ca      string // CA certificate (PEM) the exporters verify the server with
	cert    string // client certificate and key the TLS input requires
	key     string
	tcpPort int
	tlsPort int
	cmd     *exec.Cmd
	exited  chan struct{}
}

// requireRsyslog returns the rsyslogd binary, failing at once with the
// command that installs it when it or its TLS module is not installed.
func requireRsyslog(t testing.TB) string {
	t.Helper()
	tools.Require(t, "rsyslog")
	tools.Require(t, "rsyslog-gnutls")
	for _, p := range []string{"rsyslogd", "/usr/sbin/rsyslogd"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	t.Fatal("rsyslogd is installed but not found on PATH or in /usr/sbin")
	return ""
}

// startRsyslog generates the certificates, starts rsyslogd on ephemeral
// loopback ports and waits until both inputs listen.
func startRsyslog(t testing.TB) *rsyslog {
	t.Helper()
	r := &rsyslog{bin: requireRsyslog(t), dir: t.TempDir()}
	r.ca, r.cert, r.key = writeCerts(t, r.dir)
	if err := os.Mkdir(filepath.Join(r.dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	t.Cleanup(func() {
		r.stop(t)
		if d := os.Getenv("DEBUGDIR"); d != "" && t.Failed() {
			exec.Command("cp", "-a", r.dir, d).Run()
		}
	})
	return r
}

// conf is the configuration: with ports 0 rsyslogd picks them and writes
// them to files; a restart gets the same ports.
func (r *rsyslog) conf() string {
	listen := func(name string, port int) string {
		if port == 0 {
			return fmt.Sprintf(`port="0" listenPortFileName="%s"`, filepath.Join(r.dir, name+".port"))
		}
		return fmt.Sprintf(`port="%d"`, port)
	}
	// maxMessageSize: a record can be far larger than syslog's usual 8 KiB
	// (an exec with 32 KiB of argv, a checkpoint with its note).
	return fmt.Sprintf(`global(workDirectory="%[1]s/work" maxMessageSize="4m"
  defaultNetstreamDriverCAFile="%[2]s" defaultNetstreamDriverCertFile="%[1]s/server.pem" defaultNetstreamDriverKeyFile="%[1]s/server.key")
module(load="imtcp" maxSessions="200")
template(name="raw" type="string" string="%%PRI%% %%TIMESTAMP:::date-rfc3339%% %%HOSTNAME%% %%APP-NAME%% %%PROCID%% %%MSGID%% %%STRUCTURED-DATA%% %%msg%%\n")
ruleset(name="tcp") { action(type="omfile" file="%[1]s/tcp.log" template="raw") }
ruleset(name="tls") { action(type="omfile" file="%[1]s/tls.log" template="raw") }
input(type="imtcp" address="127.0.0.1" %[3]s ruleset="tcp")
input(type="imtcp" address="127.0.0.1" %[4]s ruleset="tls"
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
`, r.dir, r.ca, listen("tcp", r.tcpPort), listen("tls", r.tlsPort))
}

func (r *rsyslog) start(t testing.TB) {
	t.Helper()
	conf := filepath.Join(r.dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(r.conf()), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(r.dir, "rsyslogd.pid"))
	out, err := os.OpenFile(filepath.Join(r.dir, "rsyslogd.out"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	r.cmd = exec.Command(r.bin, "-n", "-f", conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(r.cmd, r.exited)

	deadline := time.Now().Add(20 * time.Second)
	for name, port := range map[string]*int{"tcp": &r.tcpPort, "tls": &r.tlsPort} {
		for {
			if *port == 0 {
				data, _ := os.ReadFile(filepath.Join(r.dir, name+".port"))
				*port, _ = strconv.Atoi(strings.TrimSpace(string(data)))
			}
			if *port != 0 {
				if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", *port)); err == nil {
					c.Close()
					break
				}
			}
			said, _ := os.ReadFile(filepath.Join(r.dir, "rsyslogd.out"))
			if bytes.Contains(said, []byte("could not load module")) {
				// It goes on without the input, which then never listens.
				t.Fatalf("rsyslogd could not load a module (is rsyslog-gnutls installed? tools/packages):\n%s", said)
			}
			select {
			case <-r.exited:
				t.Fatalf("rsyslogd exited at start:\n%s", said)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				said, _ := os.ReadFile(filepath.Join(r.dir, "rsyslogd.out"))
				t.Fatalf("rsyslogd's %s input does not listen after 20s:\n%s", name, said)
			}
		}
	}
}

// stop sends SIGTERM and waits until rsyslogd has exited.
func (r *rsyslog) stop(t testing.TB) {
	t.Helper()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
		t.Errorf("rsyslogd did not stop within 30s of SIGTERM")
	}
	r.cmd = nil
}

// exportConfig writes the YAML of two syslog exporters, "tcp" and "tls",
// to this rsyslogd, with the cursors in stateDir.
func (r *rsyslog) exportConfig(t testing.TB, dir, stateDir, extra string) string {
	t.Helper()
	yaml := fmt.Sprintf(`state_dir: %s
exporters:
  - name: tcp
    type: syslog
    syslog:
      address: 127.0.0.1:%d
      facility: local3
      severity_by_type: {exec: notice}
%s
  - name: tls
    type: syslog
    syslog:
      address: 127.0.0.1:%d
      facility: local3
      severity_by_type: {exec: notice}
      tls: {ca_file: %s, cert_file: %s, key_file: %s, server_name: localhost}
%s
`, stateDir, r.tcpPort, extra, r.tlsPort, r.ca, r.cert, r.key, extra)
	path := filepath.Join(dir, "export.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeCerts makes a CA, a server certificate for 127.0.0.1 and localhost,
// and a client certificate, all signed by the CA; it returns the CA and the
// client's certificate and key files.
func writeCerts(t testing.TB, dir string) (ca, cert, key string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agenttrace test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	ca = write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+".key", "PRIVATE KEY", kder)
	}
	leaf("server", 2, x509.ExtKeyUsageServerAuth)
	cert, key = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return ca, cert, key
}

// syslogMsg is one message as rsyslogd wrote it with the raw template.
type syslogMsg struct {
	pri                                 int
	timestamp, host, app, procid, msgid string
	sdID                                string
	sd                                  map[string]string
	msg                                 []byte
}

var sdParam = regexp.MustCompile(`^ ([a-z_]+)="((?:[^"\\\]]|\\["\\\]])*)"`)

// parseSyslogLine parses `PRI TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`.
func parseSyslogLine(line []byte) (*syslogMsg, error) {
	fields := bytes.SplitN(line, []byte(" "), 7)
	if len(fields) != 7 {
		return nil, fmt.Errorf("fewer than 7 fields")
	}
	m := &syslogMsg{timestamp: string(fields[1]), host: string(fields[2]), app: string(fields[3]), procid: string(fields[4]), msgid: string(fields[5]), sd: map[string]string{}}
	var err error
	if m.pri, err = strconv.Atoi(string(fields[0])); err != nil {
		return nil, fmt.Errorf("PRI %q", fields[0])
	}
	rest := fields[6]
	if len(rest) == 0 || rest[0] != '[' {
		return nil, fmt.Errorf("no structured data")
	}
	i := bytes.IndexAny(rest, " ]")
	if i < 0 {
		return nil, fmt.Errorf("SD-ID not ended")
	}
	m.sdID, rest = string(rest[1:i]), rest[i:]
	for {
		p := sdParam.FindSubmatch(rest)
		if p == nil {
			break
		}
		unescaped := regexp.MustCompile(`\\(["\\\]])`).ReplaceAll(p[2], []byte("$1"))
		m.sd[string(p[1])] = string(unescaped)
		rest = rest[len(p[0]):]
	}
	if !bytes.HasPrefix(rest, []byte("] ")) {
		return nil, fmt.Errorf("SD element not closed before %q", rest)
	}
	m.msg = rest[2:]
	return m, nil
}

// readSyslog parses every line rsyslogd wrote to name.log; a line that does
// not parse is an error.
func (r *rsyslog) readSyslog(t testing.TB, name string) []*syslogMsg {
	t.Helper()
	f, err := os.Open(filepath.Join(r.dir, name+".log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var msgs []*syslogMsg
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for n := 1; sc.Scan(); n++ {
		m, err := parseSyslogLine(bytes.Clone(sc.Bytes()))
		if err != nil {
			t.Fatalf("%s.log line %d is malformed (%v): %q", name, n, err, sc.Bytes())
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// waitSyslog waits until rsyslogd wrote at least n messages to name.log.
func (r *rsyslog) waitSyslog(t testing.TB, name string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data, _ := os.ReadFile(filepath.Join(r.dir, name+".log"))
		if bytes.Count(data, []byte("\n")) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd wrote %d messages to %s.log after %v, want %d", bytes.Count(data, []byte("\n")), name, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSeq waits until rsyslogd wrote a message of seq at least seq to name.log.
func (r *rsyslog) waitSeq(t testing.TB, name string, seq uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.maxSeq(t, name) < seq {
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd has seq up to %d in %s.log after %v, want %d", r.maxSeq(t, name), name, timeout, seq)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// maxSeq is the highest seq rsyslogd wrote to name.log.
func (r *rsyslog) maxSeq(t testing.TB, name string) uint64 {
	var m uint64
	for _, msg := range r.readSyslog(t, name) {
		seq, _ := strconv.ParseUint(msg.sd["seq"], 10, 64)
		m = max(m, seq)
	}
	return m
}

// localLog is every record of the log at base, indexed by seq-1.
type localLog struct {
	lines [][]byte
	types []string
	logID string
	host  string
}

func readLocalLog(t testing.TB, base string) *localLog {
	t.Helper()
	files, _ := logfile.Segments(base)
	l := &localLog{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 {
			n := bytes.IndexByte(data, '\n')
			if n < 0 {
				break // a torn tail: not a record
			}
			line := data[:n]
			data = data[n+1:]
			env, err := record.ParseEnvelope(line)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if env.Seq != uint64(len(l.lines)+1) {
				t.Fatalf("%s: seq %d after %d", f, env.Seq, len(l.lines))
			}
			if env.Type == "header" && l.logID == "" {
				var hdr struct {
					Header headerBody `json:"header"`
				}
				if err := json.Unmarshal(line, &hdr); err != nil {
					t.Fatal(err)
				}
				l.logID = hdr.Header.LogID
				if err := json.Unmarshal(line, &struct {
					Host *string `json:"host"`
				}{&l.host}); err != nil {
					t.Fatal(err)
				}
			}
			l.lines = append(l.lines, line)
			l.types = append(l.types, env.Type)
		}
	}
	return l
}

// checkSyslog checks every message against the local log: exact record
// bytes in MSG, the dedupe key and type in the SD, the RFC 5424 header
// fields; it returns how often each seq arrived.
func checkSyslog(t *testing.T, name string, msgs []*syslogMsg, l *localLog) map[uint64]int {
	t.Helper()
	count := map[uint64]int{}
	timeRE := regexp.MustCompile(`"time":"([0-9T:-]+)(\.[0-9]{1,6})?[0-9]*Z"`)
	for i, m := range msgs {
		seq, err := strconv.ParseUint(m.sd["seq"], 10, 64)
		if err != nil || seq < 1 || seq > uint64(len(l.lines)) {
			t.Fatalf("%s message %d: seq %q is not a seq of the log (1-%d)", name, i, m.sd["seq"], len(l.lines))
		}
		line, typ := l.lines[seq-1], l.types[seq-1]
		if !bytes.Equal(m.msg, line) {
			t.Fatalf("%s message %d (seq %d): MSG differs from the local record\n got %q\nwant %q", name, i, seq, m.msg, line)
		}
		tm := timeRE.FindSubmatch(line)
		wantPri := 19*8 + 6 // local3.informational
		switch typ {
		case "exec":
			wantPri = 19*8 + 5
		case "gap", "freeze", "recovery":
			wantPri = 19*8 + 4
		}
		if m.sdID != "agenttrace@32473" || m.sd["host"] != l.host || m.sd["log_id"] != l.logID || m.sd["type"] != typ || len(m.sd) != 4 ||
			m.pri != wantPri || m.app != "agenttrace" || m.procid != "-" || m.msgid != typ || m.host != l.host ||
			tm == nil || m.timestamp != string(tm[1])+string(tm[2])+"Z" {
			t.Fatalf("%s message %d (seq %d, %s): header or SD wrong: PRI %d (want %d) TIMESTAMP %s HOSTNAME %s APP %s PROCID %s MSGID %s SD %s %v (log %s host %s)",
				name, i, seq, typ, m.pri, wantPri, m.timestamp, m.host, m.app, m.procid, m.msgid, m.sdID, m.sd, l.logID, l.host)
		}
		count[seq]++
	}
	return count
}

// exportRun is an `agenttrace run --export-config` in the background.
type exportRun struct {
	cmd    *exec.Cmd
	stderr string
	done   chan struct{}
}

// busyWorkload runs until the file stop exists: a cat every 50 ms.
func busyWorkload(stop string) []string {
	return []string{"sh", "-c", `while [ ! -e "$1" ]; do cat /etc/hostname >/dev/null; sleep 0.05; done`, "sh", stop}
}

func startExportRun(t *testing.T, dir string, args ...string) *exportRun {
	t.Helper()
	mount, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	e := &exportRun{stderr: filepath.Join(dir, fmt.Sprintf("stderr-%d", time.Now().UnixNano())), done: make(chan struct{})}
	e.cmd = exec.Command(agentBin, append([]string{"run"}, args...)...)
	// A file, not a pipe: a killed run's processes would hold a pipe open.
	f, err := os.Create(e.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e.cmd.Stdout, e.cmd.Stderr = f, f
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(func() {
		e.cmd.Process.Kill()
		<-e.done
		killSession(t, mount, e.cmd.Process.Pid)
	})
	return e
}

// wait waits for the run to end and returns its stderr.
func (e *exportRun) wait(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case <-e.done:
	case <-time.After(timeout):
		t.Fatalf("agenttrace run did not end within %v", timeout)
	}
	said, _ := os.ReadFile(e.stderr)
	if code := e.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("agenttrace run exited %d:\n%s", code, said)
	}
	return string(said)
}

// TestExportSyslog ships a traced workload to rsyslogd over TCP and over
// TLS with a client certificate: every record arrives exactly once, its
// MSG byte for byte the local record, with the dedupe key in the SD.
func TestExportSyslog(t *testing.T) {
	requireRoot(t)
	rs := startRsyslog(t)
	dir := testDir(t)
	state := filepath.Join(dir, "state")
	conf := rs.exportConfig(t, dir, state, "")
	base := filepath.Join(dir, "audit.jsonl")
	// A file name that is not ASCII, and one that is not UTF-8 (its record
	// holds an escaped form and the exact bytes in base64).
	utf8Name := filepath.Join(dir, "résumé ✓.txt")
	rawName := filepath.Join(dir, "raw-\xff.txt")
	for _, f := range []string{utf8Name, rawName} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// agent() checks a log of one segment; this one rotates: verified below.
	s := agent(t, dir, runOpts{log: base, noLog: true, flags: []string{"--export-config", conf, "--rotate-size", "16384"}},
		"sh", "-c", `for i in 1 2 3 4 5 6 7 8 9 10; do cat /etc/hostname "$1" "$2" >/dev/null; done; ls / >/dev/null`, "sh", utf8Name, rawName)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	verifyLog(t, "--pubkey", base+".pub", base)
	l := readLocalLog(t, base)
	if files, _ := logfile.Segments(base); len(files) < 2 {
		t.Fatalf("want the log rotated, got %d segment", len(files))
	}
	for _, name := range []string{"tcp", "tls"} {
		want := fmt.Sprintf("agenttrace: exported to %s: %d records delivered (seq 1-%d), the log up to its end\n", name, len(l.lines), len(l.lines))
		if !strings.Contains(s.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, s.stderr)
		}
		// The exporter waited for the receiver's orderly close: everything
		// is written by the time agenttrace exits.
		rs.waitSyslog(t, name, len(l.lines), 5*time.Second)
		count := checkSyslog(t, name, rs.readSyslog(t, name), l)
		for seq := uint64(1); seq <= uint64(len(l.lines)); seq++ {
			if count[seq] != 1 {
				t.Fatalf("%s: seq %d (%s) arrived %d times, want once", name, seq, l.types[seq-1], count[seq])
			}
		}
		c := readCursor(t, filepath.Join(state, name+".cursor"))
		if c.LogID != l.logID || c.Seq != uint64(len(l.lines)) || !c.Final {
			t.Errorf("%s cursor %+v, want log %s seq %d final", name, c, l.logID, len(l.lines))
		}
		info, err := os.Stat(filepath.Join(state, name+".cursor"))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s cursor: %v, mode %v, want 0600", name, err, info.Mode().Perm())
		}
	}
}

// TestExportCursorOfAnotherLog: a run whose exporter's cursor belongs to
// another log that was not delivered to its end refuses to start, before
// it creates anything; a cursor of a log delivered to its end lets a new
// log start its own.
func TestExportCursorOfAnotherLog(t *testing.T) {
	requireRoot(t)
	rs := startRsyslog(t)
	dir := testDir(t)
	state := filepath.Join(dir, "state")
	conf := rs.exportConfig(t, dir, state, "")
	first := filepath.Join(dir, "first.jsonl")
	s := agent(t, dir, runOpts{log: first, flags: []string{"--export-config", conf}}, "true")
	if s.exit != 0 || !strings.Contains(s.stderr, "agenttrace: exported to tcp: ") {
		t.Fatalf("first run: exit %d:\n%s", s.exit, s.stderr)
	}
	second := filepath.Join(dir, "second.jsonl")
	s = agent(t, dir, runOpts{log: second, flags: []string{"--export-config", conf}}, "true")
	if s.exit != 0 || !strings.Contains(s.stderr, "agenttrace: exported to tcp: ") {
		t.Fatalf("a new log after one delivered to its end: exit %d:\n%s", s.exit, s.stderr)
	}

	c := readCursor(t, filepath.Join(state, "tcp.cursor"))
	c.Final, c.Seq = false, 3
	data, _ := json.Marshal(c)
	if err := os.WriteFile(filepath.Join(state, "tcp.cursor"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	third := filepath.Join(dir, "third.jsonl")
	s = agent(t, dir, runOpts{log: third, noLog: true, flags: []string{"--export-config", conf}}, "true")
	want := fmt.Sprintf(`exporter "tcp": the cursor %s is for log %s (%s, delivered up to seq 3, not to its end), but %s is a new log: deliver the rest with agenttrace export --once %s`,
		filepath.Join(state, "tcp.cursor"), c.LogID, second, third, second)
	if s.exit != 1 || !strings.Contains(s.stderr, want) {
		t.Fatalf("exit %d, want 1 and %q:\n%s", s.exit, want, s.stderr)
	}
	if _, err := os.Stat(third); !os.IsNotExist(err) {
		t.Fatalf("the refused run created its log: %v", err)
	}
}

type cursorFile struct {
	Log     string `json:"log"`
	LogID   string `json:"log_id"`
	Segment int    `json:"segment"`
	Offset  int64  `json:"offset"`
	Seq     uint64 `json:"seq"`
	Final   bool   `json:"final"`
}

func readCursor(t *testing.T, path string) cursorFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c cursorFile
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// TestExportSyslogOutage stops rsyslogd for several seconds while the
// workload goes on, then starts it again on the same ports; then kills
// agenttrace with SIGKILL mid-run and continues the log with a new run.
// Every seq arrives at least once, intact; a seq arrives twice only if it
// was sent in the unconfirmed window (max_unconfirmed records) before a
// break, so every duplicate lies within window seqs below the highest seq
// the receiver had at the break.
func TestExportSyslogOutage(t *testing.T) {
	requireRoot(t)
	rs := startRsyslog(t)
	dir := testDir(t)
	state := filepath.Join(dir, "state")
	const window = 2000
	conf := rs.exportConfig(t, dir, state, fmt.Sprintf("      batch_size: 100\n      max_unconfirmed: %d", window))
	base := filepath.Join(dir, "audit.jsonl")
	flags := []string{"--log", base, "--export-config", conf, "--rotate-size", "262144", "--checkpoint-records", "1000", "--"}
	exporters := []string{"tcp", "tls"}
	breaks := map[string][]uint64{}

	// Run 1: rsyslogd goes away for 5 s and comes back.
	stop1 := filepath.Join(dir, "stop1")
	run1 := startExportRun(t, dir, append(flags, busyWorkload(stop1)...)...)
	for _, name := range exporters {
		rs.waitSyslog(t, name, 300, 30*time.Second)
	}
	rs.stop(t)
	for _, name := range exporters {
		breaks[name] = append(breaks[name], rs.maxSeq(t, name))
	}
	time.Sleep(5 * time.Second)
	logged := len(readLocalLog(t, base).lines)
	rs.start(t)
	time.Sleep(3 * time.Second)
	if err := os.WriteFile(stop1, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out1 := run1.wait(t, time.Minute)
	l := readLocalLog(t, base)
	t.Logf("run 1: %d records, %d of them logged by the end of the outage; breaks at %v", len(l.lines), logged, breaks)
	for _, name := range exporters {
		want := fmt.Sprintf("agenttrace: exported to %s: ", name)
		if !strings.Contains(out1, want) || !strings.Contains(out1, fmt.Sprintf("(seq 1-%d), the log up to its end", len(l.lines))) {
			t.Fatalf("run 1 did not deliver everything to %s:\n%s", name, out1)
		}
	}
	if logged <= int(max(breaks["tcp"][0], breaks["tls"][0]))+50 {
		t.Fatalf("only %d records were logged by the end of the outage (the receiver had seq %v): the workload did not go on", logged, breaks)
	}

	// Run 2 continues the log and is killed; run 3 continues after it.
	last1 := uint64(len(l.lines))
	run2 := startExportRun(t, dir, append(flags, busyWorkload(filepath.Join(dir, "stop2"))...)...)
	for _, name := range exporters {
		rs.waitSeq(t, name, last1+300, 30*time.Second)
	}
	run2.cmd.Process.Signal(syscall.SIGKILL)
	<-run2.done
	mount, _ := cgroup2Mount()
	killSession(t, mount, run2.cmd.Process.Pid)
	time.Sleep(time.Second) // rsyslogd writes what it read before the connection closed
	for _, name := range exporters {
		breaks[name] = append(breaks[name], rs.maxSeq(t, name))
	}
	run3 := startExportRun(t, dir, append(flags, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do cat /etc/hostname >/dev/null; done")...)
	out3 := run3.wait(t, time.Minute)
	l = readLocalLog(t, base)
	for _, name := range exporters {
		if !strings.Contains(out3, fmt.Sprintf("agenttrace: exported to %s: ", name)) || !strings.Contains(out3, fmt.Sprintf("-%d), the log up to its end", len(l.lines))) {
			t.Fatalf("run 3 did not deliver everything to %s:\n%s", name, out3)
		}
		rs.waitSyslog(t, name, len(l.lines), 5*time.Second)
		count := checkSyslog(t, name, rs.readSyslog(t, name), l)
		dups := 0
		for seq := uint64(1); seq <= uint64(len(l.lines)); seq++ {
			if count[seq] == 0 {
				t.Fatalf("%s: seq %d (%s) never arrived", name, seq, l.types[seq-1])
			}
			if count[seq] == 1 {
				continue
			}
			dups += count[seq] - 1
			inWindow := false
			for _, b := range breaks[name] {
				inWindow = inWindow || seq <= b && seq+window > b
			}
			if !inWindow || count[seq] > 3 {
				t.Fatalf("%s: seq %d arrived %d times; duplicates are allowed only within %d seqs below a break (the receiver's highest seq at each break: %v)",
					name, seq, count[seq], window, breaks[name])
			}
		}
		t.Logf("%s: %d records (run 1: 1-%d), every one delivered, %d duplicates; breaks at %v", name, len(l.lines), last1, dups, breaks[name])
	}
	verifyLog(t, base)
}

// TestExportOnce backfills a seq range of a finished log with `agenttrace
// export --once`: exactly that range arrives, and no cursor is written.
func TestExportOnce(t *testing.T) {
	requireRoot(t)
	rs := startRsyslog(t)
	dir := testDir(t)
	base := filepath.Join(dir, "audit.jsonl")
	s := agent(t, dir, runOpts{log: base, noLog: true, flags: []string{"--rotate-size", "8192"}},
		"sh", "-c", "for i in 1 2 3 4 5 6 7 8; do cat /etc/hostname >/dev/null; done")
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	verifyLog(t, "--pubkey", base+".pub", base)
	l := readLocalLog(t, base)
	if len(l.lines) < 60 {
		t.Fatalf("want at least 60 records, got %d", len(l.lines))
	}
	state := filepath.Join(dir, "state")
	conf := rs.exportConfig(t, dir, state, "")
	from, to := 17, len(l.lines)-9

	out, err := exec.Command(agentBin, "export", "--config", conf, "--from-seq", strconv.Itoa(from), "--to-seq", strconv.Itoa(to), "--once", base).CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrace export: %v\n%s", err, out)
	}
	for _, name := range []string{"tcp", "tls"} {
		if want := fmt.Sprintf("agenttrace: export %s: %d records sent (seq %d-%d)", name, to-from+1, from, to); !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
		rs.waitSyslog(t, name, to-from+1, 5*time.Second)
		count := checkSyslog(t, name, rs.readSyslog(t, name), l)
		for seq := uint64(1); seq <= uint64(len(l.lines)); seq++ {
			want := 0
			if seq >= uint64(from) && seq <= uint64(to) {
				want = 1
			}
			if count[seq] != want {
				t.Fatalf("%s: seq %d arrived %d times, want %d", name, seq, count[seq], want)
			}
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("export --once touched the state directory: %v", err)
	}

	// Only one exporter, the whole log.
	out, err = exec.Command(agentBin, "export", "--config", conf, "--exporter", "tls", "--once", base).CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrace export: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("agenttrace: export tls: %d records sent (seq 1-%d)", len(l.lines), len(l.lines)); !strings.Contains(string(out), want) || strings.Contains(string(out), "export tcp") {
		t.Errorf("output lacks %q or names tcp:\n%s", want, out)
	}
	rs.waitSyslog(t, "tls", to-from+1+len(l.lines), 5*time.Second)

	// Usage errors.
	for _, args := range [][]string{
		{"export", "--config", conf, base},
		{"export", "--once", base},
		{"export", "--config", conf, "--exporter", "nope", "--once", base},
		{"export", "--config", conf, "--once", filepath.Join(dir, "missing.jsonl")},
	} {
		out, err := exec.Command(agentBin, args...).CombinedOutput()
		if err == nil {
			t.Errorf("agenttrace %q succeeded:\n%s", args, out)
		}
	}
}

// BenchmarkExportSyslog measures the syslog exporter's throughput to a
// local rsyslogd, over TCP and over TLS: `agenttrace export --once` of a
// log of a real traced workload, from start until rsyslogd closed the
// connection in order (it read every record), and until it wrote the last
// one to its file. Run as root:
//
//	go test ./test/integration -run '^$' -bench ExportSyslog -benchtime 3x
//
// AGENTTRACE_BENCH_SYSLOG adds lines to both exporters' syslog: block,
// e.g. "      max_unconfirmed: 10000000".
func BenchmarkExportSyslog(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: agenttrace run makes the log")
	}
	rs := startRsyslog(b)
	dir := b.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	out, err := exec.Command(agentBin, "run", "--log", base, "--", "sh", "-c",
		`i=0; while [ $i -lt 3000 ]; do cat /etc/hostname >/dev/null; i=$((i+1)); done`).CombinedOutput()
	if err != nil {
		b.Fatalf("agenttrace run: %v\n%s", err, out)
	}
	l := readLocalLog(b, base)
	var size int64
	for _, line := range l.lines {
		size += int64(len(line)) + 1
	}
	conf := rs.exportConfig(b, dir, filepath.Join(dir, "state"), os.Getenv("AGENTTRACE_BENCH_SYSLOG"))
	for _, name := range []string{"tcp", "tls"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			written := len(rs.readSyslog(b, name))
			var delivered, stored time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				out, err := exec.Command(agentBin, "export", "--config", conf, "--exporter", name, "--once", base).CombinedOutput()
				if err != nil {
					b.Fatalf("agenttrace export: %v\n%s", err, out)
				}
				delivered += time.Since(start)
				written += len(l.lines)
				for {
					data, _ := os.ReadFile(filepath.Join(rs.dir, name+".log"))
					if bytes.Count(data, []byte("\n")) >= written {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				stored += time.Since(start)
			}
			n := float64(b.N * len(l.lines))
			b.ReportMetric(n/delivered.Seconds(), "records/s")
			b.ReportMetric(n/stored.Seconds(), "records-written/s")
			b.ReportMetric(float64(len(l.lines)), "records/log")
			b.ReportMetric(float64(size)/float64(len(l.lines)), "bytes/record")
		})
	}
}
