# agenttrace build. Every target works on a fresh Debian machine with Go and
# make: the Debian packages the tests, the demo and `generate` use are listed
# once, in tools/packages; `make test` and `make demo` check theirs first and
# name the command that installs what is missing (`make deps` does it).

GO       ?= go
CLANG    ?= clang-19
BIN      := bin/agenttrace
# The system interpreter: a version-manager shim would fill the demo with its own execs.
PYTHON   ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
DEMO_LOG ?= demo-$(shell date -u +%Y%m%dT%H%M%SZ)-$$$$.jsonl

.PHONY: all build generate test bench lint demo docs deps clean check-header

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

# As root: install the packages of tools/packages the demo and the tests use.
deps:
	tools/deps install demo test

# Tests run against the real kernel: run as root. With CI=true the missing
# packages are installed first; otherwise they are named, with the command.
# The integration tests include TestReadme, which runs this target again on a
# fresh clone: hence the timeout above go test's default 10 minutes.
test:
	@tools/deps check test
	$(GO) test -count=1 -timeout 30m ./...

# As root: the Go benchmarks, then agenttrace against no tracer, auditd and
# libbpf-tools, interleaved: short slices, a sustained openat load, and a
# real-work suite (Go and C builds, go test, grep -r), with each tracer's CPU
# per event and a profile of agenttrace (bench/). About 30-40 minutes on 2
# CPUs. Writes BENCHMARKS.md and bench/results.json.
bench:
	$(GO) run ./bench/cmd/benchrun -go $(GO) -command "make bench"

lint: check-header
	test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# docs/cli.md from the command tree of cmd/agenttrace.
docs:
	$(GO) test -count=1 ./cmd/agenttrace -run TestCLIDocs -update

# As root: trace the bundled demo agent, show what it did (agenttrace show),
# then name the log and the command that verifies it.
demo:
	@tools/deps check demo
	@$(MAKE) --no-print-directory build
	@log=$(DEMO_LOG); ./$(BIN) run --log $$log -- $(PYTHON) demo/agent.py && echo && \
		./$(BIN) show $$log && echo && \
		echo "The log: $$log (one JSON record a line). Verify it: ./$(BIN) verify --pubkey $$log.pub $$log"

clean:
	rm -rf bin demo-*.jsonl
