# skiff: build, test, demo, bench.
CARGO ?= cargo
PREFIX ?= /usr/local
# Release binaries are static (glibc and libseccomp linked in): a smaller peak
# RSS and a faster start for every runtime call. An explicit --target keeps
# these flags off build scripts and proc-macros.
TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
RELEASE_DIR := target/$(TRIPLE)/release
STATIC_ENV := RUSTFLAGS="-C target-feature=+crt-static" LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/$(MULTIARCH)
RELEASE := $(STATIC_ENV) $(CARGO) --release --target $(TRIPLE)

.PHONY: all build deps demo test lint unit integration bench install clean patched-crates

all: build

# Cargo's [patch.crates-io] reads libcontainer from third_party/, made from
# the pristine crate and patches/*.patch (see patches/README.md).
patched-crates:
	bash scripts/patched-crates.sh

deps:
	bash scripts/install-deps.sh

build: patched-crates
	$(subst --release,build --release,$(RELEASE)) --workspace

# The README's first command: install, build, build the example app image and run it.
demo: deps build
	BIN_DIR=$(CURDIR)/$(RELEASE_DIR) bash scripts/demo.sh

lint: patched-crates
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

# Tests build in the dev profile (quick to compile); the binaries they drive are
# the static release ones.
# skiff-specs' net feature brings its networking tests (root; real netavark,
# namespaces and iptables; see specs/tests/net_*.rs).
unit: build
	SKIFF_BIN_DIR=$(CURDIR)/$(RELEASE_DIR) $(CARGO) test --workspace --exclude skiff-integration --features skiff-specs/net

integration: build
	SKIFF_BIN_DIR=$(CURDIR)/$(RELEASE_DIR) $(CARGO) test -p skiff-integration -- --test-threads=4

test: lint build unit integration

# Peer benchmarks (needs ../shared/bench); see bench/README.md.
bench: build
	SKIFF=$(CURDIR)/$(RELEASE_DIR)/skiff bash bench/run.sh

install: build
	install -D -m 0755 $(RELEASE_DIR)/skiff $(DESTDIR)$(PREFIX)/bin/skiff
	install -D -m 0755 $(RELEASE_DIR)/skiff-build $(DESTDIR)$(PREFIX)/bin/skiff-build
	install -D -m 0755 $(RELEASE_DIR)/containerd-shim-skiff-v2 $(DESTDIR)$(PREFIX)/bin/containerd-shim-skiff-v2
	install -D -m 0755 $(RELEASE_DIR)/skiffctl $(DESTDIR)$(PREFIX)/bin/skiffctl

clean:
	$(CARGO) clean
