package report

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// TestFollow: a directory of logs followed while they grow. Records already
// there are not shown; each new record of note appears within a second of
// being written, with the log's name in front; the next run's segment of a
// continued log and a log that appears later are followed too; cancelling
// ends Follow with no error.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.jsonl")
	l := newLog(t, path)
	agent := &proc{pid: 100, start: 5000, seq: 3, comm: "python3"}
	l.start()
	l.event(exec(agent, 1_000_000, "/usr/bin/python3", "python3", "agent.py"))
	if err := l.log.Flush(); err != nil {
		t.Fatal(err)
	}

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, pw, []string{dir}, FollowOptions{Rescan: 200 * time.Millisecond})
		pw.Close()
	}()
	lines := make(chan string, 100)
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	// expect waits for the next line, which must be want, within a second.
	expect := func(want string) {
		t.Helper()
		written := time.Now()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("line %q, want %q", got, want)
			}
			t.Logf("%.0f ms: %s", float64(time.Since(written).Microseconds())/1000, got)
		case <-time.After(time.Second):
			t.Fatalf("no line within a second; want %q", want)
		}
	}
	time.Sleep(300 * time.Millisecond) // Follow has found the log's end

	sh := &proc{pid: 101, start: 6000, comm: "python3"}
	l.event(open(agent, 2_000_000, "/home/u/project/.env", 0, 3))
	l.log.Flush()
	expect("a.jsonl: 03:04:05.002 CRED    pid 100 python3 read /home/u/project/.env")
	l.event(open(agent, 2_500_000, "/tmp/ok.txt", 0, 4)) // not of note
	l.event(fork(agent, sh, 10_000_000))
	sh.comm = "sh"
	l.event(exec(sh, 11_000_000, "/usr/bin/sh", "sh", "-c", "true"))
	l.log.Flush()
	expect("a.jsonl: 03:04:05.011 TOOL    pid 101 $ sh -c true [tool call 101-6000-4]")
	l.event(connect(sh, 14_000_000, 443, -111))
	l.log.Flush()
	expect("a.jsonl: 03:04:05.014 connect pid 101 sh 127.0.0.1:443 ECONNREFUSED [tool call 101-6000-4]")
	l.close()

	// A second run continues the log in segment 2.
	l2 := newLog(t, path)
	l2.start()
	l2.log.Flush()
	if files, _ := logfile.Segments(path); len(files) != 2 {
		t.Fatalf("segments %q, want 2", files)
	}
	expect("a.jsonl: 03:04:05.000 start   session: python3 agent.py (agenttrace pid 50, cgroup /agenttrace/run-1)")
	l2.body(30_000_000, &record.Gap{Stage: "kernel", Reason: "ring buffer full", CPU: 1, Lost: record.Counts{"open": 7},
		From: time.Date(2025, 1, 2, 3, 4, 5, 20_000_000, time.UTC), To: time.Date(2025, 1, 2, 3, 4, 5, 30_000_000, time.UTC)})
	l2.log.Flush()
	expect("a.jsonl: 03:04:05.030 GAP     7 open events lost (kernel: ring buffer full, cpu 1)")
	l2.close()

	// A log that appears later is followed from its first record.
	l3 := newLog(t, filepath.Join(dir, "b.jsonl"))
	l3.start()
	l3.log.Flush()
	expect("b.jsonl: 03:04:05.000 start   session: python3 agent.py (agenttrace pid 50, cgroup /agenttrace/run-1)")
	l3.close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Follow: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Follow did not return after its context was cancelled")
	}
	for line := range lines {
		if !strings.Contains(line, " stop ") {
			t.Errorf("unexpected line %q", line)
		}
	}
}
