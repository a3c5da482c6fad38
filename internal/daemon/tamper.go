package daemon

import (
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
)

// TamperInterval is how often the daemon compares the kernel state it set
// (target patterns, cgroup states) with what the kernel holds.
const TamperInterval = time.Second

// watchTamper checks the kernel state every TamperInterval until stopTamper.
// Root can change the daemon's unfrozen maps with bpf(2) (to untrace a
// cgroup, say): every difference becomes a tamper record and a metric, and
// what the daemon set is written back.
func (d *Daemon) watchTamper() {
	d.tamperStop, d.tamperDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(d.tamperDone)
		t := time.NewTicker(TamperInterval)
		defer t.Stop()
		for {
			select {
			case <-d.tamperStop:
				return
			case <-t.C:
				d.checkTamper()
			}
		}
	}()
}

func (d *Daemon) stopTamper() {
	if d.tamperStop == nil {
		return
	}
	close(d.tamperStop)
	<-d.tamperDone
	d.tamperStop = nil
}

func (d *Daemon) checkTamper() {
	diffs, err := d.kernel.CheckState(d.cgroupExists)
	if err != nil {
		d.logger.Error().Err(err).Msg("checking the kernel state")
	}
	for i := range diffs {
		t := tamperBody(&diffs[i])
		if t.What == "cgroup_states" {
			t.Cgroup, _ = d.res.Path(t.CgroupID)
		}
		d.met.tamper.WithLabelValues(t.What).Inc()
		d.logger.Error().Str("what", t.What).Bool("restored", t.Restored).Msg("the kernel state agenttrace set was changed by someone else")
		d.appendOwn(t)
	}
}

// tamperBody is the tamper record of a difference the loader found.
func tamperBody(diff *loader.Tampering) *record.Tamper {
	t := &record.Tamper{What: diff.What, CgroupID: diff.CgroupID, Slot: diff.Slot, Restored: diff.Restored}
	state := func(st *loader.CgroupState) record.TamperValue {
		if st == nil {
			return record.TamperValue{Absent: true}
		}
		return record.TamperValue{Partial: st.Partial, Traced: st.Traced != 0}
	}
	switch diff.What {
	case "cgroup_states":
		t.Expected, t.Found = state(diff.ExpectedState), state(diff.FoundState)
	case "patterns":
		t.Expected.Pattern, t.Found.Pattern = diff.ExpectedPattern, diff.FoundPattern
	default:
		t.Expected.Gen, t.Found.Gen = diff.ExpectedGen, diff.FoundGen
	}
	return t
}

// cgroupExists reports whether the cgroup id is still there.
func (d *Daemon) cgroupExists(id uint64) bool {
	path, ok := d.res.Path(id)
	if !ok {
		return false
	}
	var st unix.Stat_t
	return unix.Stat(filepath.Join(d.mount, path), &st) == nil && st.Ino == id
}
