# The project's commands. `make test` is the one test command; .ci/run calls it.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

GO ?= go
# Benchmarks: packages, duration per benchmark, and where the raw output goes.
BENCH_PKGS ?= $(foreach d,actor supervision cluster,$(if $(wildcard $(d)/*_test.go),./$(d)))
BENCHTIME ?= 2s
# Benchmarks that build a fresh cluster per iteration (crash detection,
# gossip convergence) run a fixed number of iterations instead.
BENCH_FIXED ?= CrashDetection|GossipConvergence
BENCH_FIXED_TIME ?= 5x
BENCH_OUT ?= bench.out
# Fuzzing: how long each fuzz target runs, and the cap on minimising each new
# input (Go's default of 60s can stall a short run on a single input).
FUZZTIME ?= 15s
FUZZMINIMIZETIME ?= 2s

.PHONY: all test fmt-check vet race norace bench bench-raft bench-query proto demo demo-supervision fuzz clean

all: test

## test: gofmt check, go vet, go test -race, then the tests built without -race
test: fmt-check vet race norace

fmt-check:
	@echo '== gofmt'
	@bad=$$(find . -type f -name '*.go' ! -name '*.pb.go' ! -path './.git/*' ! -path './bin/*' -print0 \
		| xargs -0 -r gofmt -l); \
	if [ -n "$$bad" ]; then echo "gofmt: these files are not formatted (run gofmt -w):"; echo "$$bad"; exit 1; fi

vet:
	@echo '== go vet'
	$(GO) vet ./...

race:
	@echo '== go test -race'
	$(GO) test -race ./...

# Tests built only without -race (//go:build !race) run in a second pass:
# those that start raw protoactor-go remote transports as peers (several in
# one process race inside protoactor-go, on gRPC's process-wide logger and
# its endpoint manager; see actor/remote_test.go) and heavy multi-node
# scenarios too slow under the race detector.
NORACE_PKGS ?= $(shell grep -rl --include='*_test.go' '^//go:build !race' . | xargs -r -n1 dirname | sort -u | sed 's|^\./|./|')
norace:
	@echo '== go test (tests built without -race)'
	$(GO) test $(NORACE_PKGS)

## bench: our benchmarks and raw protoactor-go's, in the same run, with ratios
bench:
	{ $(GO) test -run '^$$' -bench . -skip '$(BENCH_FIXED)' -benchtime $(BENCHTIME) $(BENCH_PKGS); \
	  $(GO) test -run '^$$' -bench '$(BENCH_FIXED)' -benchtime $(BENCH_FIXED_TIME) $(BENCH_PKGS); } | tee $(BENCH_OUT)
	@echo
	@bench/ratio.sh $(BENCH_OUT)

## bench-raft: a 3-member Raft KV group, ours vs hashicorp/raft vs etcd (Debian etcd-server), same run
RAFTBENCH_FLAGS ?= -clients 1,16,64 -d 5s
bench-raft:
	cd bench && $(GO) run ./raftbench -mode disk $(RAFTBENCH_FLAGS)
	cd bench && $(GO) run ./raftbench -mode mem $(RAFTBENCH_FLAGS)

## bench-query: TPC-H SF1 Q1/Q6 from Parquet, ours (1 node, 3 executors) vs DuckDB, same run; Flight and CSV throughput
bench-query:
	cd bench && $(GO) run ./query

## proto: regenerate every *.pb.go from its .proto (needs protoc: apt-get install protobuf-compiler)
proto: bin/protoc-gen-go
	@command -v protoc >/dev/null || { echo 'make proto: protoc not found; install it with: apt-get install -y protobuf-compiler' >&2; exit 1; }
	@files=$$(find . -type f -name '*.proto' ! -path './.git/*' ! -path './bin/*' | sed 's|^\./||' | LC_ALL=C sort); \
	if [ -z "$$files" ]; then echo 'make proto: no .proto files'; exit 0; fi; \
	echo "protoc $$(protoc --version | sed 's/libprotoc //'), $$(bin/protoc-gen-go --version):" $$files; \
	protoc --plugin=protoc-gen-go=bin/protoc-gen-go -I . --go_out=. --go_opt=paths=source_relative $$files

# protoc-gen-go at the version go.mod pins (its `tool` directive). Always
# rebuilt (the go build cache makes that cheap), so a go.mod bump is honoured.
.PHONY: bin/protoc-gen-go
bin/protoc-gen-go:
	@mkdir -p bin
	@$(GO) build -o $@ google.golang.org/protobuf/cmd/protoc-gen-go

## demo: a 3-node cluster on this machine (separate processes) with the web observer; Ctrl-C stops it
demo:
	$(GO) run ./cmd/dist demo

## demo-supervision: a supervision tree surviving killed children, then escalating
demo-supervision:
	$(GO) run ./examples/supervision

## fuzz: a short run of every fuzz target (FUZZTIME each)
fuzz:
	@grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | LC_ALL=C sort | while read -r f; do \
		dir=./$$(dirname "$${f#./}"); \
		for fn in $$(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$$f" | cut -d' ' -f2); do \
			echo "== fuzz $$dir $$fn ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) "$$dir"; \
		done; \
	done

clean:
	rm -rf bin $(BENCH_OUT)

.PHONY: bench-saga demo-saga
## bench-saga: sagas/s and fsyncs per saga with and without group commit, in one run (group_commit_speedup is the ratio)
bench-saga:
	$(GO) test -run '^$$' -bench Sagas -benchtime $(BENCHTIME) -count 3 ./behaviors/saga

## demo-saga: the seed's saga story across two nodes: commit, rollback, a killed coordinator, a crashed node
demo-saga:
	$(GO) run ./examples/e2e_saga
