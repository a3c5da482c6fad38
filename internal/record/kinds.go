package record

// Kernel record kinds: enum record_kind of bpf/agenttrace.h. The record
// package must not import the loader (a reader of logs would then link the
// eBPF object), so the numbers are repeated here and
// TestKindsMatchHeader (internal/decoder) fails when they differ.
const (
	KindUnknown uint32 = 0 // a record the decoder could not read
	KindExec    uint32 = 1
	KindOpen    uint32 = 2
	KindConnect uint32 = 3
	KindFork    uint32 = 4
	KindExit    uint32 = 5
	KindCgroup  uint32 = 6
	KindSend    uint32 = 7
	KindBind    uint32 = 8
	KindListen  uint32 = 9
	KindAccept  uint32 = 10
	// KindSockState: how a recorded connect left SYN_SENT.
	KindSockState uint32 = 11
	KindDNS       uint32 = 12
	KindIOURing   uint32 = 13

	KindCgroupMove uint32 = 14
	KindProcAccess uint32 = 15
	KindFileOp     uint32 = 16
	KindMount      uint32 = 17
	KindNamespace  uint32 = 18
	KindBPF        uint32 = 19

	KindMax uint32 = 20
)

// TypeInfo is one record type: the value of a record's "type" member.
type TypeInfo struct {
	Name string
	// Kind is the kernel's record kind for the records the kernel emits,
	// 0 for the records agenttrace writes itself.
	Kind uint32
}

// Types lists every record type, in the order summaries list them: how a
// log starts, the kernel's records, what the tracer says about itself, how
// a log ends.
var Types = []TypeInfo{
	{"header", 0},
	{"recovery", 0},
	{"start", 0},
	{"exec", KindExec},
	{"open", KindOpen},
	{"connect", KindConnect},
	{"send", KindSend},
	{"bind", KindBind},
	{"listen", KindListen},
	{"accept", KindAccept},
	{"sock_state", KindSockState},
	{"dns", KindDNS},
	{"fork", KindFork},
	{"exit", KindExit},
	{"cgroup", KindCgroup},
	{"io_uring", KindIOURing},
	{"cgroup_move", KindCgroupMove},
	{"proc_access", KindProcAccess},
	{"file_op", KindFileOp},
	{"mount", KindMount},
	{"namespace", KindNamespace},
	{"bpf", KindBPF},
	{"tamper", 0},
	{"snapshot", 0},
	{"target", 0},
	{"reload", 0},
	{"gap", 0},
	{"heartbeat", 0},
	{"freeze", 0},
	{"thaw", 0},
	{"stop", 0},
	{"checkpoint", 0},
}

// kindNames is Types by kernel kind; "" for a number no kind has.
var kindNames = func() [KindMax]string {
	var names [KindMax]string
	names[KindUnknown] = "unknown"
	for _, t := range Types {
		if t.Kind != 0 {
			names[t.Kind] = t.Name
		}
	}
	return names
}()

// KindName is the record type of a kernel record kind; "unknown" for
// KindUnknown and for a kind this build does not know.
func KindName(kind uint32) string {
	if kind < KindMax && kindNames[kind] != "" {
		return kindNames[kind]
	}
	return "unknown"
}

// KindOf is the kernel record kind of records of type name; KindUnknown
// for agenttrace's own records and names this build does not know.
func KindOf(name string) uint32 {
	for _, t := range Types {
		if t.Name == name {
			return t.Kind
		}
	}
	return KindUnknown
}

// IsKind reports whether kind is a kernel record kind this build knows.
func IsKind(kind uint32) bool {
	return kind > KindUnknown && kind < KindMax && kindNames[kind] != ""
}

// IsKernel reports whether records of type name come from the kernel (and
// carry proc, cpu and kseq).
func IsKernel(name string) bool {
	for _, t := range Types {
		if t.Name == name {
			return t.Kind != 0
		}
	}
	return false
}

// LossNames lists the names a loss count can have, in order: every kernel
// kind, then "unknown" (records the decoder could not read).
func LossNames() []string {
	names := make([]string, 0, KindMax)
	for k := KindExec; k < KindMax; k++ {
		if IsKind(k) {
			names = append(names, kindNames[k])
		}
	}
	return append(names, kindNames[KindUnknown])
}
