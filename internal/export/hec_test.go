package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/sink"
)

const hecTestToken = "11111111-2222-4333-8444-555555555555"

// hecServer implements the contract of Splunk's HTTP Event Collector that
// the HEC destination relies on: token auth (401/403 with HEC codes),
// gzip bodies, concatenated JSON events, 400 "Invalid data format" with
// invalid-event-number, 413, scripted 429/5xx and slow replies, and
// indexer acknowledgement on a channel with acks that come late.
type hecServer struct {
	srv   *httptest.Server
	token string
	// ack: the token has indexer acknowledgement; ackAfter: polls of an
	// ackId that read false before it reads true.
	ack      bool
	ackAfter int
	// invalid: seqs whose events the server refuses as invalid data;
	// noEventNumber leaves invalid-event-number out of that reply.
	invalid       map[string]bool
	noEventNumber bool
	maxBody       int // > 0: a larger uncompressed body gets 413
	// fail scripts the reply to event request n (1-based): status 0 for
	// the normal handling, delay before replying.
	fail func(n int) (status int, body string, header map[string]string, delay time.Duration)

	mu       sync.Mutex
	requests []hecRequest
	events   []hecReceived
	nextAck  uint64
	polls    map[uint64]int
	ackPolls int
}

type hecRequest struct {
	gzip    bool
	auth    string
	channel string
	events  int
	bytes   int // uncompressed
	status  int
}

// hecReceived is an accepted event, parsed strictly: a member HEC does not
// know fails the request.
type hecReceived struct {
	Time       json.Number       `json:"time"`
	Host       string            `json:"host"`
	Source     string            `json:"source"`
	Sourcetype string            `json:"sourcetype"`
	Index      string            `json:"index"`
	Event      json.RawMessage   `json:"event"`
	Fields     map[string]string `json:"fields"`
}

func newHECServer(t testing.TB) *hecServer {
	s := &hecServer{token: hecTestToken, invalid: map[string]bool{}, polls: map[uint64]int{}}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes TestHECUnknownCA fails on purpose
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *hecServer) reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (s *hecServer) handle(w http.ResponseWriter, r *http.Request) {
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		s.reply(w, 401, `{"text":"Token is required","code":2}`)
		return
	case auth == "Splunk disabled-token":
		s.reply(w, 403, `{"text":"Token disabled","code":1}`)
		return
	case auth != "Splunk "+s.token:
		s.reply(w, 403, `{"text":"Invalid token","code":4}`)
		return
	}
	switch r.URL.Path {
	case "/services/collector/event":
		s.handleEvents(w, r)
	case "/services/collector/ack":
		s.handleAck(w, r)
	default:
		s.reply(w, 404, `{"text":"The requested URL was not found on this server.","code":404}`)
	}
}

func (s *hecServer) handleEvents(w http.ResponseWriter, r *http.Request) {
	req := hecRequest{gzip: r.Header.Get("Content-Encoding") == "gzip", auth: r.Header.Get("Authorization"),
		channel: r.Header.Get("X-Splunk-Request-Channel")}
	var body io.Reader = r.Body
	if req.gzip {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			s.reply(w, 400, `{"text":"Invalid data format","code":6}`)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		s.reply(w, 400, `{"text":"Invalid data format","code":6}`)
		return
	}
	req.bytes = len(raw)
	var events []hecReceived
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	for dec.More() {
		var ev hecReceived
		if err := dec.Decode(&ev); err != nil {
			s.reply(w, 400, fmt.Sprintf(`{"text":"Invalid data format","code":6,"invalid-event-number":%d}`, len(events)))
			return
		}
		events = append(events, ev)
	}
	req.events = len(events)

	s.mu.Lock()
	s.requests = append(s.requests, req)
	n := len(s.requests)
	fail := s.fail
	s.mu.Unlock()
	status := func(code int) {
		s.mu.Lock()
		s.requests[n-1].status = code
		s.mu.Unlock()
	}
	if fail != nil {
		if code, text, header, delay := fail(n); code != 0 || delay > 0 {
			if delay > 0 {
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
					status(-1)
					return
				}
			}
			if code != 0 {
				for k, v := range header {
					w.Header().Set(k, v)
				}
				status(code)
				s.reply(w, code, text)
				return
			}
		}
	}
	if s.ack && req.channel == "" {
		status(400)
		s.reply(w, 400, `{"text":"Data channel is missing","code":10}`)
		return
	}
	if s.maxBody > 0 && req.bytes > s.maxBody {
		status(413)
		s.reply(w, 413, `Content-Length of `+strconv.Itoa(req.bytes)+` too large (maximum is `+strconv.Itoa(s.maxBody)+`)`)
		return
	}
	for i, ev := range events {
		if len(ev.Event) == 0 || string(ev.Event) == `""` {
			status(400)
			s.reply(w, 400, fmt.Sprintf(`{"text":"Event field is required","code":12,"invalid-event-number":%d}`, i))
			return
		}
		if s.invalid[ev.Fields["seq"]] && ev.Fields["export_error"] == "" {
			status(400)
			if s.noEventNumber {
				s.reply(w, 400, `{"text":"Invalid data format","code":6}`)
			} else {
				s.reply(w, 400, fmt.Sprintf(`{"text":"Invalid data format","code":6,"invalid-event-number":%d}`, i))
			}
			return
		}
	}
	s.mu.Lock()
	s.events = append(s.events, events...)
	s.requests[n-1].status = 200
	reply := `{"text":"Success","code":0}`
	if s.ack {
		reply = fmt.Sprintf(`{"text":"Success","code":0,"ackId":%d}`, s.nextAck)
		s.nextAck++
	}
	s.mu.Unlock()
	s.reply(w, 200, reply)
}

func (s *hecServer) handleAck(w http.ResponseWriter, r *http.Request) {
	if !s.ack {
		s.reply(w, 400, `{"text":"ACK is disabled","code":14}`)
		return
	}
	if r.Header.Get("X-Splunk-Request-Channel") == "" {
		s.reply(w, 400, `{"text":"Data channel is missing","code":10}`)
		return
	}
	var q struct{ Acks []uint64 }
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		s.reply(w, 400, `{"text":"Invalid data format","code":6}`)
		return
	}
	s.mu.Lock()
	s.ackPolls++
	acks := map[string]bool{}
	for _, id := range q.Acks {
		if id < s.nextAck {
			s.polls[id]++
		}
		acks[strconv.FormatUint(id, 10)] = id < s.nextAck && s.polls[id] > s.ackAfter
	}
	s.mu.Unlock()
	out, _ := json.Marshal(map[string]any{"acks": acks})
	s.reply(w, 200, string(out))
}

func (s *hecServer) received() ([]hecReceived, []hecRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hecReceived(nil), s.events...), append([]hecRequest(nil), s.requests...)
}

// caFile writes the test server's certificate as a PEM CA file.
func (s *hecServer) caFile(t testing.TB) string {
	path := filepath.Join(t.TempDir(), "ca.pem")
	cert := s.srv.Certificate()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func hecTokenFile(t testing.TB, token string, mode os.FileMode) string {
	path := filepath.Join(t.TempDir(), "hec.token")
	if err := os.WriteFile(path, []byte(token+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// hecClock stands in for time in backoff and ack polling: sleeping
// advances it at once, and the waits are recorded.
type hecClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func (c *hecClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *hecClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *hecClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// newTestHEC is an HEC destination for s, with a fake clock and no
// jitter (every wait is the fixed half of its backoff).
func newTestHEC(t testing.TB, s *hecServer, cfg HECConfig, format string) (*HEC, *hecClock) {
	t.Helper()
	cfg.URL = s.srv.URL
	if cfg.Token == "" && cfg.TokenFile == "" {
		cfg.TokenFile = hecTokenFile(t, hecTestToken, 0o600)
	}
	if cfg.TLS == nil {
		cfg.TLS = &HECTLS{CAFile: s.caFile(t)}
	}
	h, err := NewHEC(cfg, format)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	clock := &hecClock{t: time.Unix(1_800_000_000, 0)}
	h.now, h.sleep = clock.now, clock.sleep
	h.jitter = func(int64) int64 { return 0 }
	return h, clock
}

const hecTestLogID = "011de81458be8e7719005fc6381d9822"

// hecRecords are n records of the log: the valid records of the schema's
// test data in turn, numbered 1…n as the Runner would read them.
func hecRecords(t testing.TB, n int) []Record {
	t.Helper()
	data, err := os.ReadFile("../../schema/testdata/valid.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	recs := make([]Record, n)
	for i := range recs {
		line := lines[i%len(lines)]
		var env struct{ Type, Host string }
		if err := json.Unmarshal(line, &env); err != nil {
			t.Fatal(err)
		}
		recs[i] = withTime(Record{Line: line, Seq: uint64(i + 1), Type: env.Type, Host: env.Host, LogID: hecTestLogID, Segment: 1})
		if len(recs[i].Time) == 0 {
			t.Fatalf("line %d of valid.jsonl has no time", i%len(lines)+1)
		}
	}
	return recs
}

func hecEvents(t testing.TB, recs []Record, f Format) []Event {
	t.Helper()
	evs := make([]Event, len(recs))
	for i := range recs {
		body, err := f.Append(nil, &recs[i])
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = Event{Record: &recs[i], Body: body}
	}
	return evs
}

// hecTime is the HEC time of a record: its time member as seconds since
// the epoch with the nanoseconds as a 9-digit fraction.
func hecTime(t testing.TB, line []byte) string {
	var env struct{ Time time.Time }
	if err := json.Unmarshal(line, &env); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d.%09d", env.Time.Unix(), env.Time.Nanosecond())
}

// checkDelivered asserts that the server holds every record exactly once
// (none lost, none duplicated, none it should not), each byte for byte.
func checkDelivered(t testing.TB, got []hecReceived, recs []Record, sourcetype string) {
	t.Helper()
	bySeq := map[string]int{}
	for _, ev := range got {
		bySeq[ev.Fields["seq"]]++
	}
	for i := range recs {
		r := &recs[i]
		seq := strconv.FormatUint(r.Seq, 10)
		if bySeq[seq] != 1 {
			t.Errorf("seq %d delivered %d times, want once", r.Seq, bySeq[seq])
		}
		delete(bySeq, seq)
	}
	for seq := range bySeq {
		t.Errorf("seq %s delivered, but it is not in the batch", seq)
	}
	want := map[string]*Record{}
	for i := range recs {
		want[strconv.FormatUint(recs[i].Seq, 10)] = &recs[i]
	}
	for _, ev := range got {
		r := want[ev.Fields["seq"]]
		if r == nil {
			continue
		}
		if !bytes.Equal(ev.Event, r.Line) {
			t.Errorf("seq %d: event is not the log line:\n got %s\nwant %s", r.Seq, ev.Event, r.Line)
		}
		if ev.Fields["log_id"] != hecTestLogID || ev.Fields["type"] != r.Type || len(ev.Fields) != 3 {
			t.Errorf("seq %d: fields %v, want log_id %s, seq, type %s", r.Seq, ev.Fields, hecTestLogID, r.Type)
		}
		if ev.Host != r.Host || ev.Sourcetype != sourcetype {
			t.Errorf("seq %d: host %q sourcetype %q, want %q %q", r.Seq, ev.Host, ev.Sourcetype, r.Host, sourcetype)
		}
		if want := hecTime(t, r.Line); string(ev.Time) != want {
			t.Errorf("seq %d: time %s, want %s", r.Seq, ev.Time, want)
		}
	}
}

func TestHECDeliversEveryEventExactly(t *testing.T) {
	for _, gz := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			s := newHECServer(t)
			h, clock := newTestHEC(t, s, HECConfig{BatchSize: 100, Gzip: &gz, Index: "agents", Source: "agenttrace-test"}, "native")
			recs := hecRecords(t, 1000)
			evs := hecEvents(t, recs, Native{})
			for i := 0; i < len(evs); i += 250 {
				if err := h.Send(context.Background(), evs[i:i+250]); err != nil {
					t.Fatal(err)
				}
			}
			got, reqs := s.received()
			checkDelivered(t, got, recs, DefaultHECSourcetype)
			for _, ev := range got {
				if ev.Index != "agents" || ev.Source != "agenttrace-test" {
					t.Fatalf("index %q source %q", ev.Index, ev.Source)
				}
			}
			// 250 events in requests of at most 100: 100, 100, 50.
			if len(reqs) != 12 {
				t.Errorf("%d requests, want 12", len(reqs))
			}
			for i, r := range reqs {
				if want := []int{100, 100, 50}[i%3]; r.events != want {
					t.Errorf("request %d: %d events, want %d", i, r.events, want)
				}
				if r.gzip != gz || r.auth != "Splunk "+hecTestToken || r.channel != "" {
					t.Errorf("request %d: gzip %v auth %q channel %q", i, r.gzip, r.auth, r.channel)
				}
			}
			if st := h.Stats(); st.Events != 1000 || st.Requests != 12 || st.Retries != 0 || st.Rejected != 0 {
				t.Errorf("stats %+v", st)
			}
			if w := clock.waits(); len(w) != 0 {
				t.Errorf("waited %v", w)
			}
		})
	}
}

func TestHECMaxBatchBytes(t *testing.T) {
	s := newHECServer(t)
	h, _ := newTestHEC(t, s, HECConfig{MaxBatchBytes: 4096}, "native")
	recs := hecRecords(t, 200)
	// One record larger than the limit goes alone.
	big := bytes.Replace(recs[10].Line, []byte(`"argv":[`), []byte(`"argv":["`+strings.Repeat("a", 6000)+`",`), 1)
	if bytes.Equal(big, recs[10].Line) {
		recs[10].Line = bytes.Replace(recs[10].Line, []byte(`"host":"`), []byte(`"host":"`+strings.Repeat("h", 6000)), 1)
	} else {
		recs[10].Line = big
	}
	if err := h.Send(context.Background(), hecEvents(t, recs, Native{})); err != nil {
		t.Fatal(err)
	}
	got, reqs := s.received()
	checkDelivered(t, got, recs, DefaultHECSourcetype)
	alone := 0
	for i, r := range reqs {
		if r.bytes > 4096 {
			if r.events != 1 {
				t.Errorf("request %d: %d bytes in %d events, over max_batch_bytes", i, r.bytes, r.events)
			}
			alone++
		}
	}
	if alone != 1 || len(reqs) < 200*600/4096 {
		t.Errorf("%d requests, %d over the limit alone", len(reqs), alone)
	}
}

func TestHECRetriesBusyAndThrottled(t *testing.T) {
	s := newHECServer(t)
	s.fail = func(n int) (int, string, map[string]string, time.Duration) {
		switch n {
		case 1:
			return 503, `{"text":"Server is busy","code":9}`, nil, 0
		case 2:
			return 429, `{"text":"Too many requests"}`, map[string]string{"Retry-After": "7"}, 0
		case 3:
			return 500, `{"text":"Internal server error","code":8}`, nil, 0
		}
		return 0, "", nil, 0
	}
	h, clock := newTestHEC(t, s, HECConfig{}, "native")
	recs := hecRecords(t, 50)
	if err := h.Send(context.Background(), hecEvents(t, recs, Native{})); err != nil {
		t.Fatal(err)
	}
	got, reqs := s.received()
	checkDelivered(t, got, recs, DefaultHECSourcetype)
	// Backoff 500ms, 1s, 2s with equal jitter (here its fixed half), and
	// Retry-After's 7s over the second.
	if w := fmt.Sprint(clock.waits()); w != "[250ms 7s 1s]" {
		t.Errorf("waits %s, want [250ms 7s 1s]", w)
	}
	if st := h.Stats(); st.Retries != 3 || st.Requests != 4 || st.Events != 50 {
		t.Errorf("stats %+v", st)
	}
	if len(reqs) != 4 {
		t.Errorf("%d requests", len(reqs))
	}
}

func TestHECBackoffJitter(t *testing.T) {
	h := &HEC{}
	for attempt, want := range map[int][2]time.Duration{
		1: {250 * time.Millisecond, 500 * time.Millisecond},
		2: {500 * time.Millisecond, time.Second},
		4: {2 * time.Second, 4 * time.Second},
		8: {15 * time.Second, 30 * time.Second},
	} {
		h.jitter = func(n int64) int64 { return 0 }
		if d := h.backoff(attempt, 0); d != want[0] {
			t.Errorf("attempt %d, least jitter: %s, want %s", attempt, d, want[0])
		}
		h.jitter = func(n int64) int64 { return n - 1 }
		if d := h.backoff(attempt, 0); d != want[1] {
			t.Errorf("attempt %d, most jitter: %s, want %s", attempt, d, want[1])
		}
	}
	if d := h.backoff(1, time.Hour); d != hecRetryAfterMax {
		t.Errorf("Retry-After of an hour: %s, want the cap %s", d, hecRetryAfterMax)
	}
	now := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second} {
		if d := retryAfter(v, now); d != want {
			t.Errorf("Retry-After %q: %s, want %s", v, d, want)
		}
	}
}

// A collector that keeps failing makes Send fail after hecAttempts; the
// Runner sends the batch again later, and once the collector recovers
// every event is there, none lost.
func TestHECFailsThenRecovers(t *testing.T) {
	s := newHECServer(t)
	var down sync.Mutex
	failing := true
	s.fail = func(n int) (int, string, map[string]string, time.Duration) {
		down.Lock()
		defer down.Unlock()
		if failing {
			return 503, `{"text":"HEC is unhealthy, queues are full","code":18}`, nil, 0
		}
		return 0, "", nil, 0
	}
	h, clock := newTestHEC(t, s, HECConfig{BatchSize: 20}, "native")
	recs := hecRecords(t, 60)
	evs := hecEvents(t, recs, Native{})
	err := h.Send(context.Background(), evs)
	var he *HECError
	if !errors.As(err, &he) || he.Status != 503 || he.Code != 18 || !strings.Contains(err.Error(), "after 5 attempts") {
		t.Fatalf("error %v, want HTTP 503 code 18 after 5 attempts", err)
	}
	if w := fmt.Sprint(clock.waits()); w != "[250ms 500ms 1s 2s]" {
		t.Errorf("waits %s", w)
	}
	down.Lock()
	failing = false
	down.Unlock()
	if err := h.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	got, _ := s.received()
	checkDelivered(t, got, recs, DefaultHECSourcetype)
}

func TestHECTimeoutIsRetried(t *testing.T) {
	s := newHECServer(t)
	s.fail = func(n int) (int, string, map[string]string, time.Duration) {
		if n == 1 {
			return 0, "", nil, 2 * time.Second // beyond the timeout: the client gives up first
		}
		return 0, "", nil, 0
	}
	h, clock := newTestHEC(t, s, HECConfig{Timeout: 200 * time.Millisecond}, "native")
	recs := hecRecords(t, 10)
	start := time.Now()
	if err := h.Send(context.Background(), hecEvents(t, recs, Native{})); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("Send took %s: the request timeout did not apply", d)
	}
	got, _ := s.received()
	checkDelivered(t, got, recs, DefaultHECSourcetype)
	if st := h.Stats(); st.Retries != 1 || len(clock.waits()) != 1 {
		t.Errorf("stats %+v, waits %v", st, clock.waits())
	}
}

func TestHECTokenRefused(t *testing.T) {
	for _, tc := range []struct {
		token      string
		status     int
		code       int
		text, hint string
	}{
		{"wrong-token", 403, 4, "Invalid token", "check the token in token_file"},
		{"disabled-token", 403, 1, "Token disabled", "the token is disabled: enable it in Splunk"},
	} {
		t.Run(tc.token, func(t *testing.T) {
			s := newHECServer(t)
			h, clock := newTestHEC(t, s, HECConfig{TokenFile: hecTokenFile(t, tc.token, 0o600)}, "native")
			err := h.Send(context.Background(), hecEvents(t, hecRecords(t, 5), Native{}))
			var he *HECError
			if !errors.As(err, &he) || he.Status != tc.status || he.Code != tc.code || he.Text != tc.text {
				t.Fatalf("error %v, want HTTP %d code %d", err, tc.status, tc.code)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("error %q does not say %q", err, tc.hint)
			}
			// Not retried here: the error reaches the Runner, which keeps
			// the records and tries again with its backoff.
			if st := h.Stats(); st.Retries != 0 || st.Requests != 1 || len(clock.waits()) != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestHECInvalidEventIsIsolated(t *testing.T) {
	for _, tc := range []struct {
		name          string
		noEventNumber bool
		maxBody       int
	}{
		{name: "invalid-event-number"},
		{name: "bisect", noEventNumber: true},
		{name: "413", maxBody: 8000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHECServer(t)
			s.noEventNumber = tc.noEventNumber
			s.maxBody = tc.maxBody
			h, _ := newTestHEC(t, s, HECConfig{}, "native")
			recs := hecRecords(t, 40)
			bad := map[uint64]bool{17: true, 31: true}
			for seq := range bad {
				if tc.maxBody > 0 {
					// Too large for any request: 413.
					recs[seq-1].Line = bytes.Replace(recs[seq-1].Line, []byte(`"host":"`), []byte(`"host":"`+strings.Repeat("x", tc.maxBody)), 1)
				} else {
					s.invalid[strconv.FormatUint(seq, 10)] = true
				}
			}
			if err := h.Send(context.Background(), hecEvents(t, recs, Native{})); err != nil {
				t.Fatal(err)
			}
			got, reqs := s.received()
			var good []Record
			for _, r := range recs {
				if !bad[r.Seq] {
					good = append(good, r)
				}
			}
			var delivered, replaced []hecReceived
			for _, ev := range got {
				if ev.Fields["export_error"] != "" {
					replaced = append(replaced, ev)
				} else {
					delivered = append(delivered, ev)
				}
			}
			// Events before the invalid one may be sent twice (HEC may have
			// indexed them); count each once for the exactness check.
			seen := map[string]bool{}
			var unique []hecReceived
			for _, ev := range delivered {
				if !seen[ev.Fields["seq"]] {
					seen[ev.Fields["seq"]] = true
					unique = append(unique, ev)
				}
			}
			checkDelivered(t, unique, good, DefaultHECSourcetype)
			if len(replaced) != 2 {
				t.Fatalf("%d export_error events, want 2", len(replaced))
			}
			for _, ev := range replaced {
				var e struct {
					Err struct {
						Error string
						LogID string `json:"log_id"`
						Seq   uint64
						Type  string
						Bytes int
					} `json:"agenttrace_export_error"`
				}
				if err := json.Unmarshal(ev.Event, &e); err != nil {
					t.Fatal(err)
				}
				r := recs[e.Err.Seq-1]
				if !bad[e.Err.Seq] || ev.Fields["seq"] != strconv.FormatUint(e.Err.Seq, 10) || ev.Fields["log_id"] != hecTestLogID ||
					e.Err.LogID != hecTestLogID || e.Err.Type != r.Type || e.Err.Bytes != len(r.Line) || ev.Fields["export_error"] != "rejected" {
					t.Errorf("export_error event %s fields %v", ev.Event, ev.Fields)
				}
				wantStatus := "HTTP 400, code 6"
				if tc.maxBody > 0 {
					wantStatus = "HTTP 413"
				}
				if !strings.Contains(e.Err.Error, wantStatus) {
					t.Errorf("export_error %q, want %q", e.Err.Error, wantStatus)
				}
				if want := hecTime(t, r.Line); string(ev.Time) != want {
					t.Errorf("export_error time %s, want %s", ev.Time, want)
				}
			}
			if st := h.Stats(); st.Rejected != 2 || st.Retries != 0 {
				t.Errorf("stats %+v", st)
			}
			t.Logf("%d requests, %d events delivered (%d twice)", len(reqs), len(delivered), len(delivered)-len(unique))
		})
	}
}

func TestHECAck(t *testing.T) {
	s := newHECServer(t)
	s.ack = true
	s.ackAfter = 2
	h, clock := newTestHEC(t, s, HECConfig{Ack: true, BatchSize: 25}, "native")
	recs := hecRecords(t, 100)
	if err := h.Send(context.Background(), hecEvents(t, recs, Native{})); err != nil {
		t.Fatal(err)
	}
	got, reqs := s.received()
	checkDelivered(t, got, recs, DefaultHECSourcetype)
	for i, r := range reqs {
		if len(r.channel) != 36 || r.channel != h.channel {
			t.Errorf("request %d: channel %q", i, r.channel)
		}
	}
	s.mu.Lock()
	polls, acked := s.ackPolls, len(s.polls)
	s.mu.Unlock()
	// The check before the first event, then three polls: two answered
	// false, the third true for all four requests.
	if polls != 4 || acked != 4 {
		t.Errorf("%d ack queries for %d ack ids", polls, acked)
	}
	if w := fmt.Sprint(clock.waits()); w != "[500ms 1s]" {
		t.Errorf("waits %s", w)
	}
	// A second batch needs no check.
	if err := h.Send(context.Background(), hecEvents(t, hecRecords(t, 1), Native{})); err != nil {
		t.Fatal(err)
	}
}

func TestHECAckTimeout(t *testing.T) {
	s := newHECServer(t)
	s.ack = true
	s.ackAfter = 1 << 30 // never
	h, clock := newTestHEC(t, s, HECConfig{Ack: true, AckTimeout: 10 * time.Second}, "native")
	err := h.Send(context.Background(), hecEvents(t, hecRecords(t, 5), Native{}))
	if err == nil || !strings.Contains(err.Error(), "1 of 1 requests not acknowledged by the indexers within ack_timeout (10s)") {
		t.Fatalf("error %v", err)
	}
	if st := h.Stats(); st.AckTimeouts != 1 {
		t.Errorf("stats %+v", st)
	}
	var total time.Duration
	for _, d := range clock.waits() {
		total += d
	}
	if total > 10*time.Second || total < 5*time.Second {
		t.Errorf("waited %s (%v) for a 10s ack_timeout", total, clock.waits())
	}
}

func TestHECAckDisabledOnToken(t *testing.T) {
	s := newHECServer(t) // no indexer acknowledgement on the token
	h, _ := newTestHEC(t, s, HECConfig{Ack: true}, "native")
	err := h.Send(context.Background(), hecEvents(t, hecRecords(t, 5), Native{}))
	var he *HECError
	if !errors.As(err, &he) || he.Code != 14 || !strings.Contains(err.Error(), "enable it in Splunk, or set ack: false") {
		t.Fatalf("error %v", err)
	}
	if got, _ := s.received(); len(got) != 0 {
		t.Errorf("%d events sent before the check failed", len(got))
	}
}

func TestHECUnknownCA(t *testing.T) {
	s := newHECServer(t)
	h, _ := newTestHEC(t, s, HECConfig{TLS: &HECTLS{}}, "native") // the system's roots
	err := h.Send(context.Background(), hecEvents(t, hecRecords(t, 1), Native{}))
	if err == nil || !strings.Contains(err.Error(), "hec.tls.ca_file") {
		t.Fatalf("error %v", err)
	}
	if st := h.Stats(); st.Retries != 0 {
		t.Errorf("a certificate error was retried: %+v", st)
	}
}

func TestHECOCSF(t *testing.T) {
	s := newHECServer(t)
	h, _ := newTestHEC(t, s, HECConfig{}, "ocsf")
	recs := hecRecords(t, 43)
	if err := h.Send(context.Background(), hecEvents(t, recs, OCSF{ProductVersion: "test"})); err != nil {
		t.Fatal(err)
	}
	got, _ := s.received()
	if len(got) != len(recs) {
		t.Fatalf("%d events, want %d", len(got), len(recs))
	}
	for i, ev := range got {
		r := recs[i]
		var o struct {
			ClassUID int `json:"class_uid"`
			Metadata struct {
				UID     string
				Version string
			}
			Unmapped struct {
				Agenttrace json.RawMessage
			}
		}
		if err := json.Unmarshal(ev.Event, &o); err != nil {
			t.Fatal(err)
		}
		// These records keep the seq of the log they come from; a tailed
		// record's Seq is its line's.
		var env struct{ Seq uint64 }
		json.Unmarshal(r.Line, &env)
		if ev.Sourcetype != DefaultHECSourcetypeOCSF || o.Metadata.Version != "1.3.0" ||
			o.Metadata.UID != fmt.Sprintf("%s:%d", hecTestLogID, env.Seq) || ev.Fields["seq"] != strconv.FormatUint(r.Seq, 10) {
			t.Errorf("seq %d: sourcetype %q metadata %+v fields %v", r.Seq, ev.Sourcetype, o.Metadata, ev.Fields)
		}
		if !bytes.Equal(o.Unmapped.Agenttrace, r.Line) {
			t.Errorf("seq %d: unmapped.agenttrace is not the line", r.Seq)
		}
	}
}

func TestHECEventTime(t *testing.T) {
	for line, want := range map[string]string{
		`{"v":1,"seq":1,"prev":"00","time":"2025-01-02T03:04:05.123456789Z","type":"x"}`: `{"time":1735787045.123456789,`,
		`{"v":1,"seq":1,"prev":"00","time":"2025-01-02T03:04:05.000000001Z","type":"x"}`: `{"time":1735787045.000000001,`,
		`{"v":1,"seq":1,"prev":"00","time":"1970-01-01T00:19:44.2Z","type":"x"}`:         `{"time":1184.200000000,`,
		`{"v":1,"seq":1,"prev":"00","time":"later","type":"x"}`:                          `{"host":`,
	} {
		h := &HEC{cfg: HECConfig{Sourcetype: "s"}}
		rec := withTime(Record{Line: []byte(line), Seq: 1, Host: "h\u202e", LogID: "l", Type: "x"})
		r := &rec
		got := string(h.appendEvent(nil, &Event{Record: r, Body: r.Line}, nil))
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s: %s, want it to start %s", line, got, want)
		}
		if !strings.Contains(got, `"host":"h\u202e","sourcetype":"s","event":`+line+`,"fields":{"log_id":"l","seq":"1","type":"x"}}`) {
			t.Errorf("event %s", got)
		}
	}
}

func TestHECConfigValidate(t *testing.T) {
	dir := t.TempDir()
	good := hecTokenFile(t, hecTestToken, 0o600)
	group := hecTokenFile(t, hecTestToken, 0o640)
	others := hecTokenFile(t, hecTestToken, 0o644)
	groupWritable := hecTokenFile(t, hecTestToken, 0o620)
	yes := true
	for _, tc := range []struct {
		cfg  HECConfig
		want string
	}{
		{HECConfig{URL: "https://splunk:8088", TokenFile: good}, ""},
		{HECConfig{URL: "https://splunk:8088/", TokenFile: group, Ack: true, AckTimeout: time.Minute, Gzip: &yes}, ""},
		{HECConfig{URL: "https://proxy/splunk/services/collector/event", Token: hecTestToken}, ""},
		{HECConfig{URL: "https://splunk:8088", TokenFile: good, TLS: &HECTLS{InsecureSkipVerifyDangerous: true}}, ""},
		{HECConfig{TokenFile: good}, "hec.url: required"},
		{HECConfig{URL: "http://splunk:8088", TokenFile: good}, "must be https"},
		{HECConfig{URL: "https://user:pw@splunk:8088", TokenFile: good}, "no user, query or fragment"},
		{HECConfig{URL: "https://splunk:8088?token=x", TokenFile: good}, "no user, query or fragment"},
		{HECConfig{URL: "https://splunk:8088/services/collector/raw", TokenFile: good}, "posts JSON events to /services/collector/event"},
		{HECConfig{URL: "https://splunk:8088"}, "hec.token_file: required"},
		{HECConfig{URL: "https://splunk:8088", TokenFile: good, Token: "t"}, "give one"},
		{HECConfig{URL: "https://splunk:8088", TokenFile: "hec.token"}, "must be an absolute path"},
		{HECConfig{URL: "https://splunk:8088", TokenFile: filepath.Join(dir, "missing")}, "no such file"},
		{HECConfig{URL: "https://splunk:8088", TokenFile: dir}, "not a regular file"},
		{HECConfig{URL: "https://splunk:8088", TokenFile: others}, "readable by others (mode 0644)"},
		{HECConfig{URL: "https://splunk:8088", TokenFile: groupWritable}, "writable by group or others"},
		{HECConfig{URL: "https://splunk:8088", Token: "a token"}, "hec.token: contains white space"},
		{HECConfig{URL: "https://splunk:8088", Token: "t", Index: "a\nb"}, "hec.index"},
		{HECConfig{URL: "https://splunk:8088", Token: "t", BatchSize: -1}, "hec.batch_size -1"},
		{HECConfig{URL: "https://splunk:8088", Token: "t", MaxBatchBytes: 100}, "hec.max_batch_bytes 100"},
		{HECConfig{URL: "https://splunk:8088", Token: "t", Timeout: -time.Second}, "must not be negative"},
		{HECConfig{URL: "https://splunk:8088", Token: "t", AckTimeout: time.Second}, "only with ack: true"},
		{HECConfig{URL: "https://splunk:8088", Token: "t", TLS: &HECTLS{InsecureSkipVerify: true}}, "insecure_skip_verify_dangerous: true"},
		{HECConfig{URL: "https://splunk:8088", Token: "t", TLS: &HECTLS{KeyFile: "/k.pem"}}, "cert_file and key_file go together"},
	} {
		err := tc.cfg.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for raw, want := range map[string]string{
		"https://splunk:8088":                                         "https://splunk:8088/services/collector/event",
		"https://splunk:8088/services/collector":                      "https://splunk:8088/services/collector/event",
		"https://splunk:8088/services/collector/event/":               "https://splunk:8088/services/collector/event",
		"https://h.example/splunk/services/collector/event":           "https://h.example/splunk/services/collector/event",
		"https://[::1]:8088/":                                         "https://[::1]:8088/services/collector/event",
		"https://http-inputs-acme.splunkcloud.com/services/collector": "https://http-inputs-acme.splunkcloud.com/services/collector/event",
	} {
		event, ack, err := hecEndpoints(raw)
		if err != nil || event != want || ack != strings.TrimSuffix(want, "event")+"ack" {
			t.Errorf("%s: %s %s %v, want %s", raw, event, ack, err, want)
		}
	}
}

func TestHECTokenFileContents(t *testing.T) {
	for content, want := range map[string]string{
		hecTestToken + "\n": "",
		"  \n":              "empty",
		"two words\n":       "white space",
	} {
		path := filepath.Join(t.TempDir(), "token")
		os.WriteFile(path, []byte(content), 0o600)
		_, err := NewHEC(HECConfig{URL: "https://splunk:8088", TokenFile: path}, "native")
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("token file %q: %v, want %q", content, err, want)
		}
	}
}

// BenchmarkHECSend measures the destination against a local collector
// that reads and discards each request: batches of 500 records.
func BenchmarkHECSend(b *testing.B) {
	for _, gz := range []bool{true, false} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, `{"text":"Success","code":0}`)
			}))
			defer srv.Close()
			s := &hecServer{srv: srv}
			h, _ := newTestHEC(b, s, HECConfig{Gzip: &gz}, "native")
			recs := hecRecords(b, 500)
			evs := hecEvents(b, recs, Native{})
			var bytesIn int
			for _, r := range recs {
				bytesIn += len(r.Line)
			}
			b.SetBytes(int64(bytesIn))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := h.Send(context.Background(), evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// A batch that fails after some of its requests were accepted is sent
// again whole: nothing is lost, and the events accepted the first time
// arrive twice, under the same dedupe key.
func TestHECFailsMidBatch(t *testing.T) {
	s := newHECServer(t)
	s.fail = func(n int) (int, string, map[string]string, time.Duration) {
		if n >= 3 && n < 3+hecAttempts {
			return 503, `{"text":"Server is busy","code":9}`, nil, 0
		}
		return 0, "", nil, 0
	}
	h, _ := newTestHEC(t, s, HECConfig{BatchSize: 10}, "native")
	recs := hecRecords(t, 40)
	evs := hecEvents(t, recs, Native{})
	if err := h.Send(context.Background(), evs); err == nil {
		t.Fatal("Send succeeded with a request failing")
	}
	if err := h.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	got, _ := s.received()
	count := map[string]int{}
	var once []hecReceived
	for _, ev := range got {
		if count[ev.Fields["seq"]]++; count[ev.Fields["seq"]] == 1 {
			once = append(once, ev)
		}
	}
	checkDelivered(t, once, recs, DefaultHECSourcetype)
	for _, r := range recs {
		want := 1
		if r.Seq <= 20 { // the first two requests were accepted before the failure
			want = 2
		}
		if n := count[strconv.FormatUint(r.Seq, 10)]; n != want {
			t.Errorf("seq %d arrived %d times, want %d", r.Seq, n, want)
		}
	}
}

// A collector may refuse a request before reading its body (413): the
// request is split and delivered all the same. The transport can then
// still be writing the body when Do returns; the destination waits for it
// to let go before reusing its buffers (hecBody), which go test -race
// would catch if the timing ever exposed it.
func TestHECEarlyReply(t *testing.T) {
	var mu sync.Mutex
	var got []hecReceived
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > 300_000 {
			// Refuse without reading the body, and hold the connection a
			// while, so that the client is still writing when it has the reply.
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
			return
		}
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		var evs []hecReceived
		for dec.More() {
			var ev hecReceived
			if err := dec.Decode(&ev); err != nil {
				w.WriteHeader(400)
				io.WriteString(w, `{"text":"Invalid data format","code":6}`)
				return
			}
			evs = append(evs, ev)
		}
		mu.Lock()
		got = append(got, evs...)
		mu.Unlock()
		io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	off := false
	h, _ := newTestHEC(t, &hecServer{srv: srv}, HECConfig{Gzip: &off, BatchSize: 5000, MaxBatchBytes: 4_000_000}, "native")
	recs := hecRecords(t, 2000)
	if err := h.Send(context.Background(), hecEvents(t, recs, Native{})); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	checkDelivered(t, got, recs, DefaultHECSourcetype)
	if st := h.Stats(); st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The Runner with an HEC destination: a log exported once, through busy
// replies, a refused event and late acknowledgements, arrives whole and
// byte for byte, and the cursor ends at the log's end.
func TestHECRunner(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	writeLog(t, base, 300, sink.Options{})
	lines, _ := logLines(t, base)

	s := newHECServer(t)
	s.ack, s.ackAfter = true, 1
	s.invalid["100"] = true
	s.fail = func(n int) (int, string, map[string]string, time.Duration) {
		if n == 2 || n == 3 {
			return 503, `{"text":"Server is busy","code":9}`, nil, 0
		}
		return 0, "", nil, 0
	}
	hcfg := HECConfig{Ack: true, BatchSize: 50}
	h, _ := newTestHEC(t, s, hcfg, "native")
	cfg := Config{Name: "splunk", Type: "hec", HEC: &h.cfg}
	r, err := NewRunner(cfg, RunnerOptions{Log: base, StateDir: filepath.Join(dir, "state"), Once: true, Destination: h,
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, reqs := s.received()
	bySeq := map[string][]byte{}
	rejected := 0
	for _, ev := range got {
		if ev.Fields["export_error"] != "" {
			rejected++
			continue
		}
		bySeq[ev.Fields["seq"]] = ev.Event
	}
	for i, line := range lines {
		seq := strconv.Itoa(i + 1)
		if seq == "100" {
			if _, ok := bySeq[seq]; ok {
				t.Errorf("the refused record arrived")
			}
			continue
		}
		if !bytes.Equal(bySeq[seq], line) {
			t.Errorf("seq %s: got %s, want the line %s", seq, bySeq[seq], line)
		}
	}
	if rejected != 1 || len(reqs) < len(lines)/50 {
		t.Errorf("%d export errors in %d requests", rejected, len(reqs))
	}
	c, err := LoadCursor(CursorPath(filepath.Join(dir, "state"), "splunk"))
	if err != nil || c == nil || c.Seq != uint64(len(lines)) {
		t.Errorf("cursor %+v (%v), want seq %d", c, err, len(lines))
	}
}
