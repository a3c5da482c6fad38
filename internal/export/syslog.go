package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SyslogConfig: RFC 5424 messages over TCP with octet-counting framing
// (RFC 6587) or over TLS (RFC 5425). docs/siem.md describes every field.
type SyslogConfig struct {
	Address string     `yaml:"address"` // host:port
	TLS     *SyslogTLS `yaml:"tls,omitempty"`
	// Facility: a name (authpriv, local0, ...) or 0-23. Default authpriv.
	Facility string `yaml:"facility,omitempty"`
	// Severity of every record type not in SeverityByType. Default
	// informational.
	Severity string `yaml:"severity,omitempty"`
	// SeverityByType overrides the severity per record type, over the
	// defaults gap, freeze and recovery: warning.
	SeverityByType map[string]string `yaml:"severity_by_type,omitempty"`
	BatchSize      int               `yaml:"batch_size,omitempty"`     // records per write; default 500
	FlushInterval  time.Duration     `yaml:"flush_interval,omitempty"` // longest wait for a batch to fill; default 200ms
	DialTimeout    time.Duration     `yaml:"dial_timeout,omitempty"`   // connect and TLS handshake; default 5s
	WriteTimeout   time.Duration     `yaml:"write_timeout,omitempty"`  // a write, and unacknowledged data (TCP_USER_TIMEOUT); default 10s
	// ConfirmAfter: how long a batch must stay acknowledged by the
	// receiver's TCP, on a connection that stays open, before the cursor
	// moves past it. Default 1s.
	ConfirmAfter time.Duration `yaml:"confirm_after,omitempty"`
	// MaxUnconfirmed bounds the records sent and not yet confirmed: the
	// most a broken connection makes the exporter send again. Default 50000.
	MaxUnconfirmed int `yaml:"max_unconfirmed,omitempty"`
}

// SyslogTLS: RFC 5425. The server's certificate is always verified.
type SyslogTLS struct {
	CAFile     string `yaml:"ca_file,omitempty"`     // PEM CA bundle; "" for the system's roots
	CertFile   string `yaml:"cert_file,omitempty"`   // client certificate (PEM), with KeyFile
	KeyFile    string `yaml:"key_file,omitempty"`    // its private key (PEM)
	ServerName string `yaml:"server_name,omitempty"` // name to verify; default the address's host
}

// Defaults of a syslog exporter.
const (
	DefaultSyslogFacility       = "authpriv"
	DefaultSyslogSeverity       = "informational"
	DefaultSyslogBatchSize      = 500
	DefaultSyslogFlushInterval  = 200 * time.Millisecond
	DefaultSyslogDialTimeout    = 5 * time.Second
	DefaultSyslogWriteTimeout   = 10 * time.Second
	DefaultSyslogConfirmAfter   = time.Second
	DefaultSyslogMaxUnconfirmed = 50000
)

// SyslogPEN is the private enterprise number in the SD-ID of agenttrace's
// structured data element (agenttrace@32473). 32473 is the number IANA
// reserves for documentation (RFC 5612), standing in until agenttrace has
// its own.
const SyslogPEN = "32473"

// SyslogAppName is the APP-NAME of every message.
const SyslogAppName = "agenttrace"

// defaultSeverityByType: the records that say capture was not complete, or
// that the session was frozen, warrant attention; everything else is the
// normal record of activity.
var defaultSeverityByType = map[string]string{"gap": "warning", "freeze": "warning", "recovery": "warning"}

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

var severities = map[string]int{
	"emerg": 0, "emergency": 0, "alert": 1, "crit": 2, "critical": 2, "err": 3, "error": 3,
	"warning": 4, "warn": 4, "notice": 5, "info": 6, "informational": 6, "debug": 7,
}

func parseCode(s string, names map[string]int, max int) (int, bool) {
	if v, ok := names[strings.ToLower(s)]; ok {
		return v, true
	}
	v, err := strconv.Atoi(s)
	return v, err == nil && v >= 0 && v <= max
}

// withDefaults returns the configuration with every default applied.
func (c SyslogConfig) withDefaults() SyslogConfig {
	if c.Facility == "" {
		c.Facility = DefaultSyslogFacility
	}
	if c.Severity == "" {
		c.Severity = DefaultSyslogSeverity
	}
	by := map[string]string{}
	for k, v := range defaultSeverityByType {
		by[k] = v
	}
	for k, v := range c.SeverityByType {
		by[k] = v
	}
	c.SeverityByType = by
	if c.BatchSize == 0 {
		c.BatchSize = DefaultSyslogBatchSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultSyslogFlushInterval
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultSyslogDialTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultSyslogWriteTimeout
	}
	if c.ConfirmAfter == 0 {
		c.ConfirmAfter = DefaultSyslogConfirmAfter
	}
	if c.MaxUnconfirmed == 0 {
		c.MaxUnconfirmed = max(DefaultSyslogMaxUnconfirmed, c.BatchSize)
	}
	return c
}

// validate checks the configuration; errors name the key under syslog.
func (c *SyslogConfig) validate() error {
	host, port, err := net.SplitHostPort(c.Address)
	if c.Address == "" {
		return errors.New("syslog.address: required (host:port of the receiver, e.g. siem.example:6514)")
	}
	if err != nil || host == "" {
		return fmt.Errorf("syslog.address: %q: want host:port", c.Address)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("syslog.address: %q: want a port number from 1 to 65535", c.Address)
	}
	if c.Facility != "" {
		if _, ok := parseCode(c.Facility, facilities, 23); !ok {
			return fmt.Errorf("syslog.facility: %q: want a facility name (authpriv, local0 ... local7, ...) or 0-23", c.Facility)
		}
	}
	if c.Severity != "" {
		if _, ok := parseCode(c.Severity, severities, 7); !ok {
			return fmt.Errorf("syslog.severity: %q: want a severity name (informational, notice, warning, ...) or 0-7", c.Severity)
		}
	}
	for typ, sev := range c.SeverityByType {
		if _, ok := parseCode(sev, severities, 7); !ok {
			return fmt.Errorf("syslog.severity_by_type.%s: %q: want a severity name (informational, notice, warning, ...) or 0-7", typ, sev)
		}
		if typ == "" || len(typ) > 32 {
			return fmt.Errorf("syslog.severity_by_type: %q is not a record type", typ)
		}
	}
	switch {
	case c.BatchSize < 0:
		return errors.New("syslog.batch_size: must not be negative")
	case c.FlushInterval < 0, c.DialTimeout < 0, c.WriteTimeout < 0, c.ConfirmAfter < 0:
		return errors.New("syslog: flush_interval, dial_timeout, write_timeout and confirm_after must not be negative")
	case c.MaxUnconfirmed < 0:
		return errors.New("syslog.max_unconfirmed: must not be negative")
	}
	d := c.withDefaults()
	if d.MaxUnconfirmed < d.BatchSize {
		return fmt.Errorf("syslog.max_unconfirmed: %d: must be at least batch_size (%d)", d.MaxUnconfirmed, d.BatchSize)
	}
	if t := c.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			return errors.New("syslog.tls: cert_file and key_file go together (a client certificate and its key)")
		}
	}
	return nil
}

// Syslog sends records as RFC 5424 messages, octet-counted (RFC 6587), over
// TCP or TLS (RFC 5425). It is used by one goroutine (the Runner's).
//
// Syslog has no application acknowledgement, so a batch counts as
// delivered (Confirmed) only when the receiver's TCP acknowledged every
// byte of it and the connection then stayed open for ConfirmAfter: a
// receiver that stops or crashes with records unread resets the
// connection, and everything not confirmed is sent again on a new one.
// Finish half-closes the connection; the receiver's orderly close (it read
// everything up to our FIN) confirms the rest at once.
type Syslog struct {
	cfg      SyslogConfig
	tls      *tls.Config
	facility int
	severity int
	byType   map[string]int
	conn     *syslogConn
	gen      uint64
	buf      []byte
	msg      []byte
	marks    []syslogMark
	nextMark uint64
	done     uint64 // the highest confirmed mark
}

type syslogMark struct {
	id      uint64
	gen     uint64
	offset  uint64 // bytes written to the socket when the mark was taken
	ackedAt time.Time
}

// NewSyslog returns a syslog destination; it connects on the first Send.
func NewSyslog(cfg SyslogConfig) (*Syslog, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Syslog{cfg: cfg, byType: map[string]int{}}
	s.facility, _ = parseCode(cfg.Facility, facilities, 23)
	s.severity, _ = parseCode(cfg.Severity, severities, 7)
	for typ, sev := range cfg.SeverityByType {
		s.byType[typ], _ = parseCode(sev, severities, 7)
	}
	if cfg.TLS != nil {
		var err error
		if s.tls, err = cfg.TLS.config(cfg.Address); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (t *SyslogTLS) config(address string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(address)
	}
	if err := loadTLSFiles(c, "syslog.tls", t.CAFile, t.CertFile, t.KeyFile); err != nil {
		return nil, err
	}
	return c, nil
}

// BatchSize and FlushInterval are the Runner's batching for this destination.
func (s *Syslog) batching() (int, time.Duration, int) {
	return s.cfg.BatchSize, s.cfg.FlushInterval, s.cfg.MaxUnconfirmed
}

// Priority is the PRI of a record of type typ: facility*8 + severity.
func (s *Syslog) Priority(typ string) int {
	sev, ok := s.byType[typ]
	if !ok {
		sev = s.severity
	}
	return s.facility*8 + sev
}

// AppendFrame appends one octet-counted RFC 5424 message for e:
//
//	LEN SP <PRI>1 TIMESTAMP HOSTNAME agenttrace - TYPE [agenttrace@32473 host=".." log_id=".." seq=".." type=".."] BODY
//
// TIMESTAMP is the record's time (to the microsecond RFC 5424 allows),
// HOSTNAME the log's host, MSGID the record type, MSG the event's body as
// is: UTF-8 without a BOM.
func (s *Syslog) AppendFrame(b []byte, e *Event) []byte {
	r := e.Record
	m := s.msg[:0]
	m = append(m, '<')
	m = strconv.AppendInt(m, int64(s.Priority(r.Type)), 10)
	m = append(m, ">1 "...)
	m = appendTimestamp(m, r.Time)
	m = append(m, ' ')
	m = appendHeaderField(m, r.Host, 255)
	m = append(m, " "+SyslogAppName+" - "...)
	m = appendHeaderField(m, r.Type, 32)
	m = append(m, " [agenttrace@"+SyslogPEN+` host="`...)
	m = appendParamValue(m, r.Host)
	m = append(m, `" log_id="`...)
	m = appendParamValue(m, r.LogID)
	m = append(m, `" seq="`...)
	m = strconv.AppendUint(m, r.Seq, 10)
	m = append(m, `" type="`...)
	m = appendParamValue(m, r.Type)
	m = append(m, `"] `...)
	m = append(m, e.Body...)
	s.msg = m
	b = strconv.AppendInt(b, int64(len(m)), 10)
	b = append(b, ' ')
	return append(b, m...)
}

// appendTimestamp appends a record's time (Record.Time) as an RFC 5424
// TIMESTAMP: RFC 3339 in UTC with at most 6 fractional digits; "-" if it
// has none.
func appendTimestamp(b, v []byte) []byte {
	j := len(v)
	if j < len("2006-01-02T15:04:05Z") || v[j-1] != 'Z' {
		return append(b, '-')
	}
	v = v[:j-1]
	if dot := bytes.IndexByte(v, '.'); dot >= 0 && len(v)-dot-1 > 6 {
		v = v[:dot+7]
	}
	b = append(b, v...)
	return append(b, 'Z')
}

// appendHeaderField appends a HOSTNAME or MSGID: printable US-ASCII
// without spaces, at most n bytes; other bytes become '_', "" becomes "-".
func appendHeaderField(b []byte, v string, n int) []byte {
	if v == "" {
		return append(b, '-')
	}
	for i := 0; i < len(v) && i < n; i++ {
		c := v[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// appendParamValue appends an SD PARAM-VALUE: '"', '\' and ']' escaped.
func appendParamValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"', '\\', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return b
}

// Send writes the batch as one write on the connection, connecting first
// if needed. nil means written, not yet delivered: see Confirmed.
func (s *Syslog) Send(ctx context.Context, batch []Event) error {
	if s.conn != nil {
		if err := s.conn.broken(); err != nil {
			// What was sent on it and not confirmed is void: the Runner
			// must send it again before this batch.
			s.drop()
			return fmt.Errorf("syslog %s: connection lost: %w", s.cfg.Address, err)
		}
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	s.buf = s.buf[:0]
	for i := range batch {
		s.buf = s.AppendFrame(s.buf, &batch[i])
	}
	deadline := time.Now().Add(s.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c := s.conn
	c.w.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.w.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := c.w.Write(s.buf)
	stop()
	if err == nil {
		err = c.broken()
	}
	if err != nil {
		s.drop()
		return fmt.Errorf("syslog %s: %w", s.cfg.Address, err)
	}
	return nil
}

// Mark implements Confirmer.
func (s *Syslog) Mark() uint64 {
	s.nextMark++
	if s.conn != nil {
		s.marks = append(s.marks, syslogMark{id: s.nextMark, gen: s.gen, offset: s.conn.written.Load()})
	}
	return s.nextMark
}

// Confirmed implements Confirmer: a mark is confirmed once the receiver's
// TCP acknowledged every byte before it and the connection has stayed open
// for ConfirmAfter since.
func (s *Syslog) Confirmed() (uint64, error) {
	if s.conn == nil {
		return s.done, nil
	}
	if err := s.conn.broken(); err != nil {
		s.drop()
		return s.done, fmt.Errorf("syslog %s: connection lost: %w", s.cfg.Address, err)
	}
	if len(s.marks) == 0 {
		return s.done, nil
	}
	unacked, err := s.conn.unacked()
	if err != nil {
		return s.done, nil // cannot tell: confirm nothing now
	}
	acked := s.conn.written.Load() - uint64(unacked)
	now := time.Now()
	for i := range s.marks {
		m := &s.marks[i]
		if m.offset > acked {
			break
		}
		if m.ackedAt.IsZero() {
			m.ackedAt = now
		}
	}
	n := 0
	for n < len(s.marks) && !s.marks[n].ackedAt.IsZero() && now.Sub(s.marks[n].ackedAt) >= s.cfg.ConfirmAfter {
		s.done = s.marks[n].id
		n++
	}
	s.marks = s.marks[:copy(s.marks, s.marks[n:])]
	return s.done, nil
}

// Finish implements Confirmer: it half-closes the connection (TLS
// close_notify, then FIN) and waits for the receiver to close its side. A
// receiver that closes with bytes unread resets the connection instead, so
// an orderly end of stream confirms every mark.
func (s *Syslog) Finish(ctx context.Context) (uint64, error) {
	c := s.conn
	if c == nil {
		return s.done, nil
	}
	defer s.drop()
	if len(s.marks) == 0 {
		return s.done, nil
	}
	if tc, ok := c.w.(*tls.Conn); ok {
		tc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if err := tc.CloseWrite(); err != nil {
			return s.done, fmt.Errorf("syslog %s: closing: %w", s.cfg.Address, err)
		}
	}
	if err := c.raw.CloseWrite(); err != nil {
		return s.done, fmt.Errorf("syslog %s: closing: %w", s.cfg.Address, err)
	}
	select {
	case <-c.closed:
	case <-ctx.Done():
		return s.done, fmt.Errorf("syslog %s: the receiver did not close the connection: %w", s.cfg.Address, ctx.Err())
	}
	if !errors.Is(c.err, io.EOF) {
		return s.done, fmt.Errorf("syslog %s: closing: %w", s.cfg.Address, c.err)
	}
	s.done = s.marks[len(s.marks)-1].id
	s.marks = s.marks[:0]
	return s.done, nil
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.drop()
	return nil
}

func (s *Syslog) drop() {
	if s.conn != nil {
		s.conn.w.Close()
		s.conn = nil
	}
	s.marks = s.marks[:0]
}

func (s *Syslog) dial(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	userTimeout := int(s.cfg.WriteTimeout / time.Millisecond)
	d := net.Dialer{
		KeepAlive: 15 * time.Second,
		// Data the receiver does not acknowledge for WriteTimeout ends the
		// connection, so a vanished receiver is noticed without a write.
		Control: func(network, address string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, userTimeout)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	nc, err := d.DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("syslog %s: %w", s.cfg.Address, err)
	}
	raw := nc.(*net.TCPConn)
	c := &syslogConn{raw: raw, closed: make(chan struct{})}
	c.w = &countingConn{Conn: raw, n: &c.written}
	if s.tls != nil {
		tc := tls.Client(c.w, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return fmt.Errorf("syslog %s: TLS: %w", s.cfg.Address, err)
		}
		c.w = tc
	}
	s.gen++
	s.conn = c
	go c.readLoop()
	return nil
}

// syslogConn is one connection; a goroutine reads it to learn at once when
// the receiver closes or resets it (a syslog receiver sends nothing else).
type syslogConn struct {
	raw     *net.TCPConn
	w       net.Conn // raw, counted, or TLS over it
	written atomic.Uint64
	closed  chan struct{}
	err     error // why the connection ended; set before closed is closed
}

func (c *syslogConn) readLoop() {
	buf := make([]byte, 4096)
	for {
		if _, err := c.w.Read(buf); err != nil {
			c.err = err
			close(c.closed)
			return
		}
	}
}

// broken returns why the connection ended, or nil while it is open.
func (c *syslogConn) broken() error {
	select {
	case <-c.closed:
		if errors.Is(c.err, io.EOF) {
			return errors.New("the receiver closed the connection")
		}
		return c.err
	default:
		return nil
	}
}

// unacked is the number of bytes in the socket's send queue not yet
// acknowledged by the receiver (SIOCOUTQ).
func (c *syslogConn) unacked() (int, error) {
	rc, err := c.raw.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
		return 0, err
	}
	return n, ierr
}

// countingConn counts the bytes written to the socket, TLS records
// included, in the units SIOCOUTQ counts.
type countingConn struct {
	net.Conn
	n *atomic.Uint64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(uint64(n))
	return n, err
}
