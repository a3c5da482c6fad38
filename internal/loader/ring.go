package loader

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// ring reads the ring buffer map. Unlike ringbuf.Reader it does not hand
// space back to the kernel as it reads: the consumer position the kernel
// sees moves only when Commit says that what was read is in the log. A
// reader killed between reading a record and writing it (its buffer, a
// write in progress) thus leaves the record in the ring, where the next
// reader of the pinned ring finds it again (see Adopt and Progress).
//
// The layout is the kernel's (kernel/bpf/ringbuf.c): a consumer page the
// reader may write, then a producer page and the data pages, mapped twice
// in a row so that a record that wraps reads as one slice.
type ring struct {
	maps     sync.RWMutex // held (read) while the mappings are used; close takes it to unmap
	consPage []byte
	prodData []byte
	cons     *uint64 // committed consumer position: what the kernel may overwrite
	prod     *uint64
	data     []byte
	mask     uint64
	read     atomic.Uint64 // the next record to read; cons <= read <= prod
	// waitPage maps the reader map (bpf/common.h): *waiting is nonzero
	// while the reader sleeps in epoll, the only time a wakeup is of use.
	waitPage []byte
	waiting  *uint32

	epfd, efd int
	events    [2]unix.EpollEvent
	deadline  time.Time

	flushing atomic.Bool
	flushTo  atomic.Uint64
	closed   atomic.Bool
}

// Ring record header flags (BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT)
// and size (BPF_RINGBUF_HDR_SZ).
const (
	ringBusy    = 1 << 31
	ringDiscard = 1 << 30
	ringHdrSize = 8
)

// How long a reader waits before looking again at a record the kernel
// reserved but has not submitted (busyWait), and at the ring while it holds
// records read but not committed (uncommittedWait: the pipeline commits
// within milliseconds unless the log refuses writes).
const (
	busyWait        = 50 * time.Microsecond
	uncommittedWait = time.Millisecond
)

// newRing maps the ring buffer m and the reader map (an array of one
// __u32, BPF_F_MMAPABLE) through which the reader says when it sleeps.
func newRing(m, reader *ebpf.Map) (*ring, error) {
	size := int(m.MaxEntries())
	page := os.Getpagesize()
	fd := m.FD()
	waitPage, err := unix.Mmap(reader.FD(), 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the ring's reader state: %w", err)
	}
	consPage, err := unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Munmap(waitPage)
		return nil, fmt.Errorf("mapping the ring's consumer page: %w", err)
	}
	prodData, err := unix.Mmap(fd, int64(page), page+2*size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		unix.Munmap(waitPage)
		unix.Munmap(consPage)
		return nil, fmt.Errorf("mapping the ring's data: %w", err)
	}
	r := &ring{
		consPage: consPage, prodData: prodData,
		cons: (*uint64)(unsafe.Pointer(&consPage[0])), prod: (*uint64)(unsafe.Pointer(&prodData[0])),
		data: prodData[page:], mask: uint64(size - 1), epfd: -1, efd: -1,
		waitPage: waitPage, waiting: (*uint32)(unsafe.Pointer(&waitPage[0])),
	}
	// Awake: a reader before this one (pinned ring) may have died asleep.
	atomic.StoreUint32(r.waiting, 0)
	r.read.Store(atomic.LoadUint64(r.cons))
	if err := r.setupPoll(fd); err != nil {
		r.unmap()
		return nil, err
	}
	return r, nil
}

func (r *ring) setupPoll(fd int) error {
	var err error
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	if r.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	for _, f := range []int{fd, r.efd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(f)}
		if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, f, &ev); err != nil {
			return fmt.Errorf("epoll: %w", err)
		}
	}
	return nil
}

// readInto reads the next record into rec, waiting until the deadline.
// Only the pipeline's goroutine calls it.
func (r *ring) readInto(rec *ringbuf.Record) error {
	for {
		r.maps.RLock()
		if r.closed.Load() {
			r.maps.RUnlock()
			return ringbuf.ErrClosed
		}
		if r.flushing.Load() && r.read.Load() >= r.flushTo.Load() {
			r.maps.RUnlock()
			r.flushing.Store(false)
			return ringbuf.ErrFlushed
		}
		busy, ok := r.next(rec)
		waitEpoll := !busy && r.read.Load() == atomic.LoadUint64(r.cons)
		r.maps.RUnlock()
		if ok {
			return nil
		}
		if err := r.wait(busy, !waitEpoll); err != nil {
			return err
		}
	}
}

// next reads the record at r.read if it is complete; busy reports one the
// kernel has reserved but not submitted yet.
func (r *ring) next(rec *ringbuf.Record) (busy, ok bool) {
	prod := atomic.LoadUint64(r.prod)
	for read := r.read.Load(); read < prod; {
		// The length word is read atomically: it is what the kernel
		// publishes the record's contents with.
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[read&r.mask])))
		if hdr&ringBusy != 0 {
			return true, false
		}
		n := uint64(hdr &^ (ringBusy | ringDiscard))
		start := (read + ringHdrSize) & r.mask
		read += ringHdrSize + (n+7)&^7
		r.read.Store(read)
		if hdr&ringDiscard != 0 {
			continue
		}
		if uint64(cap(rec.RawSample)) < n {
			rec.RawSample = make([]byte, n)
		}
		rec.RawSample = rec.RawSample[:n]
		copy(rec.RawSample, r.data[start:start+n])
		rec.Remaining = int(prod - read)
		return false, true
	}
	return false, false
}

// wait waits for the kernel to add records, until the deadline. While a
// record is being submitted (busy), or records read are not committed (the
// kernel's poll says "ready" until they are), the poll cannot tell: it
// sleeps a little instead.
func (r *ring) wait(busy, uncommitted bool) error {
	timeout := -1
	if !r.deadline.IsZero() {
		left := time.Until(r.deadline)
		if left <= 0 {
			return os.ErrDeadlineExceeded
		}
		timeout = int((left + time.Millisecond - 1) / time.Millisecond)
	}
	if busy || uncommitted {
		d := uncommittedWait
		if busy {
			d = busyWait
		}
		if !r.deadline.IsZero() {
			d = min(d, time.Until(r.deadline))
		}
		time.Sleep(max(d, 0))
		return nil
	}
	// Records emitted while the reader is awake send no wakeup: asleep,
	// it says so, then looks once more for one emitted before the kernel
	// could see that.
	if !r.setWaiting(true) {
		return nil
	}
	n, err := unix.EpollWait(r.epfd, r.events[:], timeout)
	r.setWaiting(false)
	if err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("waiting for the ring buffer: %w", err)
	}
	for _, ev := range r.events[:max(n, 0)] {
		if int(ev.Fd) == r.efd {
			var buf [8]byte
			unix.Read(r.efd, buf[:])
		}
	}
	return nil
}

// setWaiting says whether the reader sleeps in epoll; going to sleep, it
// reports false (and stays awake) when a record is there to read or the
// ring is closed.
func (r *ring) setWaiting(asleep bool) bool {
	r.maps.RLock()
	defer r.maps.RUnlock()
	if r.waitPage == nil {
		return false
	}
	if !asleep {
		atomic.StoreUint32(r.waiting, 0)
		return true
	}
	atomic.StoreUint32(r.waiting, 1)
	if atomic.LoadUint64(r.prod) != r.read.Load() {
		atomic.StoreUint32(r.waiting, 0)
		return false
	}
	return true
}

func (r *ring) wake() {
	one := [8]byte{1}
	unix.Write(r.efd, one[:])
}

// flush makes readInto return what the ring holds now, then ErrFlushed.
func (r *ring) flush() {
	r.maps.RLock()
	defer r.maps.RUnlock()
	if r.consPage == nil {
		return
	}
	r.flushTo.Store(atomic.LoadUint64(r.prod))
	r.flushing.Store(true)
	r.wake()
}

// readPos is the position after the last record read.
func (r *ring) readPos() uint64 { return r.read.Load() }

// commit hands what was read back to the kernel. Only the pipeline's
// goroutine calls it, once what it read is in the log.
func (r *ring) commit() { r.commitTo(r.read.Load()) }

// commitTo hands the ring back to the kernel up to pos, a position read.
func (r *ring) commitTo(pos uint64) {
	r.maps.RLock()
	defer r.maps.RUnlock()
	if r.consPage != nil {
		atomic.StoreUint64(r.cons, pos)
	}
}

// skipTo moves the read and committed positions forward to pos, a position
// a previous reader committed in its custody record but died before
// handing back to the kernel.
func (r *ring) skipTo(pos uint64) error {
	r.maps.RLock()
	defer r.maps.RUnlock()
	cons, prod := atomic.LoadUint64(r.cons), atomic.LoadUint64(r.prod)
	if pos <= cons {
		return nil
	}
	if pos > prod || pos-cons > uint64(len(r.data)/2) || pos%8 != 0 {
		return fmt.Errorf("custody position %d is not in the ring (consumer %d, producer %d)", pos, cons, prod)
	}
	atomic.StoreUint64(r.cons, pos)
	r.read.Store(pos)
	return nil
}

// pending is the bytes not read yet; used is the bytes the kernel cannot
// reuse yet (read but not committed, and not read).
func (r *ring) pending() int {
	r.maps.RLock()
	defer r.maps.RUnlock()
	if r.consPage == nil {
		return 0
	}
	return int(atomic.LoadUint64(r.prod) - r.read.Load())
}

func (r *ring) used() int {
	r.maps.RLock()
	defer r.maps.RUnlock()
	if r.consPage == nil {
		return 0
	}
	return int(atomic.LoadUint64(r.prod) - atomic.LoadUint64(r.cons))
}

// setDeadline bounds readInto's wait; only readInto's goroutine calls it.
func (r *ring) setDeadline(t time.Time) { r.deadline = t }

func (r *ring) close() {
	if r.closed.Swap(true) {
		return
	}
	r.wake()
	r.maps.Lock()
	defer r.maps.Unlock()
	r.unmap()
	unix.Close(r.epfd)
	unix.Close(r.efd)
}

func (r *ring) unmap() {
	if r.consPage != nil {
		unix.Munmap(r.consPage)
		unix.Munmap(r.prodData)
		r.consPage, r.prodData = nil, nil
	}
	if r.waitPage != nil {
		unix.Munmap(r.waitPage)
		r.waitPage, r.waiting = nil, nil
	}
}
