# crid — make targets. `make run` and `make test` install what they need.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
TEST_THREADS ?= 2

.PHONY: all deps build release test unit integration run bench fmt clippy clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --bins

release: deps
	$(CARGO) build --release --bins

## Unit + integration tests against a real containerd, runc and CNI plugins.
test: deps
	$(CARGO) build --bins
	$(CARGO) test --all-targets --no-fail-fast -- --test-threads=$(TEST_THREADS)

unit: deps
	$(CARGO) test --lib --bins

## Build crid, start (or reuse) containerd, start crid, run a demo pod.
run: release
	scripts/run.sh

## Compare crid, containerd's CRI plugin and the docker path; writes
## BENCHMARKS.md + bench/ (BENCH_OUT=DIR elsewhere). Knobs, all optional:
## BENCH_WORKLOADS=start,conc,stop,relist,exec,pull BENCH_N BENCH_CONC
## BENCH_PULL_ROUNDS BENCH_RELIST BENCH_EXEC BENCH_DOCKER (see scripts/bench.sh).
bench: release
	scripts/bench.sh

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets

clean:
	$(CARGO) clean
