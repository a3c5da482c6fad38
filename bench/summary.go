package bench

import (
	"fmt"
	"slices"
	"strings"
)

// summarise turns the slices into per-workload results, checks the targets
// and writes the notes.
func (h *harness) summarise() {
	r := h.report
	for _, id := range ConditionIDs() {
		c := *h.conds[id]
		for _, s := range r.Slices {
			if s.Condition == id {
				c.Ran = true // perhaps stopped later: Reason says so
			}
		}
		r.Conditions = append(r.Conditions, c)
	}
	for _, name := range r.Settings.Workloads {
		r.Workloads = append(r.Workloads, h.summariseWorkload(lookupWorkload(name)))
	}
	for _, s := range r.Slices {
		if s.Phase == PhaseSustained {
			w := *lookupWorkload(WorkloadOpenat)
			w.Title += fmt.Sprintf(", %.0f s without a pause", float64(r.Settings.SustainedMs)/1000)
			sr := h.summarisePhase(PhaseSustained, &w)
			r.Sustained = &sr
			break
		}
	}
	for _, name := range r.Settings.RealWork {
		j := lookupJob(name)
		r.RealWork = append(r.RealWork, h.summarisePhase(PhaseRealWork, &workload{Name: j.Name, Title: h.jobTitle(j), Tree: true}))
	}
	for _, s := range r.Slices {
		if !s.Warmup {
			r.ForeignTracers.Of++
			if s.ForeignTracers > 0 {
				r.ForeignTracers.Slices++
			}
		}
	}
	var cpu, records int64
	for _, s := range r.Slices {
		if s.Phase == "" && !s.Warmup && s.Condition == CondTraced && s.Events != nil {
			cpu, records = cpu+s.TracerCPUNs, records+s.Events.Written
		}
	}
	if records > 0 {
		r.AgenttraceCPU = &AgenttraceCPU{Seconds: float64(cpu) / 1e9, Records: records, NsPerRecord: float64(cpu) / float64(records)}
	}
	r.Targets = h.targets()
	if r.ForeignTracers.Slices > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d of %d measured slices ran while another agenttrace (another engineer's tests on this shared machine) "+
			"had its programs loaded: its sys_enter/sys_exit hooks then ran for every syscall of every condition, no tracer included.",
			r.ForeignTracers.Slices, r.ForeignTracers.Of))
	}
	if h.audit != nil {
		r.Notes = append(r.Notes, "Once auditing has been enabled (the warm-up round's auditd slice), every new process carries the kernel's "+
			"syscall-audit work flag until reboot; with auditing off again it costs an early return per syscall. "+
			"The warm-up round makes this the same for every measured slice of every condition.")
	}
}

func (h *harness) summariseWorkload(w *workload) WorkloadResult {
	r := h.report
	wr := WorkloadResult{Name: w.Name, Title: w.Title}
	base := map[int]*Slice{} // round → the no-tracer slice
	for _, s := range r.Slices {
		if s.Phase == "" && s.Workload == w.Name && s.Condition == CondNone && !s.Warmup {
			base[s.Round] = s
		}
	}
	for _, id := range ConditionIDs() {
		cr := CondResult{Condition: id, Number: conditionNumber(id)}
		var ns, ratios, cpu, cpuRatios []float64
		for _, s := range r.Slices {
			if s.Phase != "" || s.Workload != w.Name || s.Condition != id || s.Warmup {
				continue
			}
			cr.Slices++
			cr.Ops += s.Ops
			ns, cpu = append(ns, s.NsPerOp), append(cpu, s.CPUNsPerOp)
			if b := base[s.Round]; b != nil && b.NsPerOp > 0 && b.CPUNsPerOp > 0 {
				ratios = append(ratios, s.NsPerOp/b.NsPerOp)
				cpuRatios = append(cpuRatios, s.CPUNsPerOp/b.CPUNsPerOp)
			}
			if s.Events != nil {
				cr.HasEvents = true
				cr.Written += s.Events.Written
				cr.Lost += s.Events.Lost
				cr.Lines += s.Events.Lines
			}
		}
		cr.Ran = cr.Slices > 0
		cr.Reason = h.conditionReason(id, w, cr.Ran)
		if cr.Ran {
			cr.MedianNsPerOp, cr.MinNsPerOp, cr.MaxNsPerOp = median(ns), slices.Min(ns), slices.Max(ns)
			cr.MedianCPUNsPerOp = median(cpu)
		}
		if len(ratios) > 0 {
			cr.Ratio, cr.RatioMin, cr.RatioMax = median(ratios), slices.Min(ratios), slices.Max(ratios)
			cr.CPURatio, cr.CPURatioMin, cr.CPURatioMax = median(cpuRatios), slices.Min(cpuRatios), slices.Max(cpuRatios)
		}
		wr.Conditions = append(wr.Conditions, cr)
	}
	return wr
}

// result is a workload's result under a condition, nil if it has no ratio
// to no tracer.
func (r *Report) result(workload, cond string) *CondResult {
	for i := range r.Workloads {
		if r.Workloads[i].Name != workload {
			continue
		}
		for j := range r.Workloads[i].Conditions {
			if c := &r.Workloads[i].Conditions[j]; c.Condition == cond && c.Ratio > 0 {
				return c
			}
		}
	}
	return nil
}

func (r *Report) goBench(name string) *GoBenchmark {
	for i := range r.GoBench {
		if r.GoBench[i].Name == name {
			return &r.GoBench[i]
		}
	}
	return nil
}

func (r *Report) profile(workload, cond string) *ProfileCond {
	for _, p := range r.Profile {
		if p.Workload != workload {
			continue
		}
		for i := range p.Conditions {
			if p.Conditions[i].Condition == cond {
				return &p.Conditions[i]
			}
		}
	}
	return nil
}

func status(ok bool) string {
	if ok {
		return Met
	}
	return NotMet
}

func ratioText(c *CondResult) string {
	return fmt.Sprintf("%.2f× (%.2f–%.2f over %d rounds); CPU time %.2f× (%.2f–%.2f)",
		c.Ratio, c.RatioMin, c.RatioMax, c.Slices, c.CPURatio, c.CPURatioMin, c.CPURatioMax)
}

// targets checks issue 16's targets.
func (h *harness) targets() []Target {
	r := h.report
	var ts []Target

	t := Target{Name: "sustained openat+close traced, ratio to no tracer", Want: "≤ 1.30×", Status: NotMeasured, Measured: "—"}
	if c := r.Sustained.condition(CondTraced); c != nil {
		t.Measured = fmt.Sprintf("%.2f× (%.2f–%.2f over %d rounds of %.0f s); CPU time %.2f×", c.Ratio, c.RatioMin, c.RatioMax, c.Slices,
			float64(r.Settings.SustainedMs)/1000, c.CPURatio)
		t.Status, t.CPUStatus = status(c.Ratio <= 1.3), status(c.CPURatio <= 1.3)
		t.Note = h.sustainedNote(c)
	}
	ts = append(ts, t)

	t = Target{Name: "total CPU per traced open (eBPF + user space), sustained", Want: "≤ 1,500 ns", Status: NotMeasured, Measured: "—"}
	if c, p := r.Sustained.condition(CondTraced), r.SustainedProfile; c != nil && p != nil {
		total := p.BPFNsPerOp + c.TracerNsPerOp
		t.Measured = fmt.Sprintf("%s ns: eBPF %s (BPF statistics, profile slice) + agenttrace's process %s (user and system, sustained slices)",
			thousands(total), thousands(p.BPFNsPerOp), thousands(c.TracerNsPerOp))
		t.Status = status(total <= 1500)
		t.Note = fmt.Sprintf("Measured without BPF statistics, the traced workload's own CPU time grew by %s ns per operation (the eBPF programs "+
			"and the syscall tracepoint path they hang on); with agenttrace's process that is %s ns of CPU per operation in all.",
			thousands(c.CPUExtraNsPerOp), thousands(c.TotalExtraNsPerOp))
	}
	ts = append(ts, t)

	t = Target{Name: "real-work suite traced, ratio to no tracer (every job)", Want: "≤ 1.05×", Status: NotMeasured, Measured: "—"}
	var parts []string
	worst, worstCPU := 0.0, 0.0
	for i := range r.RealWork {
		if c := r.RealWork[i].condition(CondTraced); c != nil {
			parts = append(parts, fmt.Sprintf("%s %.2f× (%.2f–%.2f)", r.RealWork[i].Name, c.Ratio, c.RatioMin, c.RatioMax))
			worst, worstCPU = max(worst, c.Ratio), max(worstCPU, c.CPURatio)
		}
	}
	if len(parts) > 0 {
		t.Measured, t.Status, t.CPUStatus = strings.Join(parts, "; "), status(worst <= 1.05), status(worstCPU <= 1.05)
	}
	ts = append(ts, t)

	t = Target{Name: "user-space pipeline, Go benchmark BenchmarkHotPath (decode, encode, hash, write)", Want: "≥ 1,000,000 events/s", Status: NotMeasured, Measured: "—"}
	if b := r.goBench("BenchmarkHotPath"); b != nil && b.Metrics["ns/event"] > 0 {
		rate := 1e9 / b.Metrics["ns/event"]
		t.Measured = fmt.Sprintf("%s events/s (%.0f ns/event)", thousands(rate), b.Metrics["ns/event"])
		t.Status = status(rate >= 1e6)
		if t.Status == NotMet && len(r.HotPathProfile) > 0 {
			var top []string
			for _, l := range r.HotPathProfile[:min(4, len(r.HotPathProfile))] {
				top = append(top, fmt.Sprintf("%s %.0f%%", l.Function, l.FlatPct))
			}
			t.Note = "Its CPU profile, top functions by own time: " + strings.Join(top, ", ") + " (see Go benchmarks)."
		}
	}
	ts = append(ts, t)

	t = Target{Name: "steady state allocations, BenchmarkHotPath and BenchmarkEncodeOpen", Want: "0 allocs/event", Status: NotMeasured, Measured: "—"}
	var allocs []string
	zero := true
	for _, name := range []string{"BenchmarkHotPath", "BenchmarkEncodeOpen"} {
		if b := r.goBench(name); b != nil {
			if a, ok := b.Metrics["allocs/op"]; ok {
				allocs = append(allocs, fmt.Sprintf("%s %.0f", name, a))
				zero = zero && a == 0
			}
		}
	}
	if len(allocs) > 0 {
		t.Measured, t.Status = strings.Join(allocs, ", "), status(zero)
	}
	ts = append(ts, t)

	t = Target{Name: "untraced openat with the daemon loaded, ratio to no tracer", Want: "≤ 1.05×", Status: NotMeasured, Measured: "—"}
	if c := r.result(WorkloadOpenat, CondDaemonUntraced); c != nil {
		t.Measured = ratioText(c)
		if u := r.result(WorkloadOpenat, CondUntraced); u != nil {
			t.Measured += fmt.Sprintf(" (under `agenttrace run`: %.2f×)", u.Ratio)
		}
		t.Status, t.CPUStatus = status(c.Ratio <= 1.05), status(c.CPURatio <= 1.05)
		p, none := r.profile(WorkloadOpenat, CondDaemonUntraced), r.result(WorkloadOpenat, CondNone)
		if p != nil && none != nil {
			enter, exit := p.hook("handle_sys_enter"), p.hook("handle_sys_exit")
			perOp := 2 * (enter.NsPerRun + exit.NsPerRun)
			t.Note = fmt.Sprintf("Loaded, agenttrace's sys_enter and sys_exit programs run for every syscall of every process, traced or not: "+
				"%.0f + %.0f ns per syscall in the daemon's profile slice (BPF statistics' own clock reads included), about %.0f ns per openat+close "+
				"(2 syscalls), %.0f%% of the %s ns of CPU time the operation takes with no tracer.",
				enter.NsPerRun, exit.NsPerRun, perOp, 100*perOp/none.MedianCPUNsPerOp, thousands(none.MedianCPUNsPerOp))
		}
	}
	ts = append(ts, t)

	t = Target{Name: "traced fork+exec, ratio to no tracer", Want: "≤ 1.05×", Status: NotMeasured, Measured: "—"}
	if c := r.result(WorkloadForkExec, CondTraced); c != nil {
		t.Measured, t.Status, t.CPUStatus = ratioText(c), status(c.Ratio <= 1.05), status(c.CPURatio <= 1.05)
		if t.Status == NotMet {
			t.Note = h.whereTimeGoes(WorkloadForkExec, c)
		}
	}
	ts = append(ts, t)

	t = Target{Name: "zero loss at the full sustained openat rate, default settings", Want: "0 lost", Status: NotMeasured, Measured: "—"}
	if c := r.Sustained.condition(CondTraced); c != nil {
		t.Measured = fmt.Sprintf("%s lost of %s records over %d full-speed sustained slices of %.0f s (%s opens/s)", thousands(float64(c.Lost)),
			thousands(float64(c.Written+c.Lost)), c.Slices, float64(r.Settings.SustainedMs)/1000, thousands(1e9/c.NsPerOp))
		t.Status = status(c.Lost == 0)
		if rs := r.RateSearch; rs != nil && len(rs.Trials) >= 2 {
			t.Measured += fmt.Sprintf("; rate search: %d lost at full speed, %.0f opens/s", rs.FullSpeedLost, rs.MaxRate)
			t.Status = status(c.Lost == 0 && rs.FullSpeedLost == 0)
		}
	}
	return append(ts, t)
}

// sustainedNote explains the sustained traced ratio: the workload's extra
// CPU time, agenttrace's, and how much of the machine that is.
func (h *harness) sustainedNote(c *PhaseCondition) string {
	r := h.report
	notes := []string{fmt.Sprintf("Traced, the workload's own CPU time per operation grew by %s ns (the eBPF programs and the tracepoint path in its "+
		"syscalls); agenttrace's process used %s ns of CPU per operation (%s per record).", thousands(c.CPUExtraNsPerOp), thousands(c.TracerNsPerOp),
		thousands(c.TracerNsPerEvent))}
	if c.NsPerOp > 0 {
		cores := c.TracerNsPerOp / c.NsPerOp
		notes = append(notes, fmt.Sprintf("At the traced rate (one operation per %s ns) that is %.2f of a core for agenttrace besides the "+
			"workload's own, on a machine of %d cores that other load shares.", thousands(c.NsPerOp), cores, r.Machine.Cores))
	}
	if p := r.SustainedProfile; p != nil {
		notes = append(notes, fmt.Sprintf("The profile slice's eBPF time: %s ns per operation (see Where agenttrace's CPU goes).", thousands(p.BPFNsPerOp)))
	}
	return strings.Join(notes, " ")
}

// whereTimeGoes explains a traced workload's extra time from the CPU
// ratio, the profile and agenttrace's own CPU time.
func (h *harness) whereTimeGoes(workload string, c *CondResult) string {
	r := h.report
	var notes []string
	if none := r.result(workload, CondNone); none != nil {
		notes = append(notes, fmt.Sprintf("Traced, an operation takes %s ns more wall time than with no tracer and %s ns more CPU time of its own (CPU ratio %.2f×; medians).",
			thousands(c.MedianNsPerOp-none.MedianNsPerOp), thousands(c.MedianCPUNsPerOp-none.MedianCPUNsPerOp), c.CPURatio))
	}
	if p := r.profile(workload, CondTraced); p != nil {
		enter, exit := p.hook("handle_sys_enter"), p.hook("handle_sys_exit")
		notes = append(notes, fmt.Sprintf("In the kernel, agenttrace's sys_enter and sys_exit programs averaged %.0f and %.0f ns per run in the traced profile slice "+
			"(%.1f runs per operation, other processes' syscalls included), %s ns of eBPF time per operation in all.",
			enter.NsPerRun, exit.NsPerRun, float64(enter.Runs)/float64(max(p.Ops, 1)), thousands(p.BPFNsPerOp)))
	}
	if cpu := r.AgenttraceCPU; cpu != nil && c.Ops > 0 && c.MedianNsPerOp > 0 {
		perOp := float64(c.Written) / float64(c.Ops)
		cores := cpu.NsPerRecord * perOp / c.MedianNsPerOp
		note := fmt.Sprintf("agenttrace's user space used %s ns of CPU per record: keeping up with the traced workload (%.2f records per operation, "+
			"one operation per %s ns) takes it %.2f of a core", thousands(cpu.NsPerRecord), perOp, thousands(c.MedianNsPerOp), cores)
		if cores >= 0.25 {
			note += fmt.Sprintf(", so with the workload's own core that is %.2f of this machine's %d, and with the machine's other load the "+
				"workload waits for a CPU: that is most of the wall-time ratio's excess over the CPU ratio.", 1+cores, r.Machine.Cores)
		} else {
			note += ": not what the workload waits for. The wall-time ratio's excess over the CPU ratio is the machine's other load (see the spread)."
		}
		notes = append(notes, note)
	}
	return strings.Join(notes, " ")
}

func (p *ProfileCond) hook(program string) ProfileHook {
	for _, hk := range p.Hooks {
		if hk.Program == program {
			return hk
		}
	}
	return ProfileHook{}
}

// thousands formats n with thousands separators.
func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// summarisePhase summarises one workload of a phase (the sustained load, a
// real-work job) under each of the phase's conditions.
func (h *harness) summarisePhase(phase string, w *workload) PhaseResult {
	r := h.report
	pr := PhaseResult{Name: w.Name, Title: w.Title}
	var measured []*Slice
	base := map[int]*Slice{}
	for _, s := range r.Slices {
		if s.Phase == phase && s.Workload == w.Name && !s.Warmup {
			measured = append(measured, s)
			if s.Condition == CondNone {
				base[s.Round] = s
			}
		}
	}
	for _, id := range []string{CondNone, CondTraced, CondAuditd, CondSnoop} {
		pc := PhaseCondition{Condition: id}
		var ns, cpu, ratios, cpuRatios, extra, drain []float64
		var tracerNs int64
		for _, s := range measured {
			if s.Condition != id {
				continue
			}
			pc.Slices++
			pc.Ops += s.Ops
			ns, cpu, drain = append(ns, s.NsPerOp), append(cpu, s.CPUNsPerOp), append(drain, s.DrainMs)
			tracerNs += s.TracerCPUNs
			if b := base[s.Round]; b != nil && b.NsPerOp > 0 && b.CPUNsPerOp > 0 {
				ratios = append(ratios, s.NsPerOp/b.NsPerOp)
				cpuRatios = append(cpuRatios, s.CPUNsPerOp/b.CPUNsPerOp)
				extra = append(extra, s.CPUNsPerOp-b.CPUNsPerOp)
			}
			if s.Events != nil {
				pc.HasEvents = true
				pc.Written += s.Events.Written
				pc.Lost += s.Events.Lost
				pc.Lines += s.Events.Lines
			}
		}
		pc.Ran = pc.Slices > 0
		pc.Reason = h.conditionReason(id, w, pc.Ran)
		if pc.Ran {
			pc.NsPerOp, pc.CPUNsPerOp, pc.DrainMs = median(ns), median(cpu), median(drain)
			if id != CondNone {
				pc.TracerNsPerOp = float64(tracerNs) / float64(max(pc.Ops, 1))
				if pc.Written > 0 {
					pc.TracerNsPerEvent = float64(tracerNs) / float64(pc.Written)
				}
			}
		}
		if len(ratios) > 0 && id != CondNone {
			pc.Ratio, pc.RatioMin, pc.RatioMax = median(ratios), slices.Min(ratios), slices.Max(ratios)
			pc.CPURatio, pc.CPUExtraNsPerOp = median(cpuRatios), median(extra)
			pc.TotalExtraNsPerOp = pc.CPUExtraNsPerOp + pc.TracerNsPerOp
		}
		pr.Conditions = append(pr.Conditions, pc)
	}
	return pr
}

func (pr *PhaseResult) condition(id string) *PhaseCondition {
	if pr == nil {
		return nil
	}
	for i := range pr.Conditions {
		if pr.Conditions[i].Condition == id && pr.Conditions[i].Ratio > 0 {
			return &pr.Conditions[i]
		}
	}
	return nil
}

// conditionReason says why condition id has no result, or only a partial one,
// for workload w ("" when it ran throughout).
func (h *harness) conditionReason(id string, w *workload, ran bool) string {
	c := h.conds[id]
	switch {
	case id == CondSnoop && h.snoop != nil && !h.snoop.canTrace(w):
		return h.snoop.whyNot(w)
	case !ran && c.Reason != "":
		return c.Reason
	case !ran:
		return "no measured slice completed"
	case c.Reason != "":
		return "stopped during the run: " + c.Reason
	}
	return ""
}
