package export

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/sink"
)

const testLine = `{"v":1,"seq":7,"prev":"2531cca0d33d03f195ad95cd7ae1c94c2f5ce96509ae0b5417374e2ec2f2c3d4","time":"2026-11-27T02:10:29.036682485Z","ktime":3597391625619,"host":"vm","boot_id":"b78835f2","type":"%s","x":{"path":"/tmp/\u00e9\"]"}}`

func TestSyslogFrame(t *testing.T) {
	msg := func(line string) string {
		return fmt.Sprintf("%d %s", len(line), line)
	}
	for _, tc := range []struct {
		name string
		cfg  SyslogConfig
		rec  Record
		want string
	}{
		{
			name: "open, defaults: authpriv.informational",
			rec:  withTime(Record{Line: []byte(fmt.Sprintf(testLine, "open")), Seq: 7, Type: "open", LogID: "c265aca7ea38ba20c7474c6e772482e0", Host: "vm"}),
			want: msg(`<86>1 2026-11-27T02:10:29.036682Z vm agenttrace - open [agenttrace@32473 host="vm" log_id="c265aca7ea38ba20c7474c6e772482e0" seq="7" type="open"] ` + fmt.Sprintf(testLine, "open")),
		},
		{
			name: "gap, defaults: authpriv.warning",
			rec:  withTime(Record{Line: []byte(fmt.Sprintf(testLine, "gap")), Seq: 7, Type: "gap", LogID: "c265", Host: "vm"}),
			want: msg(`<84>1 2026-11-27T02:10:29.036682Z vm agenttrace - gap [agenttrace@32473 host="vm" log_id="c265" seq="7" type="gap"] ` + fmt.Sprintf(testLine, "gap")),
		},
		{
			name: "local0, notice, exec overridden, freeze kept",
			cfg:  SyslogConfig{Facility: "local0", Severity: "notice", SeverityByType: map[string]string{"exec": "warning", "open": "6"}},
			rec:  withTime(Record{Line: []byte(fmt.Sprintf(testLine, "exec")), Seq: 123456789012, Type: "exec", LogID: "ab", Host: "h"}),
			want: msg(`<132>1 2026-11-27T02:10:29.036682Z h agenttrace - exec [agenttrace@32473 host="h" log_id="ab" seq="123456789012" type="exec"] ` + fmt.Sprintf(testLine, "exec")),
		},
		{
			name: "hostile host name: escaped in SD, replaced in HOSTNAME",
			rec:  withTime(Record{Line: []byte(fmt.Sprintf(testLine, "open")), Seq: 1, Type: "open", LogID: "ab", Host: `a b"]\é`}),
			want: msg(`<86>1 2026-11-27T02:10:29.036682Z a_b"]\__ agenttrace - open [agenttrace@32473 host="a b\"\]\\é" log_id="ab" seq="1" type="open"] ` + fmt.Sprintf(testLine, "open")),
		},
		{
			name: "no time, no host",
			rec:  withTime(Record{Line: []byte(`{"v":1,"seq":1,"prev":"x","type":"header"}`), Seq: 1, Type: "header", LogID: "ab"}),
			want: msg(`<86>1 - - agenttrace - header [agenttrace@32473 host="" log_id="ab" seq="1" type="header"] {"v":1,"seq":1,"prev":"x","type":"header"}`),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Address = "127.0.0.1:514"
			s, err := NewSyslog(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := s.AppendFrame([]byte("prefix|"), &Event{Record: &tc.rec, Body: tc.rec.Line})
			if string(got) != "prefix|"+tc.want {
				t.Fatalf("frame\n got %q\nwant %q", got, "prefix|"+tc.want)
			}
		})
	}
	// freeze keeps its default severity next to overrides of other types.
	s, _ := NewSyslog(SyslogConfig{Address: "h:1", Facility: "local0", SeverityByType: map[string]string{"exec": "warning"}})
	for typ, want := range map[string]int{"freeze": 132, "recovery": 132, "exec": 132, "open": 134, "checkpoint": 134} {
		if got := s.Priority(typ); got != want {
			t.Errorf("priority of %s: %d, want %d", typ, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := func(c Config) Config { return c }
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{ok(Config{Name: "siem", Type: "syslog", Syslog: &SyslogConfig{Address: "127.0.0.1:514"}}), ""},
		{ok(Config{Name: "siem", Type: "syslog", Format: "ocsf", Syslog: &SyslogConfig{Address: "[::1]:6514", TLS: &SyslogTLS{CAFile: "/ca.pem"}}}), ""},
		{Config{Type: "syslog", Syslog: &SyslogConfig{Address: "h:1"}}, "name: required"},
		{Config{Name: "../x", Type: "syslog", Syslog: &SyslogConfig{Address: "h:1"}}, `name: "../x": use letters`},
		{Config{Name: "s", Type: "kafka"}, `type: "kafka": want syslog or hec`},
		{Config{Name: "s", Type: "syslog"}, "syslog: required for type syslog"},
		{Config{Name: "s", Type: "syslog", Format: "cef", Syslog: &SyslogConfig{Address: "h:1"}}, `format: "cef": want native or ocsf`},
		{Config{Name: "s", Type: "syslog", Syslog: &SyslogConfig{}}, "syslog.address: required"},
		{Config{Name: "s", Type: "syslog", Syslog: &SyslogConfig{Address: "h"}}, `syslog.address: "h": want host:port`},
		{Config{Name: "s", Type: "syslog", Syslog: &SyslogConfig{Address: "h:0"}}, `syslog.address: "h:0": want a port number`},
		{Config{Name: "s", Type: "syslog", Syslog: &SyslogConfig{Address: "h:1", Facility: "local9"}}, `syslog.facility: "local9"`},
		{Config{Name: "s", Type: "syslog", Syslog: &SyslogConfig{Address: "h:1", Severity: "8"}}, `syslog.severity: "8"`},
		{Config{Name: "s", Type: "syslog", Syslog: &SyslogConfig{Address: "h:1", SeverityByType: map[string]string{"gap": "loud"}}}, `syslog.severity_by_type.gap: "loud"`},
		{Config{Name: "s", Type: "syslog", Syslog: &SyslogConfig{Address: "h:1", BatchSize: 1000, MaxUnconfirmed: 10}}, "syslog.max_unconfirmed: 10: must be at least batch_size (1000)"},
		{Config{Name: "s", Type: "syslog", Syslog: &SyslogConfig{Address: "h:1", TLS: &SyslogTLS{CertFile: "c.pem"}}}, "syslog.tls: cert_file and key_file go together"},
		{Config{Name: "s", Type: "syslog", Syslog: &SyslogConfig{Address: "h:1"}, HEC: &HECConfig{}}, "hec: not allowed for type syslog"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
		// The key at fault, for the configuration reader's line numbers.
		var fe *FieldError
		if key, _, _ := strings.Cut(tc.want, ":"); err != nil && (!errors.As(err, &fe) || fe.Field != key) {
			t.Errorf("%v: not a FieldError of %q", err, key)
		}
	}
}

// syslogServer is a TCP syslog receiver that parses octet-counted frames
// and, for its first connections, resets the connection after a number
// of frames, discarding what follows.
type syslogServer struct {
	ln      net.Listener
	mu      sync.Mutex
	frames  [][]byte
	resetAt []int // frames to read on connection i before resetting it; beyond: never
	conns   int
	resets  int
}

func newSyslogServer(t *testing.T, resetAt ...int) *syslogServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &syslogServer{ln: ln, resetAt: resetAt}
	t.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

func (s *syslogServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		limit := -1
		if s.conns < len(s.resetAt) {
			limit = s.resetAt[s.conns]
		}
		s.conns++
		s.mu.Unlock()
		go s.handle(c, limit)
	}
}

func (s *syslogServer) handle(c net.Conn, limit int) {
	defer c.Close()
	r := bufio.NewReader(c)
	for n := 0; limit < 0 || n < limit; n++ {
		frame, err := readFrame(r)
		if err != nil {
			return // EOF: the client half-closed; closing in turn confirms
		}
		s.mu.Lock()
		s.frames = append(s.frames, frame)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.resets++
	s.mu.Unlock()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) // RST: what the client sent after this is lost
	}
}

// readFrame reads one RFC 6587 octet-counted frame: LEN SP MSG.
func readFrame(r *bufio.Reader) ([]byte, error) {
	lenText, err := r.ReadString(' ')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(lenText, " "))
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("bad frame length %q", lenText)
	}
	frame := make([]byte, n)
	_, err = io.ReadFull(r, frame)
	return frame, err
}

func (s *syslogServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.frames...)
}

// frameSeq returns a frame's MSG (the record) and its SD seq.
func frameSeq(t testing.TB, frame []byte) (uint64, []byte) {
	t.Helper()
	_, rest, ok := bytes.Cut(frame, []byte(` seq="`))
	if !ok {
		t.Fatalf("frame without seq: %q", frame)
	}
	end := bytes.IndexByte(rest, '"')
	seq, err := strconv.ParseUint(string(rest[:end]), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	_, msg, ok := bytes.Cut(rest, []byte(`"] `))
	if !ok {
		t.Fatalf("frame without SD end: %q", frame)
	}
	return seq, msg
}

// TestRunnerSyslogResets sends a rotated log to a receiver that resets the
// connection three times, discarding what it had not read: every record
// arrives, intact, the cursor ends at the end, and duplicates stay within
// the unconfirmed window.
func TestRunnerSyslogResets(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	writeLog(t, base, 3000, sink.Options{RotateSize: 64 << 10, CheckpointRecords: 500})
	lines, _ := logLines(t, base)

	srv := newSyslogServer(t, 700, 10, 1500)
	cfg := Config{Name: "siem", Type: "syslog", Syslog: &SyslogConfig{
		Address: srv.ln.Addr().String(), BatchSize: 100, ConfirmAfter: 50 * time.Millisecond, MaxUnconfirmed: 400,
	}}
	r, err := NewRunner(cfg, RunnerOptions{Log: base, StateDir: filepath.Join(dir, "state"), Once: true,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}

	seen := map[uint64]int{}
	for _, f := range srv.received() {
		seq, msg := frameSeq(t, f)
		if seq < 1 || seq > uint64(len(lines)) || !bytes.Equal(msg, lines[seq-1]) {
			t.Fatalf("seq %d arrived as %q", seq, msg)
		}
		seen[seq]++
	}
	dups := 0
	for seq := uint64(1); seq <= uint64(len(lines)); seq++ {
		if seen[seq] == 0 {
			t.Fatalf("seq %d never arrived", seq)
		}
		dups += seen[seq] - 1
	}
	st := r.Stats()
	srv.mu.Lock()
	resets := srv.resets
	srv.mu.Unlock()
	if resets != 3 || st.Errors < 3 || st.Delivered != uint64(len(lines)) || st.LastSeq != uint64(len(lines)) {
		t.Fatalf("resets %d, stats %+v; want 3 resets, >= 3 errors, %d delivered", resets, st, len(lines))
	}
	if dups > 3*400 || uint64(dups) > st.Retries {
		t.Fatalf("%d duplicates (retries %d): more than 3 windows of 400", dups, st.Retries)
	}
	c, err := LoadCursor(CursorPath(filepath.Join(dir, "state"), "siem"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Seq != uint64(len(lines)) || !c.Final {
		t.Fatalf("cursor %+v, want seq %d final", c, len(lines))
	}
	t.Logf("%d records, %d frames, %d duplicates, stats %+v", len(lines), len(srv.received()), dups, st)
}

// TestRunnerSyslogDown: nothing listens; the Runner retries with backoff,
// never moves the cursor from the log's start, and stops when its context
// ends.
func TestRunnerSyslogDown(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	writeLog(t, base, 10, sink.Options{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg := Config{Name: "siem", Type: "syslog", Syslog: &SyslogConfig{Address: addr}}
	r, err := NewRunner(cfg, RunnerOptions{Log: base, StateDir: filepath.Join(dir, "state"),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, DrainTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err = r.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "undelivered after seq 0") {
		t.Fatalf("Run: %v", err)
	}
	st := r.Stats()
	// 1.1 s of attempts with a backoff of 10-80 ms: at least 10, at most 110.
	if st.Errors < 10 || st.Errors > 110 || st.Delivered != 0 || st.Connected || st.LagRecords != 13 {
		t.Fatalf("stats %+v after %v", st, time.Since(start))
	}
	// The cursor says this exporter answers for the log, and that nothing
	// of it was delivered.
	if c, err := LoadCursor(CursorPath(filepath.Join(dir, "state"), "siem")); err != nil || c.Position != (Position{Segment: 1}) || c.Final {
		t.Fatalf("cursor with nothing delivered: %+v %v", c, err)
	}
}

// fakeDest records what it is sent; the first fail sends fail.
type fakeDest struct {
	fail   int
	events [][]byte
	seqs   []uint64
}

func (d *fakeDest) Send(ctx context.Context, batch []Event) error {
	if d.fail > 0 {
		d.fail--
		return errors.New("unavailable")
	}
	for _, e := range batch {
		d.events = append(d.events, append([]byte(nil), e.Body...))
		d.seqs = append(d.seqs, e.Record.Seq)
	}
	return nil
}

func (d *fakeDest) Close() error { return nil }

// TestRunnerResume: a cursor is written only after a successful send, a
// second run resumes exactly after it (no duplicates, none missing), a
// cursor of another log is refused unless that log was delivered to its
// final checkpoint.
func TestRunnerResume(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	base := filepath.Join(dir, "audit.jsonl")
	cfg := Config{Name: "siem", Type: "syslog", Syslog: &SyslogConfig{Address: "127.0.0.1:1"}}
	run := func(d *fakeDest, base string) error {
		r, err := NewRunner(cfg, RunnerOptions{Log: base, StateDir: state, Once: true, Destination: d, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
		if err != nil {
			return err
		}
		return r.Run(context.Background())
	}

	writeLog(t, base, 40, sink.Options{})
	lines, _ := logLines(t, base)
	d := &fakeDest{fail: 3}
	if err := run(d, base); err != nil {
		t.Fatal(err)
	}
	if len(d.events) != len(lines) {
		t.Fatalf("first run sent %d events, want %d", len(d.events), len(lines))
	}
	for i, e := range d.events {
		if !bytes.Equal(e, lines[i]) {
			t.Fatalf("event %d is %q, want the line %q", i, e, lines[i])
		}
	}

	// The log goes on in a new segment; the next run sends only that.
	writeLog(t, base, 15, sink.Options{})
	lines, _ = logLines(t, base)
	d2 := &fakeDest{}
	if err := run(d2, base); err != nil {
		t.Fatal(err)
	}
	if len(d2.seqs) == 0 || d2.seqs[0] != d.seqs[len(d.seqs)-1]+1 || d2.seqs[len(d2.seqs)-1] != uint64(len(lines)) {
		t.Fatalf("second run sent seqs %v, want %d to %d", d2.seqs, d.seqs[len(d.seqs)-1]+1, len(lines))
	}

	// Another log: its cursor says the first log was delivered to its end.
	other := filepath.Join(dir, "other.jsonl")
	writeLog(t, other, 5, sink.Options{})
	if err := run(&fakeDest{}, other); err != nil {
		t.Fatalf("a new log after a completely delivered one: %v", err)
	}
	// The first log grows, its cursor is now the other log's: not final
	// any more once the other log is continued and cut short of its end.
	c, _ := LoadCursor(CursorPath(state, "siem"))
	c.Final = false
	c.Save(CursorPath(state, "siem"))
	err := run(&fakeDest{}, base)
	if err == nil || !strings.Contains(err.Error(), "is for log "+c.LogID) || !strings.Contains(err.Error(), "agenttrace export --once") {
		t.Fatalf("a cursor of another log: %v", err)
	}

	// A log whose export never delivered anything is not forgotten either.
	third := filepath.Join(dir, "third.jsonl")
	writeLog(t, third, 5, sink.Options{})
	os.Remove(CursorPath(state, "siem"))
	r, err := NewRunner(cfg, RunnerOptions{Log: third, StateDir: state, Destination: &fakeDest{fail: 1 << 30}, DrainTimeout: time.Millisecond, MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); err == nil {
		t.Fatal("an export that delivered nothing ended without error")
	}
	thirdID, _ := firstLogID(third)
	if err := run(&fakeDest{}, other); err == nil || !strings.Contains(err.Error(), "is for log "+thirdID) || !strings.Contains(err.Error(), "delivered up to seq 0") {
		t.Fatalf("after an export that delivered nothing: %v", err)
	}

	// Two runners on one cursor: the second is refused.
	state2 := filepath.Join(dir, "state2")
	r1, err := NewRunner(cfg, RunnerOptions{Log: other, StateDir: state2, Destination: &fakeDest{}})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	if _, err := NewRunner(cfg, RunnerOptions{Log: other, StateDir: state2, Destination: &fakeDest{}}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("a second runner on the same cursor: %v", err)
	}
}

// TestRunnerReplayRange: a replay sends exactly the range and leaves the
// cursor alone.
func TestRunnerReplayRange(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	writeLog(t, base, 200, sink.Options{RotateSize: 4000})
	d := &fakeDest{}
	r, err := NewRunner(Config{Name: "siem", Type: "syslog", Syslog: &SyslogConfig{Address: "h:1"}},
		RunnerOptions{Log: base, Replay: true, Once: true, FromSeq: 77, ToSeq: 150, Destination: d})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(d.seqs) != 74 || d.seqs[0] != 77 || d.seqs[73] != 150 {
		t.Fatalf("replay of 77-150 sent %d records: %v", len(d.seqs), d.seqs)
	}
	if st := r.Stats(); st.Delivered != 74 || st.FirstSeq != 77 || st.LastSeq != 150 {
		t.Fatalf("stats %+v", st)
	}
}

// testCerts makes a CA and a certificate for 127.0.0.1 signed by it.
func testCerts(t testing.TB, dir, name string, usage x509.ExtKeyUsage) (caFile string, pair tls.Certificate, certFile, keyFile string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(file, typ string, der []byte) string {
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey := key()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	certFile, keyFile = write(name+".pem", "CERTIFICATE", der), write(name+".key", "PRIVATE KEY", kder)
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return write(name+"-ca.pem", "CERTIFICATE", caDER), pair, certFile, keyFile
}

// TestSyslogTLS: RFC 5425 with a client certificate; the server's
// certificate is verified against the CA file, and a server the CA did not
// sign is refused.
func TestSyslogTLS(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	writeLog(t, base, 50, sink.Options{})
	lines, _ := logLines(t, base)

	serverCA, serverPair, _, _ := testCerts(t, dir, "server", x509.ExtKeyUsageServerAuth)
	clientCA, _, clientCert, clientKey := testCerts(t, dir, "client", x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(clientCA)
	pool.AppendCertsFromPEM(caPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &syslogServer{ln: tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})}
	t.Cleanup(func() { srv.ln.Close() })
	go srv.serve()

	run := func(ca string) (*Runner, error) {
		cfg := Config{Name: "siem", Type: "syslog", Syslog: &SyslogConfig{Address: srv.ln.Addr().String(),
			TLS: &SyslogTLS{CAFile: ca, CertFile: clientCert, KeyFile: clientKey}}}
		r, err := NewRunner(cfg, RunnerOptions{Log: base, Replay: true, Once: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return r, r.Run(ctx)
	}
	if _, err := run(serverCA); err != nil {
		t.Fatal(err)
	}
	got := srv.received()
	if len(got) != len(lines) {
		t.Fatalf("received %d frames, want %d", len(got), len(lines))
	}
	for i, f := range got {
		if seq, msg := frameSeq(t, f); seq != uint64(i+1) || !bytes.Equal(msg, lines[i]) {
			t.Fatalf("frame %d: seq %d %q", i, seq, msg)
		}
	}
	r, err := run(clientCA) // the wrong CA for the server's certificate
	if err == nil || r.Stats().Delivered != 0 || r.Stats().Errors == 0 {
		t.Fatalf("a server the CA did not sign: %v, stats %+v", err, r.Stats())
	}
}

// BenchmarkSyslogFrame is the per-record cost of the syslog exporter's
// formatting: native body and RFC 5424 frame. It does not allocate.
func BenchmarkSyslogFrame(b *testing.B) {
	s, err := NewSyslog(SyslogConfig{Address: "127.0.0.1:514"})
	if err != nil {
		b.Fatal(err)
	}
	rec := withTime(Record{Line: []byte(fmt.Sprintf(testLine, "open")), Seq: 7, Type: "open", LogID: "c265aca7ea38ba20c7474c6e772482e0", Host: "vm"})
	var body, frame []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(rec.Line)))
	for b.Loop() {
		body, _ = Native{}.Append(body[:0], &rec)
		frame = s.AppendFrame(frame[:0], &Event{Record: &rec, Body: body})
	}
}
