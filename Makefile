# agenttrace build. Every target works on a fresh Debian machine with Go;
# `generate` also needs clang-19 (see .ci/run for the packages).

GO       ?= go
CLANG    ?= clang-19
BIN      := bin/agenttrace
# The system interpreter: a version-manager shim would fill the demo with its own execs.
PYTHON   ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
DEMO_LOG ?= demo-$(shell date -u +%Y%m%dT%H%M%SZ)-$$$$.jsonl

.PHONY: all build generate test bench lint demo clean check-header

all: build

build:
	$(GO) build -o $(BIN) ./cmd/agenttrace

# Regenerate the eBPF object and its Go bindings from bpf/ (committed).
generate: check-header
	cd internal/loader && $(GO) generate

# The shared record header must have explicit padding everywhere.
check-header:
	printf 'typedef unsigned char __u8; typedef unsigned short __u16; typedef int __s32; typedef unsigned int __u32;\ntypedef long long __s64; typedef unsigned long long __u64;\n#include "agenttrace.h"\n' | \
		$(CLANG) -target bpf -Wpadded -Werror -fsyntax-only -I bpf -x c -

# Tests run against the real kernel: run as root.
test:
	$(GO) test -count=1 ./...

# As root: the Go benchmarks, then agenttrace against no tracer, auditd and
# libbpf-tools, interleaved: short slices, a sustained openat load, and a
# real-work suite (Go and C builds, go test, grep -r), with each tracer's CPU
# per event and a profile of agenttrace (bench/). About 30-40 minutes on 2
# CPUs. Writes BENCHMARKS.md and bench/results.json.
bench:
	$(GO) run ./bench/cmd/benchrun -go $(GO) -command "make bench"

lint: check-header
	test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# Trace the bundled demo agent and print its records.
demo: build
	@log=$(DEMO_LOG); ./$(BIN) run --log $$log -- $(PYTHON) demo/agent.py && \
		echo "--- the records of $$log ---" && cat $$log

clean:
	rm -rf bin demo-*.jsonl
