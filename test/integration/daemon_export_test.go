package integration

// The daemon's exporters against a real rsyslogd on loopback: the
// exporters of the daemon's own configuration tail its log, the metrics
// endpoint shows their progress, and what rsyslogd wrote is compared with
// the log record by record and byte by byte, across a stop, an outage of
// the receiver and a second daemon that continues the log.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/logfile"
)

// daemonExporters is the `exporters:` block of rs.exportConfig (exporters
// "tcp" and "tls"), for the daemon's own configuration: its state_dir line
// is dropped, daemonConfig writes the daemon's.
func daemonExporters(t *testing.T, e *daemonEnv, rs *rsyslog, extra string) string {
	t.Helper()
	data, err := os.ReadFile(rs.exportConfig(t, e.dir, e.stateDir, extra))
	if err != nil {
		t.Fatal(err)
	}
	stanza, ok := strings.CutPrefix(string(data), "state_dir: "+e.stateDir+"\n")
	if !ok || !strings.HasPrefix(stanza, "exporters:\n") {
		t.Fatalf("exportConfig wrote an unexpected file:\n%s", data)
	}
	return strings.TrimRight(stanza, "\n")
}

// scrapeMetrics reads the daemon's metrics endpoint.
func scrapeMetrics(t *testing.T, listen string) []promSample {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v\n%s", resp.Status, err, body)
	}
	return parsePromText(t, string(body))
}

// logBytes is every segment of the log at base, concatenated.
func logBytes(t *testing.T, base string) []byte {
	t.Helper()
	files, _ := logfile.Segments(base)
	var all []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data...)
	}
	return all
}

// waitLogged waits until the log at base mentions s.
func waitLogged(t *testing.T, base, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !bytes.Contains(logBytes(t, base), []byte(s)); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not mention %s after 10 s", s)
		}
	}
}

// waitExported polls the metrics endpoint until, for every exporter,
// agenttrace_exporter_delivered_total is the log's line count less from
// (the seq its cursor started at) and agenttrace_exporter_lag_records is 0,
// in one scrape between two counts of the log's lines that agree.
func waitExported(t *testing.T, d *daemonProc, listen, base string, exporters []string, from uint64) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		before := uint64(bytes.Count(logBytes(t, base), []byte("\n")))
		samples := scrapeMetrics(t, listen)
		after := uint64(bytes.Count(logBytes(t, base), []byte("\n")))
		done := before == after
		last = fmt.Sprintf("the log has %d lines (%d after the scrape)", before, after)
		for _, name := range exporters {
			label := map[string]string{"exporter": name}
			delivered := promValue(t, samples, "agenttrace_exporter_delivered_total", label)
			lag := promValue(t, samples, "agenttrace_exporter_lag_records", label)
			done = done && delivered == float64(before-from) && lag == 0
			last += fmt.Sprintf("; %s: delivered_total %v (want %d), lag_records %v", name, delivered, before-from, lag)
		}
		if done {
			t.Logf("exported: %s", last)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s\ndaemon stderr:\n%s", last, d.stderr())
		}
	}
}

// noExporterTrouble fails if the daemon said an exporter stopped with
// records undelivered or did not stop in time.
func noExporterTrouble(t *testing.T, d *daemonProc) {
	t.Helper()
	for _, m := range d.logged(0) {
		if msg, _ := m["message"].(string); msg == "exporter stopped" || strings.HasPrefix(msg, "exporter did not stop") || msg == "export: stopped" {
			t.Errorf("the daemon logged %v\nstderr:\n%s", m, d.stderr())
		}
	}
}

// TestDaemonExportSyslog runs the daemon with two syslog exporters to a
// real rsyslogd, one over TCP and one over TLS with a client certificate:
//
//  1. while it runs, each exporter's delivered_total reaches the log's line
//     count and its lag_records goes to 0;
//  2. after SIGTERM, every seq of the log, the stop record and the final
//     checkpoint included, arrived exactly once, its MSG the local line
//     byte for byte, with the dedupe key in the SD; the cursor is at the
//     final checkpoint;
//  3. with rsyslogd stopped, a second daemon continues the log; rsyslogd
//     comes back on the same ports; after SIGTERM every seq of both runs
//     arrived at least once, a duplicate only within max_unconfirmed seqs
//     below the receiver's highest seq at the break, and the cursor is at
//     the log's last seq.
func TestDaemonExportSyslog(t *testing.T) {
	e := newDaemonEnv(t)
	rs := startRsyslog(t)
	exporters := []string{"tcp", "tls"}
	// A short confirm_after: the daemon writes a heartbeat and a checkpoint
	// every second, and lag_records is 0 only between their delivery and
	// the next ones. max_unconfirmed is the duplicate window.
	const window = 200
	extra := fmt.Sprintf("      batch_size: 50\n      flush_interval: 50ms\n      confirm_after: 100ms\n      max_unconfirmed: %d", window)
	listen := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, listen, daemonExporters(t, e, rs, extra)))
	base := filepath.Join(e.logDir, "audit.jsonl")
	dir := testDir(t)

	// Run 1.
	d := e.startDaemon(t)
	e.mkdir(t, "agent-1")
	var files []string
	for i := 0; i < 5; i++ {
		p := uniqueFile(t, dir, fmt.Sprintf("export-run1-%d", i))
		e.openIn(t, "agent-1", p)
		files = append(files, p)
	}
	waitLogged(t, base, files[len(files)-1])
	waitExported(t, d, listen, base, exporters, 0)
	d.stop(t)
	noExporterTrouble(t, d)

	dl := e.readDaemonLog(t)
	for _, p := range files {
		dl.one(t, "open", "of "+p, dOpenOf(p))
	}
	l := readLocalLog(t, base)
	last1 := uint64(len(l.lines))
	stopSeq := dl.find("stop", nil)[0].Seq
	if l.types[last1-1] != "checkpoint" || !dl.recs[last1-1].Checkpoint.Final || stopSeq >= last1 {
		t.Fatalf("run 1's log does not end with its stop record and a final checkpoint:\n%s", dl.recs[last1-1].line)
	}
	for _, name := range exporters {
		// The exporter waited for rsyslogd's orderly close; writing to its
		// file may take a moment more.
		rs.waitSeq(t, name, last1, 5*time.Second)
		count := checkSyslog(t, name, rs.readSyslog(t, name), l)
		for seq := uint64(1); seq <= last1; seq++ {
			if count[seq] != 1 {
				t.Fatalf("%s: seq %d (%s) arrived %d times, want once", name, seq, l.types[seq-1], count[seq])
			}
		}
		c := readCursor(t, filepath.Join(e.stateDir, name+".cursor"))
		if c.LogID != l.logID || c.Seq != last1 || !c.Final {
			t.Errorf("%s cursor after run 1: %+v, want log %s seq %d final", name, c, l.logID, last1)
		}
		t.Logf("run 1, %s: seq 1-%d each arrived once (stop record seq %d, final checkpoint seq %d)", name, last1, stopSeq, last1)
	}

	// Run 2: rsyslogd is down when the daemon starts and while it traces.
	breaks := map[string]uint64{}
	for _, name := range exporters {
		breaks[name] = rs.maxSeq(t, name)
	}
	rs.stop(t)
	d2 := e.startDaemon(t)
	downSince := time.Now()
	e.mkdir(t, "agent-2")
	files = files[:0]
	for i := 0; i < 5; i++ {
		p := uniqueFile(t, dir, fmt.Sprintf("export-run2-%d", i))
		e.openIn(t, "agent-2", p)
		files = append(files, p)
	}
	waitLogged(t, base, files[len(files)-1])
	// The outage shows: errors, not connected, and every record written
	// since run 1 waiting (the lag keeps up with the log while sends fail).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		written := uint64(bytes.Count(logBytes(t, base), []byte("\n")))
		samples := scrapeMetrics(t, listen)
		down, state := true, ""
		for _, name := range exporters {
			label := map[string]string{"exporter": name}
			errs := promValue(t, samples, "agenttrace_exporter_errors_total", label)
			connected := promValue(t, samples, "agenttrace_exporter_connected", label)
			lag := promValue(t, samples, "agenttrace_exporter_lag_records", label)
			down = down && errs >= 1 && connected == 0 && lag >= float64(written-last1)
			state += fmt.Sprintf(" %s: errors_total %v connected %v lag_records %v;", name, errs, connected, lag)
		}
		if down {
			t.Logf("rsyslogd down:%s", state)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with rsyslogd down, want errors_total >= 1, connected 0 and lag_records >= %d (the lines written since run 1) for each exporter:%s", written-last1, state)
		}
	}
	if wait := 2*time.Second - time.Since(downSince); wait > 0 {
		time.Sleep(wait)
	}
	rs.start(t)
	t.Logf("rsyslogd was down for %v after the daemon started", time.Since(downSince).Round(time.Millisecond))
	waitExported(t, d2, listen, base, exporters, last1)
	d2.stop(t)
	noExporterTrouble(t, d2)
	// The outage and its end are each logged once per exporter, in lines
	// that name the exporter once (a JSON object with one key twice is
	// not one every reader takes).
	for _, name := range exporters {
		for _, msg := range []string{"export: destination failed; the log keeps the records, retrying", "export: destination reachable again"} {
			var found []string
			for _, line := range strings.Split(d2.stderr(), "\n") {
				if strings.Contains(line, `"message":"`+msg+`"`) && strings.Contains(line, `"exporter":"`+name+`"`) {
					found = append(found, line)
				}
			}
			if len(found) != 1 || strings.Count(found[0], `"exporter":`) != 1 {
				t.Errorf("want one line %q of exporter %s, naming it once; got:\n%s", msg, name, strings.Join(found, "\n"))
			}
		}
	}

	dl = e.readDaemonLog(t)
	if len(dl.segments) != 2 {
		t.Fatalf("want 2 segments after the second daemon, got %v", dl.files)
	}
	for _, p := range files {
		dl.one(t, "open", "of "+p, dOpenOf(p))
	}
	l = readLocalLog(t, base)
	lastSeq := uint64(len(l.lines))
	seg2, err := os.Stat(dl.files[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range exporters {
		rs.waitSeq(t, name, lastSeq, 5*time.Second)
		count := checkSyslog(t, name, rs.readSyslog(t, name), l)
		dups := 0
		for seq := uint64(1); seq <= lastSeq; seq++ {
			switch n := count[seq]; {
			case n == 0:
				t.Fatalf("%s: seq %d (%s) never arrived", name, seq, l.types[seq-1])
			case n > 1:
				dups += n - 1
				if b := breaks[name]; n > 2 || seq > b || seq+window <= b {
					t.Fatalf("%s: seq %d arrived %d times; a duplicate is allowed only within %d seqs below the break (the receiver had seq %d)", name, seq, n, window, b)
				}
			}
		}
		c := readCursor(t, filepath.Join(e.stateDir, name+".cursor"))
		if c.LogID != l.logID || c.Seq != lastSeq || !c.Final || c.Segment != 2 || c.Offset != seg2.Size() {
			t.Errorf("%s cursor after run 2: %+v, want log %s seq %d final, segment 2 offset %d (its end)", name, c, l.logID, lastSeq, seg2.Size())
		}
		t.Logf("%s: seq 1-%d (run 1: 1-%d) all arrived, %d duplicates; break at seq %d", name, lastSeq, last1, dups, breaks[name])
	}
}
