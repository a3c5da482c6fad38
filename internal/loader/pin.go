package loader

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The daemon's kernel side outlives the daemon: its maps (the ring buffer
// and the counters among them) and its links are pinned in bpffs, so that
// the hooks keep recording while no daemon runs (a crash, a restart, an
// upgrade), and the next daemon adopts them and reads on where the last
// one stopped. A custody record, pinned beside them, says how far the log
// goes: the ring position handed back to the kernel, the log position it
// corresponds to, and the running counts that make the log's accounting
// continue (see Progress).
//
// Layout: <bpffs>/agenttrace/<state>/<build>/ where <state> names the
// daemon's state directory and <build> the object and its load-time knobs:
// one daemon's state, and only a kernel side that this build decodes
// exactly as it was written is adopted.

// BPFFS is where bpffs is mounted, by convention; Load mounts it there
// when it is not.
const BPFFS = "/sys/fs/bpf"

// KernelState says where the kernel side Load returned came from.
type KernelState string

const (
	// StateLoaded: not pinned (agenttrace run); it ends with the process.
	StateLoaded KernelState = ""
	// StateCreated: loaded now and pinned; nothing was pinned before.
	StateCreated KernelState = "created"
	// StateAdopted: the pinned kernel side of an earlier daemon, still
	// recording; nothing was loaded or attached.
	StateAdopted KernelState = "adopted"
	// StateReplaced: loaded now; a pinned kernel side of another build or
	// configuration is removed once this one is attached (see Replaced).
	StateReplaced KernelState = "replaced"
)

// PinDir is where the daemon with state directory stateDir pins its
// kernel side.
func PinDir(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(BPFFS, "agenttrace", hex.EncodeToString(sum[:8]))
}

// custodyMagic marks a custody record of this layout.
const custodyMagic = 0x31_79_64_6f_74_73_75_63 // "custody1", little-endian

// Progress is how far the log goes in what the kernel side recorded: the
// custody record. The pipeline writes it (Commit) only when everything it
// read up to RingPos is in the log file and every loss it counted is in a
// gap record there.
type Progress struct {
	LogID   string // the log's id
	Seq     uint64 // the last record in the file
	Segment int    // the segment it is in,
	Offset  int64  // and that segment's length with it
	RingPos uint64 // the ring position everything before which is in the log
	// Event records written and events counted in gap records, by kind,
	// since the kernel side was created: with the kernel's counters
	// (matched since then) they make the accounting identity.
	Written, Gapped [KindMax]uint64
	// Accounted are the kernel's loss counters, by CPU, already counted in
	// gap records in the log.
	Accounted [][KindMax]KindCounters
}

// custody header layout, then Written, Gapped and Accounted as uint64s.
type custodyHeader struct {
	Magic    uint64
	KindMax  uint32
	CPUs     uint32
	Identity [32]byte
	LogID    [32]byte
	Seq      uint64
	Segment  uint64
	Offset   uint64
	RingPos  uint64
}

func custodySize(cpus int) int {
	return binary.Size(custodyHeader{}) + 8*2*int(KindMax) + cpus*int(KindMax)*int(binary.Size(KindCounters{}))
}

func (t *Tracer) encodeCustody(p *Progress) []byte {
	h := custodyHeader{Magic: custodyMagic, KindMax: KindMax, CPUs: uint32(t.cpus), Identity: t.identity,
		Seq: p.Seq, Segment: uint64(p.Segment), Offset: uint64(p.Offset), RingPos: p.RingPos}
	copy(h.LogID[:], p.LogID)
	var b bytes.Buffer
	b.Grow(custodySize(t.cpus))
	binary.Write(&b, binary.NativeEndian, &h)
	binary.Write(&b, binary.NativeEndian, &p.Written)
	binary.Write(&b, binary.NativeEndian, &p.Gapped)
	acc := p.Accounted
	if len(acc) != t.cpus {
		acc = make([][KindMax]KindCounters, t.cpus)
		copy(acc, p.Accounted)
	}
	binary.Write(&b, binary.NativeEndian, acc)
	return b.Bytes()
}

// decodeCustody reads a custody record of this build (identity id and
// cpus CPUs); ok is false for anything else.
func decodeCustody(data []byte, id [32]byte, cpus int) (p *Progress, ok bool) {
	var h custodyHeader
	rd := bytes.NewReader(data)
	if len(data) != custodySize(cpus) || binary.Read(rd, binary.NativeEndian, &h) != nil ||
		h.Magic != custodyMagic || h.KindMax != KindMax || int(h.CPUs) != cpus || h.Identity != id {
		return nil, false
	}
	p = &Progress{LogID: string(bytes.TrimRight(h.LogID[:], "\x00")), Seq: h.Seq, Segment: int(h.Segment),
		Offset: int64(h.Offset), RingPos: h.RingPos, Accounted: make([][KindMax]KindCounters, cpus)}
	binary.Read(rd, binary.NativeEndian, &p.Written)
	binary.Read(rd, binary.NativeEndian, &p.Gapped)
	binary.Read(rd, binary.NativeEndian, p.Accounted)
	return p, true
}

// identityOf names the kernel side a build loads with these knobs: the
// object's bytes, every load-time setting, and the CPU count (the per-CPU
// maps' shape).
func identityOf(settings map[string]any, cfg *Config, cpus int) [32]byte {
	h := sha256.New()
	h.Write(_BpfBytes)
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(h, "%s=%v\n", name, settings[name])
	}
	fmt.Fprintf(h, "ring=%d cpus=%d custody=%d\n", cfg.RingBytes, cpus, custodySize(cpus))
	var id [32]byte
	h.Sum(id[:0])
	return id
}

// BPFFSMounted reports whether bpffs is mounted at BPFFS.
func BPFFSMounted() (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		// id parent major:minor root mountpoint options... - fstype source super
		fields := strings.Fields(s.Text())
		sep := slices.Index(fields, "-")
		if len(fields) > 4 && sep > 0 && sep+1 < len(fields) && fields[4] == BPFFS && fields[sep+1] == "bpf" {
			return true, nil
		}
	}
	return false, s.Err()
}

// mountBPFFS mounts bpffs at BPFFS unless it is there already.
func mountBPFFS() error {
	mounted, err := BPFFSMounted()
	if err != nil || mounted {
		return err
	}
	if err := unix.Mount("bpf", BPFFS, "bpf", 0, "mode=0700"); err != nil {
		return classify(fmt.Errorf("mounting bpffs at %s: %w", BPFFS, err))
	}
	return nil
}

// preparePins makes the state's pin directory, mounting bpffs if needed,
// and looks at what it holds: the directory of this build (the one to
// adopt, if complete) and those of others (to replace).
func (t *Tracer) preparePins(pinDir string) (others []string, err error) {
	if err := mountBPFFS(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(pinDir, 0o700); err != nil {
		return nil, classify(fmt.Errorf("creating %s: %w", pinDir, err))
	}
	t.pinDir = filepath.Join(pinDir, hex.EncodeToString(t.identity[:8]))
	entries, err := os.ReadDir(pinDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if p := filepath.Join(pinDir, e.Name()); p != t.pinDir {
			others = append(others, p)
		}
	}
	return others, nil
}

// adopt takes over the kernel side pinned in t.pinDir if it is complete
// (its custody record says so). One that is not (a daemon that died while
// creating it, or pins removed by hand) is moved aside and replaced like
// another build's. ok reports whether t is now the adopted kernel side.
func (t *Tracer) adopt() (ok bool, err error) {
	if _, err := os.Stat(t.pinDir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	why, err := t.tryAdopt()
	if err == nil {
		return true, nil
	}
	t.closeAdopted()
	if errors.Is(err, os.ErrPermission) {
		return false, classify(err)
	}
	aside := fmt.Sprintf("%s.broken-%d", t.pinDir, os.Getpid())
	if rerr := os.Rename(t.pinDir, aside); rerr != nil {
		return false, fmt.Errorf("the pinned kernel side in %s cannot be adopted (%s: %v) nor moved aside: %w", t.pinDir, why, err, rerr)
	}
	t.others = append(t.others, aside)
	t.adoptFailure = fmt.Sprintf("%s: %v", why, err)
	return false, nil
}

// tryAdopt opens what t.pinDir holds; on error the caller closes what it
// opened. why says what was being opened.
func (t *Tracer) tryAdopt() (why string, err error) {
	custody, err := ebpf.LoadPinnedMap(filepath.Join(t.pinDir, "custody"), nil)
	if err != nil {
		return "no complete custody record", err
	}
	t.custody = custody
	data := make([]byte, custodySize(t.cpus))
	if custody.ValueSize() != uint32(len(data)) {
		return "custody record", fmt.Errorf("value size %d, want %d", custody.ValueSize(), len(data))
	}
	if err := custody.Lookup(uint32(0), data); err != nil {
		return "custody record", err
	}
	progress, complete := decodeCustody(data, t.identity, t.cpus)
	if !complete {
		return "custody record", errors.New("not written by this build")
	}
	t.progress = progress
	maps := reflect.ValueOf(&t.objs.bpfMaps).Elem()
	for i := range maps.NumField() {
		name := maps.Type().Field(i).Tag.Get("ebpf")
		m, err := ebpf.LoadPinnedMap(filepath.Join(t.pinDir, name), nil)
		if err != nil {
			return "map " + name, err
		}
		maps.Field(i).Set(reflect.ValueOf(m))
	}
	progs := reflect.ValueOf(&t.objs.bpfPrograms).Elem()
	byName := map[string]reflect.Value{}
	for i := range progs.NumField() {
		byName[progs.Type().Field(i).Tag.Get("ebpf")] = progs.Field(i)
	}
	for _, h := range Hooks {
		if t.absent[h.Name] {
			continue // never attached on this kernel
		}
		l, err := link.LoadPinnedLink(filepath.Join(t.pinDir, "link_"+h.Program), nil)
		if err != nil {
			return "link " + h.Name, err
		}
		t.links = append(t.links, l)
		info, err := l.Info()
		if err != nil {
			return "link " + h.Name, err
		}
		prog, err := ebpf.NewProgramFromID(info.Program)
		if err != nil {
			return "the program of link " + h.Name, err
		}
		byName[h.Program].Set(reflect.ValueOf(prog))
	}
	return "the target state", t.learnState()
}

// learnState takes what the adopted maps hold as what agenttrace set: the
// daemon that set it is gone, and the tamper check starts from here.
func (t *Tracer) learnState() error {
	if !t.cfg.Globs {
		return nil
	}
	states, err := t.CgroupStates()
	if err != nil {
		return err
	}
	s := &t.expect
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range states {
		s.put(id, st)
	}
	for i := range uint32(MaxPatterns) {
		if err := t.objs.Patterns.Lookup(i, &s.patterns[i]); err != nil {
			return fmt.Errorf("reading target pattern %d: %w", i, err)
		}
	}
	if err := t.objs.StatesGen.Lookup(uint32(0), &s.gen); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("reading the cgroup state generation: %w", err)
	}
	return nil
}

func (t *Tracer) closeAdopted() {
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
	t.objs.Close()
	if t.custody != nil {
		t.custody.Close()
		t.custody = nil
	}
}

// pinMaps pins every map of a kernel side just loaded, and creates its
// custody record (empty: the kernel side is complete only once the first
// Commit writes it).
func (t *Tracer) pinMaps() error {
	if err := os.MkdirAll(t.pinDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", t.pinDir, err)
	}
	maps := reflect.ValueOf(&t.objs.bpfMaps).Elem()
	for i := range maps.NumField() {
		name := maps.Type().Field(i).Tag.Get("ebpf")
		if err := maps.Field(i).Interface().(*ebpf.Map).Pin(filepath.Join(t.pinDir, name)); err != nil {
			return fmt.Errorf("pinning map %s: %w", name, err)
		}
	}
	custody, err := ebpf.NewMap(&ebpf.MapSpec{Name: "at_custody", Type: ebpf.Array, KeySize: 4,
		ValueSize: uint32(custodySize(t.cpus)), MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("creating the custody record: %w", err)
	}
	t.custody = custody
	return nil
}

// Commit records that everything read from the ring so far is in the log,
// as p says (p.RingPos is set here), and hands the ring's space back to
// the kernel. Without a pinned kernel side only the latter.
func (t *Tracer) Commit(p *Progress) error {
	if t.custody == nil || t.released {
		t.ring.commit()
		return nil
	}
	// The custody record first: a reader killed between the two finds the
	// position in the record and moves the ring's on (Adopt).
	p.RingPos = t.ring.readPos()
	if err := t.custody.Put(uint32(0), t.encodeCustody(p)); err != nil {
		return fmt.Errorf("writing the custody record: %w", err)
	}
	if !t.custodyPinned {
		// Pinned last: only now is the kernel side complete.
		if err := t.custody.Pin(filepath.Join(t.pinDir, "custody")); err != nil {
			return fmt.Errorf("pinning the custody record: %w", err)
		}
		t.custodyPinned = true
	}
	t.ring.commitTo(p.RingPos)
	return nil
}

// State says where the kernel side came from.
func (t *Tracer) State() KernelState { return t.state }

// Resumed is the custody record of the adopted kernel side: how far the
// log went when its last reader stopped (nil unless adopted).
func (t *Tracer) Resumed() *Progress { return t.progress }

// Replaced are the kernel sides of other builds or configurations that were
// pinned for this state directory when this one was loaded.
func (t *Tracer) Replaced() []string { return t.others }

// AdoptFailure says why this build's pinned kernel side could not be
// adopted ("" if there was none, or it was).
func (t *Tracer) AdoptFailure() string { return t.adoptFailure }

// ReplacedState is what a replaced kernel side had matched that its
// custody record does not show in the log: events never read from it.
type ReplacedState struct {
	Dir string
	// Unread counts events it matched that its custody record does not
	// show in the log (all kinds together: another build may number them
	// differently); Known is false when its custody record was unreadable.
	Unread uint64
	Known  bool
}

// RemoveReplaced detaches and removes the kernel sides listed by Replaced,
// once this one is attached (so that nothing goes unrecorded in between),
// and says what each had matched that is not in the log.
func (t *Tracer) RemoveReplaced() []ReplacedState {
	var out []ReplacedState
	for _, dir := range t.others {
		st := ReplacedState{Dir: dir}
		st.Unread, st.Known = unreadOf(dir)
		removePins(dir)
		out = append(out, st)
	}
	t.others = nil
	return out
}

// unreadOf reads another build's counters and custody record: the events
// it matched minus those its custody record shows in the log. Its layout
// may differ from this build's; only what every layout of the custody
// record shares (its header, then Written and Gapped by its KindMax) is used.
func unreadOf(dir string) (uint64, bool) {
	custody, err := ebpf.LoadPinnedMap(filepath.Join(dir, "custody"), nil)
	if err != nil {
		return 0, false
	}
	defer custody.Close()
	data := make([]byte, custody.ValueSize())
	var h custodyHeader
	if custody.Lookup(uint32(0), data) != nil || binary.Read(bytes.NewReader(data), binary.NativeEndian, &h) != nil ||
		h.Magic != custodyMagic || len(data) < binary.Size(h)+16*int(h.KindMax) {
		return 0, false
	}
	var logged uint64
	for i := range 2 * int(h.KindMax) {
		logged += binary.NativeEndian.Uint64(data[binary.Size(h)+8*i:])
	}
	counters, err := ebpf.LoadPinnedMap(filepath.Join(dir, "counters"), nil)
	if err != nil {
		return 0, false
	}
	defer counters.Close()
	var matched uint64
	var perCPU []KindCounters
	for kind := uint32(0); kind < h.KindMax; kind++ {
		if counters.Lookup(kind, &perCPU) != nil {
			return 0, false
		}
		for _, c := range perCPU {
			matched += c.Matched
		}
	}
	if matched < logged {
		return 0, true
	}
	return matched - logged, true
}

// Release unpins the kernel side, so that it goes away with this process:
// a deliberate stop. Close then detaches it.
func (t *Tracer) Release() error {
	if t.pinDir == "" {
		return nil
	}
	err := removePins(t.pinDir)
	t.custodyPinned, t.released = false, true
	return err
}

// Pinned reports whether the kernel side stays when this process ends.
func (t *Tracer) Pinned() bool { return t.custodyPinned }

// PinPath is the directory the kernel side is pinned in ("" if not).
func (t *Tracer) PinPath() string { return t.pinDir }

// removePins removes a pin directory: its links detach and its maps go
// once nothing else holds them. The parent directory goes too once empty.
func removePins(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil {
		errs = append(errs, err)
	}
	os.Remove(filepath.Dir(dir)) // fails unless empty
	return errors.Join(errs...)
}

// PinnedState reports whether a kernel side is pinned for a state directory.
func PinnedState(stateDir string) bool {
	entries, err := os.ReadDir(PinDir(stateDir))
	return err == nil && len(entries) > 0
}
