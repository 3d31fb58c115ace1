# skiff: build, test, demo, bench.
CARGO ?= cargo
PREFIX ?= /usr/local
RELEASE_DIR := target/release

.PHONY: all build deps demo test lint unit integration bench install clean

all: build

deps:
	bash scripts/install-deps.sh

build:
	$(CARGO) build --release --workspace

# The README's first command: install, build, make a busybox bundle and run it.
demo: deps build
	bash scripts/demo.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --release --workspace --exclude skiff-integration

integration: build
	SKIFF_BIN_DIR=$(CURDIR)/$(RELEASE_DIR) $(CARGO) test --release -p skiff-integration -- --test-threads=4

test: lint build unit integration

# Peer benchmarks (needs ../shared/bench); see bench/README.md.
bench: build
	bash bench/run.sh

install: build
	install -D -m 0755 $(RELEASE_DIR)/skiff $(DESTDIR)$(PREFIX)/bin/skiff
	install -D -m 0755 $(RELEASE_DIR)/skiff-build $(DESTDIR)$(PREFIX)/bin/skiff-build
	install -D -m 0755 $(RELEASE_DIR)/containerd-shim-skiff-v2 $(DESTDIR)$(PREFIX)/bin/containerd-shim-skiff-v2

clean:
	$(CARGO) clean
