package pipeline

import (
	"sync"
	"time"

	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// Freezer freezes and thaws the traced processes (cgroup.freeze).
type Freezer interface {
	Freeze() error
	Thaw() error
}

// Guard is fail-closed mode: while agenttrace cannot guarantee capture (the
// ring buffer is above its high watermark, or the log refuses writes) the
// traced processes are frozen, so they wait instead of acting unaudited.
// Every freeze and thaw is a record in the log.
type Guard struct {
	src     Source
	log     *sink.Writer
	freezer Freezer
	high    int // freeze above this many pending ring bytes
	low     int // thaw below this many

	mu       sync.Mutex
	frozen   bool
	frozenAt time.Time
	queue    []queued // records waiting for a writable log
	freezes  int
	stop     chan struct{}
	done     chan struct{}
}

// queued is a freeze or thaw record, with the time it happened.
type queued struct {
	at   uint64
	body record.Body
}

// guardPoll is how often the ring's fill level is checked. At a few
// microseconds per syscall, a traced process cannot fill the space between
// the high watermark and the end of the ring in this time.
const guardPoll = time.Millisecond

// NewGuard watches src and log and freezes with freezer. The watermarks
// are a quarter and a tenth of the ring: the three quarters above the high
// one must hold what the traced processes write between the poll that sees
// it crossed and the freeze taking hold, a few milliseconds on a busy
// machine, and an open record is about 300 bytes.
func NewGuard(src Source, log *sink.Writer, freezer Freezer) *Guard {
	size := src.RingSize()
	return &Guard{src: src, log: log, freezer: freezer, high: size / 4, low: size / 10,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Start runs the guard until Stop.
func (g *Guard) Start() {
	go func() {
		defer close(g.done)
		t := time.NewTicker(guardPoll)
		defer t.Stop()
		for {
			select {
			case <-g.stop:
				return
			case <-t.C:
				g.check()
			}
		}
	}()
}

// Stop ends the guard and thaws the processes if they are frozen.
func (g *Guard) Stop() {
	close(g.stop)
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.frozen {
		g.thawLocked("agenttrace is stopping")
	}
	g.writeQueueLocked()
}

// Freezes is how many times the guard froze the processes.
func (g *Guard) Freezes() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.freezes
}

func (g *Guard) check() {
	used := g.src.Used()
	blocked, why := g.log.Blocked()
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case !g.frozen && blocked:
		g.freezeLocked("the log file refuses writes: "+why.Error(), used)
	case !g.frozen && used > g.high:
		g.freezeLocked("the ring buffer is above its high watermark", used)
	case g.frozen && !blocked && used < g.low:
		g.writeQueueLocked()
		if len(g.queue) == 0 {
			g.thawLocked("capture is guaranteed again")
		}
	}
	g.writeQueueLocked()
}

func (g *Guard) freezeLocked(reason string, used int) {
	if err := g.freezer.Freeze(); err != nil {
		reason += "; freezing failed: " + err.Error()
	}
	g.frozen, g.frozenAt = true, time.Now()
	g.freezes++
	g.queue = append(g.queue, queued{record.BootTime(), &record.Freeze{Reason: reason, RingUsed: used, RingSize: g.src.RingSize()}})
}

func (g *Guard) thawLocked(reason string) {
	if err := g.freezer.Thaw(); err != nil {
		reason += "; thawing failed: " + err.Error()
	}
	frozenFor := time.Since(g.frozenAt)
	g.frozen = false
	g.queue = append(g.queue, queued{record.BootTime(), &record.Thaw{Reason: reason, FrozenNs: int64(frozenFor)}})
}

// writeQueueLocked appends queued freeze/thaw records in order while the log
// accepts them.
func (g *Guard) writeQueueLocked() {
	for len(g.queue) > 0 {
		if g.log.TryAppendAt(g.queue[0].at, g.queue[0].body) != nil {
			return
		}
		g.queue = g.queue[1:]
	}
}
