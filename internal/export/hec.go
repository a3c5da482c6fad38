package export

import (
	"bytes"
	"compress/gzip"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/agenttrace/agenttrace/internal/record"
)

// HECConfig: Splunk HTTP Event Collector. Batches of JSON events, one per
// record, posted to <url>/services/collector/event; docs/siem.md ("Splunk
// HEC") describes every field.
type HECConfig struct {
	URL string `yaml:"url"` // https://splunk.example.com:8088: the collector, not an endpoint
	// TokenFile holds the HEC token (surrounding white space ignored). It
	// must not be readable by others nor writable by anyone but its owner.
	TokenFile string `yaml:"token_file,omitempty"`
	// Token is the token itself, for when a file cannot be used: the
	// configuration file then holds a secret. One of TokenFile and Token.
	Token string `yaml:"token,omitempty"`
	// Sourcetype of every event; default DefaultHECSourcetype (native) or
	// DefaultHECSourcetypeOCSF (ocsf).
	Sourcetype string `yaml:"sourcetype,omitempty"`
	Index      string `yaml:"index,omitempty"`  // default: the token's default index
	Source     string `yaml:"source,omitempty"` // default: the token's default source
	// Ack: use indexer acknowledgement. Send then returns nil only when the
	// indexers report every request of the batch indexed (polling
	// /services/collector/ack on this exporter's channel). The token must
	// have indexer acknowledgement enabled.
	Ack        bool          `yaml:"ack,omitempty"`
	AckTimeout time.Duration `yaml:"ack_timeout,omitempty"` // longest wait for acks; default 2m
	// Gzip compresses request bodies (Content-Encoding: gzip). Default true.
	Gzip *bool `yaml:"gzip,omitempty"`
	// BatchSize: events per request (and per Runner batch); default 500.
	BatchSize int `yaml:"batch_size,omitempty"`
	// MaxBatchBytes bounds a request's uncompressed body; default 1000000,
	// under Splunk Cloud's 1 MB. A single larger event is sent alone.
	MaxBatchBytes int           `yaml:"max_batch_bytes,omitempty"`
	FlushInterval time.Duration `yaml:"flush_interval,omitempty"` // longest wait for a batch to fill; default 1s
	Timeout       time.Duration `yaml:"timeout,omitempty"`        // one HTTP request, response included; default 30s
	TLS           *HECTLS       `yaml:"tls,omitempty"`
}

// HECTLS: how the collector's certificate is verified (always, unless
// InsecureSkipVerifyDangerous), and the client certificate, if any.
type HECTLS struct {
	CAFile     string `yaml:"ca_file,omitempty"`     // PEM CA bundle; "" for the system's roots
	CertFile   string `yaml:"cert_file,omitempty"`   // client certificate (PEM), with KeyFile
	KeyFile    string `yaml:"key_file,omitempty"`    // its private key (PEM)
	ServerName string `yaml:"server_name,omitempty"` // name to verify; default the URL's host
	// InsecureSkipVerifyDangerous turns verification of the collector's
	// certificate off: anyone on the path can then read the token and every
	// record. For a test collector only.
	InsecureSkipVerifyDangerous bool `yaml:"insecure_skip_verify_dangerous,omitempty"`
	// InsecureSkipVerify is refused: it exists to say which key to write
	// instead, so that turning verification off is never a casual edit.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty"`
}

// Defaults of an HEC exporter.
const (
	DefaultHECSourcetype     = "agenttrace:record"
	DefaultHECSourcetypeOCSF = "ocsf:agenttrace"
	DefaultHECBatchSize      = 500
	DefaultHECMaxBatchBytes  = 1_000_000
	DefaultHECFlushInterval  = time.Second
	DefaultHECTimeout        = 30 * time.Second
	DefaultHECAckTimeout     = 2 * time.Minute
)

// Retry policy of one request: transient failures (network errors,
// timeouts, 429, 5xx) are retried here up to hecAttempts times with
// exponential backoff and equal jitter, at least as long as Retry-After
// says; after that Send fails and the Runner retries the batch with its own
// backoff. Ack polling starts at hecAckPollMin and slows to hecAckPollMax.
const (
	hecAttempts      = 5
	hecBackoffBase   = 500 * time.Millisecond
	hecBackoffMax    = 30 * time.Second
	hecRetryAfterMax = 5 * time.Minute
	hecAckPollMin    = 500 * time.Millisecond
	hecAckPollMax    = 5 * time.Second
	hecMaxBatchSize  = 100_000
	hecMaxResponse   = 64 << 10
)

const (
	hecEventPath = "/services/collector/event"
	hecAckPath   = "/services/collector/ack"
)

func (c HECConfig) withDefaults(format string) HECConfig {
	if c.Sourcetype == "" {
		c.Sourcetype = DefaultHECSourcetype
		if format == "ocsf" {
			c.Sourcetype = DefaultHECSourcetypeOCSF
		}
	}
	if c.Gzip == nil {
		on := true
		c.Gzip = &on
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultHECBatchSize
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultHECMaxBatchBytes
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultHECFlushInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultHECTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultHECAckTimeout
	}
	return c
}

// validate checks the configuration without reading any file's contents
// (the token file's permissions are checked). Errors name the key at
// fault, relative to the exporter.
func (c *HECConfig) validate() error {
	if _, _, err := hecEndpoints(c.URL); err != nil {
		return err
	}
	switch {
	case c.TokenFile != "" && c.Token != "":
		return errors.New("hec: token_file and token: give one (token_file is better: the configuration then holds no secret)")
	case c.TokenFile == "" && c.Token == "":
		return errors.New("hec.token_file: required (a file holding the HEC token, mode 0600), or hec.token")
	case c.TokenFile != "":
		if err := checkTokenFile(c.TokenFile); err != nil {
			return err
		}
	default:
		if err := checkToken(c.Token); err != nil {
			return fmt.Errorf("hec.token: %w", err)
		}
	}
	for key, s := range map[string]string{"sourcetype": c.Sourcetype, "index": c.Index, "source": c.Source} {
		if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 || !utf8.ValidString(s) {
			return fmt.Errorf("hec.%s %q: must be UTF-8 text without control characters", key, s)
		}
	}
	switch {
	case c.BatchSize < 0 || c.BatchSize > hecMaxBatchSize:
		return fmt.Errorf("hec.batch_size %d: want 1 to %d (0 for the default, %d)", c.BatchSize, hecMaxBatchSize, DefaultHECBatchSize)
	case c.MaxBatchBytes < 0 || c.MaxBatchBytes > 0 && c.MaxBatchBytes < 1024:
		return fmt.Errorf("hec.max_batch_bytes %d: want at least 1024 (0 for the default, %d)", c.MaxBatchBytes, DefaultHECMaxBatchBytes)
	case c.Timeout < 0, c.AckTimeout < 0, c.FlushInterval < 0:
		return errors.New("hec: timeout, ack_timeout and flush_interval must not be negative")
	case c.AckTimeout > 0 && !c.Ack:
		return errors.New("hec.ack_timeout: only with ack: true")
	}
	if t := c.TLS; t != nil {
		switch {
		case t.InsecureSkipVerify:
			return errors.New("hec.tls.insecure_skip_verify: not accepted. Give the collector's CA in tls.ca_file; " +
				"to turn verification off all the same (anyone on the path can then read the token and every record), write insecure_skip_verify_dangerous: true")
		case (t.CertFile == "") != (t.KeyFile == ""):
			return errors.New("hec.tls: cert_file and key_file go together (a client certificate and its key)")
		}
	}
	return nil
}

// hecEndpoints derives the event and ack URLs from the configured URL: the
// collector's base URL, or one ending in /services/collector or
// /services/collector/event (a prefix before it is kept, for a proxy).
func hecEndpoints(raw string) (event, ack string, err error) {
	if raw == "" {
		return "", "", errors.New("hec.url: required (the collector, such as https://splunk.example.com:8088)")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", "", fmt.Errorf("hec.url %q: %w", raw, err)
	case u.Scheme != "https":
		return "", "", fmt.Errorf("hec.url %q: must be https (the token and the records cross the network)", raw)
	case u.Host == "":
		return "", "", fmt.Errorf("hec.url %q: no host", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", "", fmt.Errorf("hec.url %q: no user, query or fragment (the token goes in token_file)", raw)
	}
	base := strings.TrimSuffix(u.Path, "/")
	switch {
	case strings.HasSuffix(base, hecEventPath):
		base = strings.TrimSuffix(base, hecEventPath)
	case strings.HasSuffix(base, "/services/collector"):
		base = strings.TrimSuffix(base, "/services/collector")
	case strings.Contains(base, "/services/collector"):
		return "", "", fmt.Errorf("hec.url %q: agenttrace posts JSON events to %s; give the collector's base URL", raw, hecEventPath)
	}
	u.Path, u.RawPath = base, ""
	return u.String() + hecEventPath, u.String() + hecAckPath, nil
}

func checkTokenFile(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("hec.token_file %q: must be an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("hec.token_file: %w", err)
	}
	switch mode := fi.Mode(); {
	case !mode.IsRegular():
		return fmt.Errorf("hec.token_file %s: not a regular file", path)
	case mode.Perm()&0o004 != 0:
		return fmt.Errorf("hec.token_file %s: readable by others (mode %04o): chmod o-rwx %s (0600, or 0640 for a dedicated group)", path, mode.Perm(), path)
	case mode.Perm()&0o022 != 0:
		return fmt.Errorf("hec.token_file %s: writable by group or others (mode %04o): chmod go-w %s", path, mode.Perm(), path)
	}
	return nil
}

func checkToken(token string) error {
	switch {
	case token == "":
		return errors.New("empty")
	case len(token) > 1024:
		return errors.New("longer than 1024 bytes: not an HEC token")
	case strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0:
		return errors.New("contains white space or characters that are not printable ASCII")
	}
	return nil
}

// HEC sends records to a Splunk HTTP Event Collector. Each record is one
// event: {"time", "host", "source", "sourcetype", "index", "event",
// "fields"}, where event is the formatted record (native: the line itself,
// a JSON object) and fields its dedupe key (log_id, seq) and type, as
// indexed fields. A batch is one or more requests of concatenated events,
// within BatchSize and MaxBatchBytes.
//
// Send returns nil only when the collector accepted every event of the
// batch (HTTP 200, code 0) and, with Ack, the indexers reported every
// request indexed. An event the collector refuses as invalid is isolated
// (the request is split, using invalid-event-number when given) and
// replaced by an export_error event carrying the same dedupe key, so one bad
// event cannot stop the export; HECStats.Rejected counts them, and the
// record itself stays in the log. It is used by one goroutine (the
// Runner's); Stats may be called from any.
type HEC struct {
	cfg      HECConfig
	eventURL string
	ackURL   string
	auth     string // the Authorization header
	channel  string // X-Splunk-Request-Channel, with Ack
	client   *http.Client

	ackChecked bool
	abandoned  bool   // a request's body was not released: buffers are replaced
	body       []byte // the batch's events, concatenated
	ends       []int  // ends[i]: end of event i in body
	zbuf       bytes.Buffer
	zw         *gzip.Writer

	// Replaced by tests.
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	jitter func(n int64) int64 // uniform in [0, n)

	mu    sync.Mutex // Send and Close
	stats hecCounters
}

// HECStats are an HEC destination's counters, for metrics.
type HECStats struct {
	Requests    uint64 // HTTP requests, ack queries included
	Events      uint64 // events the collector accepted, resent ones included
	Retries     uint64 // requests retried after a transient failure
	Rejected    uint64 // events refused as invalid and replaced by an export_error event
	AckTimeouts uint64 // batches whose acks did not all come within ack_timeout
}

type hecCounters struct {
	requests, events, retries, rejected, ackTimeouts atomic.Uint64
}

// Stats returns the counters.
func (h *HEC) Stats() HECStats {
	return HECStats{
		Requests: h.stats.requests.Load(), Events: h.stats.events.Load(), Retries: h.stats.retries.Load(),
		Rejected: h.stats.rejected.Load(), AckTimeouts: h.stats.ackTimeouts.Load(),
	}
}

// NewHEC returns an HEC destination for records in format (native or
// ocsf, for the default sourcetype). It reads the token and the TLS files
// now; it connects on the first Send.
func NewHEC(cfg HECConfig, format string) (*HEC, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(format)
	h := &HEC{cfg: cfg, now: time.Now, sleep: sleepContext, jitter: rand.Int64N}
	h.eventURL, h.ackURL, _ = hecEndpoints(cfg.URL)
	token := cfg.Token
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("hec.token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if err := checkToken(token); err != nil {
			return nil, fmt.Errorf("hec.token_file %s: %w", cfg.TokenFile, err)
		}
	}
	h.auth = "Splunk " + token
	if cfg.Ack {
		var id [16]byte
		crand.Read(id[:])
		id[6] = id[6]&0x0f | 0x40 // a version 4 UUID, as Splunk expects of a channel
		id[8] = id[8]&0x3f | 0x80
		x := hex.EncodeToString(id[:])
		h.channel = x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
	}
	tlsConfig, err := cfg.TLS.config(h.eventURL)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.MaxIdleConnsPerHost = 4
	h.client = &http.Client{
		Transport: transport,
		// A redirect would resend the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if *cfg.Gzip {
		h.zw, _ = gzip.NewWriterLevel(&h.zbuf, gzip.BestSpeed)
	}
	return h, nil
}

func (t *HECTLS) config(eventURL string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t == nil {
		return c, nil
	}
	c.ServerName = t.ServerName
	c.InsecureSkipVerify = t.InsecureSkipVerifyDangerous
	if err := loadTLSFiles(c, "hec.tls", t.CAFile, t.CertFile, t.KeyFile); err != nil {
		return nil, err
	}
	return c, nil
}

// batching is the Runner's batching for this destination.
func (h *HEC) batching() (int, time.Duration, int) {
	return h.cfg.BatchSize, h.cfg.FlushInterval, 0
}

// Close closes idle connections.
func (h *HEC) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.client.CloseIdleConnections()
	return nil
}

// Send delivers the batch; see HEC.
func (h *HEC) Send(ctx context.Context, batch []Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if h.cfg.Ack && !h.ackChecked {
		// Before any event: a token without indexer acknowledgement would
		// accept events it can never acknowledge, and every retry would
		// index them again.
		if _, err := h.post(ctx, h.ackURL, []byte(`{"acks":[0]}`), false); err != nil {
			return fmt.Errorf("hec: checking indexer acknowledgement: %w", err)
		}
		h.ackChecked = true
	}
	h.body, h.ends = h.body[:0], h.ends[:0]
	for i := range batch {
		h.body = h.appendEvent(h.body, &batch[i], nil)
		h.ends = append(h.ends, len(h.body))
	}
	var acks []uint64
	for start := 0; start < len(batch); {
		end := start + 1
		for end < len(batch) && end-start < h.cfg.BatchSize && h.ends[end]-h.offset(start) <= h.cfg.MaxBatchBytes {
			end++
		}
		if err := h.deliver(ctx, batch, start, end, &acks); err != nil {
			return err
		}
		start = end
	}
	if h.cfg.Ack {
		return h.waitAcks(ctx, acks)
	}
	return nil
}

func (h *HEC) offset(i int) int {
	if i == 0 {
		return 0
	}
	return h.ends[i-1]
}

// deliver posts events [i, j) of the batch; an invalid event among them is
// isolated and replaced.
func (h *HEC) deliver(ctx context.Context, batch []Event, i, j int, acks *[]uint64) error {
	res, err := h.post(ctx, h.eventURL, h.body[h.offset(i):h.ends[j-1]], true)
	if err == nil {
		h.stats.events.Add(uint64(j - i))
		return h.collectAck(res, acks)
	}
	var he *HECError
	if !errors.As(err, &he) || !he.invalidData() {
		return err
	}
	if j-i == 1 {
		return h.reject(ctx, &batch[i], he, acks)
	}
	// Split before the invalid event when the collector named it, else in
	// halves. Events before it may already be indexed: they are sent again
	// (delivery is at least once; the dedupe key tells them apart).
	mid := (i + j) / 2
	if n := he.InvalidEvent; n >= 0 && n < j-i {
		mid = i + max(n, 1)
	}
	if err := h.deliver(ctx, batch, i, mid, acks); err != nil {
		return err
	}
	return h.deliver(ctx, batch, mid, j, acks)
}

// reject replaces an event the collector refused with an export_error
// event under the same dedupe key, so the SIEM shows where a record is
// missing and why; the record stays in the log.
func (h *HEC) reject(ctx context.Context, ev *Event, cause *HECError, acks *[]uint64) error {
	r := ev.Record
	var body []byte
	body = append(body, `{"agenttrace_export_error":{`...)
	body = record.AppendBytes(body, "error", []byte(strings.ToValidUTF8(cause.Error(), "\uFFFD")))
	body = record.AppendBytes(body, "log_id", []byte(strings.ToValidUTF8(r.LogID, "\uFFFD")))
	body = strconv.AppendUint(append(body, `,"seq":`...), r.Seq, 10)
	body = record.AppendBytes(body, "type", []byte(strings.ToValidUTF8(r.Type, "\uFFFD")))
	body = strconv.AppendInt(append(body, `,"bytes":`...), int64(len(ev.Body)), 10)
	body = append(body, "}}"...)
	tomb := h.appendEvent(nil, &Event{Record: r, Body: body}, []byte(`,"export_error":"rejected"`))
	res, err := h.post(ctx, h.eventURL, tomb, true)
	if err != nil {
		return fmt.Errorf("hec: seq %d was refused (%v), and so was the export_error event that replaces it: %w", r.Seq, cause, err)
	}
	h.stats.rejected.Add(1)
	return h.collectAck(res, acks)
}

func (h *HEC) collectAck(res hecResponse, acks *[]uint64) error {
	if !h.cfg.Ack {
		return nil
	}
	if res.AckID == nil {
		return errors.New("hec: the collector accepted the events but returned no ackId: " +
			"enable indexer acknowledgement on the token, or set ack: false")
	}
	*acks = append(*acks, *res.AckID)
	return nil
}

// appendEvent appends the HEC event of one formatted record.
func (h *HEC) appendEvent(b []byte, ev *Event, extraFields []byte) []byte {
	r := ev.Record
	b = append(b, '{')
	if sec, nsec, ok := recordTime(r.Time); ok {
		b = strconv.AppendInt(append(b, `"time":`...), sec, 10)
		ns := strconv.AppendInt(nil, int64(nsec)+1e9, 10) // 1 and 9 digits
		b = append(append(b, '.'), ns[1:]...)
	}
	b = hecString(b, "host", r.Host)
	if h.cfg.Source != "" {
		b = hecString(b, "source", h.cfg.Source)
	}
	b = hecString(b, "sourcetype", h.cfg.Sourcetype)
	if h.cfg.Index != "" {
		b = hecString(b, "index", h.cfg.Index)
	}
	b = append(append(b, `,"event":`...), ev.Body...)
	b = append(b, `,"fields":{`...)
	b = hecString(b, "log_id", r.LogID)
	b = strconv.AppendUint(append(b, `,"seq":"`...), r.Seq, 10) // indexed fields are strings
	b = append(b, '"')
	b = hecString(b, "type", r.Type)
	b = append(b, extraFields...)
	return append(b, '}', '}')
}

// hecString appends "key":"value" with the log's own escaping.
func hecString(b []byte, key, v string) []byte {
	return record.AppendBytes(b, key, []byte(strings.ToValidUTF8(v, "\uFFFD")))
}

// recordTime is a record's time (the envelope's, see Record.Time) as
// seconds and nanoseconds since the epoch.
func recordTime(v []byte) (sec int64, nsec int, ok bool) {
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil || t.Unix() < 0 {
		return 0, 0, false
	}
	return t.Unix(), t.Nanosecond(), true
}

// hecResponse is the collector's JSON reply.
type hecResponse struct {
	Text         string          `json:"text"`
	Code         *int            `json:"code"`
	AckID        *uint64         `json:"ackId"`
	InvalidEvent *int            `json:"invalid-event-number"`
	Acks         map[string]bool `json:"acks"`
}

// HECError is a reply of the collector other than success.
type HECError struct {
	Status       int    // HTTP status
	Code         int    // HEC status code; -1 if the reply had none
	Text         string // the reply's text, or the start of its body
	InvalidEvent int    // index of the invalid event in the request; -1 if not given
	RetryAfter   time.Duration
}

// hecHints say what to do about the replies an operator can fix.
var hecHints = map[int]string{
	1:  "the token is disabled: enable it in Splunk",
	2:  "no token was sent",
	3:  "check the token in token_file",
	4:  "check the token in token_file",
	7:  "the token may not write to hec.index: allow it, or fix the index",
	10: "an acknowledgement channel is needed: set ack: true",
	11: "the collector refused the ack channel",
	14: "indexer acknowledgement is off for this token: enable it in Splunk, or set ack: false",
	16: "query string authorization is not enabled",
}

func (e *HECError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hec: HTTP %d", e.Status)
	if e.Code >= 0 {
		fmt.Fprintf(&b, ", code %d", e.Code)
	}
	if e.Text != "" {
		fmt.Fprintf(&b, ": %q", e.Text)
	}
	if e.InvalidEvent >= 0 {
		fmt.Fprintf(&b, " (event %d of the request)", e.InvalidEvent)
	}
	switch hint := hecHints[e.Code]; {
	case hint != "":
		b.WriteString(": " + hint)
	case e.Status == http.StatusNotFound:
		b.WriteString(": check hec.url (the collector's base URL)")
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		b.WriteString(": check the token in token_file")
	}
	return b.String()
}

// invalidData reports a refusal of the request's contents (HEC codes 5, 6,
// 12, 13, 15, or 413 for a body too large): splitting the request isolates
// the event at fault.
func (e *HECError) invalidData() bool {
	if e.Status == http.StatusRequestEntityTooLarge {
		return true
	}
	if e.Status != http.StatusBadRequest {
		return false
	}
	switch e.Code {
	case 5, 6, 12, 13, 15:
		return true
	}
	return false
}

// transient reports replies worth retrying soon: the collector is busy or
// failing (429, 5xx, HEC codes 8, 9, 18-20), not refusing this request.
func (e *HECError) transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// hecBody is a request body that says when the transport is done with it.
type hecBody struct {
	bytes.Reader
	once sync.Once
	done chan struct{}
}

// Close is called by the transport, once it no longer reads the body.
func (b *hecBody) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
}

// transientError is a failure to get any reply: a network error or a
// timeout.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// post sends one request, retrying transient failures; compress applies
// gzip when configured.
func (h *HEC) post(ctx context.Context, target string, body []byte, compress bool) (hecResponse, error) {
	compress = compress && h.zw != nil
	if compress {
		h.zbuf.Reset()
		h.zw.Reset(&h.zbuf)
		h.zw.Write(body)
		h.zw.Close()
		body = h.zbuf.Bytes()
	}
	for attempt := 1; ; attempt++ {
		res, err := h.do(ctx, target, body, compress)
		if h.abandoned {
			// A request still holds body's bytes: go on with copies.
			h.abandoned = false
			body = bytes.Clone(body)
			h.body = bytes.Clone(h.body)
			h.zbuf = bytes.Buffer{}
		}
		if err == nil {
			return res, nil
		}
		var retryAfter time.Duration
		var he *HECError
		var te *transientError
		switch {
		case errors.As(err, &he) && he.transient():
			retryAfter = he.RetryAfter
		case errors.As(err, &te):
		default:
			return res, err
		}
		if attempt >= hecAttempts {
			return res, fmt.Errorf("%w (after %d attempts)", err, attempt)
		}
		h.stats.retries.Add(1)
		if serr := h.sleep(ctx, h.backoff(attempt, retryAfter)); serr != nil {
			return res, fmt.Errorf("%w (then: %w)", err, serr)
		}
	}
}

// backoff is the wait before attempt+1: exponential with equal jitter (half
// fixed, half random), and never shorter than Retry-After.
func (h *HEC) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := min(hecBackoffBase<<(attempt-1), hecBackoffMax)
	d = d/2 + time.Duration(h.jitter(int64(d/2)+1))
	return max(d, min(retryAfter, hecRetryAfterMax))
}

// do sends one request and reads the reply.
func (h *HEC) do(ctx context.Context, target string, body []byte, compressed bool) (hecResponse, error) {
	var res hecResponse
	rctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	reqBody := &hecBody{done: make(chan struct{})}
	reqBody.Reset(body)
	defer func() {
		// The transport may still be writing the body after the reply (a
		// collector can refuse a request before reading it all): stop it,
		// and wait until it lets go of buffers the next request reuses.
		cancel()
		select {
		case <-reqBody.done:
		case <-time.After(time.Second):
			h.abandoned = true
		}
	}()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, target, reqBody)
	if err != nil {
		reqBody.Close()
		return res, fmt.Errorf("hec: %w", err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", h.auth)
	req.Header.Set("Content-Type", "application/json")
	if compressed {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if h.channel != "" {
		req.Header.Set("X-Splunk-Request-Channel", h.channel)
	}
	h.stats.requests.Add(1)
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("hec: %w", ctx.Err())
		}
		if certificateError(err) {
			return res, fmt.Errorf("hec: %s: %w: give the collector's CA in hec.tls.ca_file (or its name in tls.server_name)", target, err)
		}
		return res, &transientError{fmt.Errorf("hec: %s: %w", target, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, hecMaxResponse))
	if err != nil {
		return res, &transientError{fmt.Errorf("hec: %s: reading the reply: %w", target, err)}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, hecMaxResponse)) // lets the connection be reused
	jsonErr := json.Unmarshal(data, &res)
	// Event replies carry code 0 on success; ack replies carry no code.
	if resp.StatusCode == http.StatusOK && jsonErr == nil && (res.Code == nil && target == h.ackURL || res.Code != nil && *res.Code == 0) {
		return res, nil
	}
	he := &HECError{Status: resp.StatusCode, Code: -1, InvalidEvent: -1, Text: res.Text,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), h.now())}
	if jsonErr != nil {
		he.Text = strings.ToValidUTF8(string(data[:min(len(data), 200)]), "\uFFFD")
	}
	if res.Code != nil {
		he.Code = *res.Code
	}
	if res.InvalidEvent != nil {
		he.InvalidEvent = *res.InvalidEvent
	}
	return res, he
}

func certificateError(err error) bool {
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verification *tls.CertificateVerificationError
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verification)
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// waitAcks polls the ack endpoint until the indexers acknowledged every
// request, or AckTimeout passes: then the batch is sent again.
func (h *HEC) waitAcks(ctx context.Context, ids []uint64) error {
	deadline := h.now().Add(h.cfg.AckTimeout)
	wait := hecAckPollMin
	pending := ids
	var query []byte
	for len(pending) > 0 {
		query = append(query[:0], `{"acks":[`...)
		for i, id := range pending {
			if i > 0 {
				query = append(query, ',')
			}
			query = strconv.AppendUint(query, id, 10)
		}
		query = append(query, "]}"...)
		res, err := h.post(ctx, h.ackURL, query, false)
		if err != nil {
			return fmt.Errorf("hec: polling acknowledgements: %w", err)
		}
		left := pending[:0]
		for _, id := range pending {
			if !res.Acks[strconv.FormatUint(id, 10)] {
				left = append(left, id)
			}
		}
		pending = left
		if len(pending) == 0 {
			break
		}
		if !h.now().Add(wait).Before(deadline) {
			h.stats.ackTimeouts.Add(1)
			return fmt.Errorf("hec: %d of %d requests not acknowledged by the indexers within ack_timeout (%s): "+
				"the batch is sent again (dedupe on host, log_id and seq)", len(pending), len(ids), h.cfg.AckTimeout)
		}
		if err := h.sleep(ctx, wait); err != nil {
			return fmt.Errorf("hec: waiting for acknowledgements: %w", err)
		}
		wait = min(2*wait, hecAckPollMax)
	}
	return nil
}

// sleepContext waits for d or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
