# crid — make targets. `make run` and `make test` install what they need.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
TEST_THREADS ?= 2

.PHONY: all deps build release test unit integration run bench fmt clippy clean install uninstall install-build deb

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --bins

release: deps
	$(CARGO) build --release --bins

## Install on a node (scripts/install.sh): binaries in $(PREFIX)/bin, the
## systemd unit, /etc/crid/config.toml when absent. `BIN_DIR=target/debug`
## installs what is built without a release build (the install test does).
PREFIX ?= /usr/local
DESTDIR ?=
BIN_DIR ?= target/release
INSTALL_ENV = BIN_DIR=$(BIN_DIR) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) \
	$(if $(UNIT_DIR),UNIT_DIR=$(UNIT_DIR)) $(if $(SYSCONFDIR),SYSCONFDIR=$(SYSCONFDIR))

install: $(if $(filter target/release,$(BIN_DIR)),install-build)
	$(INSTALL_ENV) scripts/install.sh install

uninstall:
	$(INSTALL_ENV) scripts/install.sh uninstall

install-build:
	$(CARGO) build --release --bins

## A Debian package of the same layout (PREFIX=/usr), with cargo-deb
## (`cargo install cargo-deb`; not part of CI). Output in target/debian/.
deb: $(if $(filter target/release,$(BIN_DIR)),install-build)
	rm -rf target/deb-root
	$(MAKE) install DESTDIR=$(CURDIR)/target/deb-root PREFIX=/usr BIN_DIR=$(BIN_DIR)
	$(CARGO) deb --no-build $(DEB_FLAGS)

## Unit + integration tests against a real containerd, runc and CNI plugins,
## with pods on crid's own shim (the default handler); then the lifecycle,
## streaming, logging and recovery tests again on containerd's runc shim
## (CRID_TEST_SHIM=0), which stays a supported handler.
RUNC_SHIM_TESTS = containers pods streaming cri_streaming logger recovery robustness cgroups network userns
test: deps
	$(CARGO) build --bins
	$(CARGO) test --all-targets --no-fail-fast -- --test-threads=$(TEST_THREADS)
	CRID_TEST_SHIM=0 $(CARGO) test --no-fail-fast $(addprefix --test ,$(RUNC_SHIM_TESTS)) -- --test-threads=$(TEST_THREADS)

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
