#!/bin/bash
# make bench: skiff side by side with runc and crun, in one run, using the peer
# scripts in ../shared/bench (present on the project's machines, not in the repo).
# Env: N (containers per runtime, default 200), ROUNDS (default 5), SHIM_N (ctr runs per
# shim, default 50), REGISTRY_ROUNDS (default 3); SKIP_BUILDERS=1 / SKIP_REGISTRY=1 /
# SKIP_SHIMS=1 / SKIP_ENGINES=1 / SKIP_COMPOSE=1 leave a part out; ENGINE_N (default 20) runs per engine.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED_BENCH:-$(cd .. && pwd)/shared/bench}
if [ ! -x "$SHARED/compare-runtimes.sh" ]; then
  echo "bench: $SHARED/compare-runtimes.sh not found; the peer benchmarks live outside the repo" >&2
  exit 2
fi
SKIFF=${SKIFF:-$(pwd)/target/release/skiff}
# The peers come from Debian (the tests need runc, crun and podman; only the bench needs buildah).
if ! command -v buildah >/dev/null && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q buildah >/dev/null || echo "bench: buildah not installed" >&2
fi
peers=()
for p in runc crun; do command -v "$p" >/dev/null && peers+=("$p"); done
echo "== runtimes: skiff ${peers[*]} (N=${N:-200}, rounds=${ROUNDS:-5})"
"$SHARED/compare-runtimes.sh" -n "${N:-200}" -r "${ROUNDS:-5}" "$SKIFF=skiff" "${peers[@]}"

# Builders: skiff-build beside buildah (and BuildKit through dockerd when it is installed).
if [ -x "$SHARED/builder-bench.sh" ] && [ "${SKIP_BUILDERS:-0}" != 1 ]; then
  tools="$(pwd)/bench/builders/skiff.sh"
  command -v buildah >/dev/null && tools+=",buildah"
  command -v dockerd >/dev/null && tools+=",docker"
  echo "== builders: $tools (rounds=${BUILD_ROUNDS:-3}, fixtures: ${BUILD_FIXTURES:-app multistage bigfile})"
  # shellcheck disable=SC2086
  SKIFF_BIN_DIR=$(dirname "$SKIFF") "$SHARED/builder-bench.sh" -r "${BUILD_ROUNDS:-3}" "$tools" \
    ${BUILD_FIXTURES:-app multistage bigfile}
fi

# Registry push and pull of the bigfile image, skiff-build beside skopeo.
if [ "${SKIP_REGISTRY:-0}" != 1 ] && command -v docker-registry >/dev/null && command -v skopeo >/dev/null; then
  echo "== registry: skiff-build image push/pull beside skopeo copy (rounds=${REGISTRY_ROUNDS:-3})"
  SHARED_BENCH="$SHARED" SKIFF_BIN_DIR=$(dirname "$SKIFF") ROUNDS=${REGISTRY_ROUNDS:-3} bash bench/registry.sh
fi

# Shims under containerd 1.6: ours (with skiff beside it) and the stock Go runc shim with runc.
if [ -x "$SHARED/containerd-bench.sh" ] && command -v containerd >/dev/null && [ "${SKIP_SHIMS:-0}" != 1 ]; then
  echo "== shims: io.containerd.skiff.v2 and io.containerd.runc.v2+runc (N=${SHIM_N:-50})"
  # containerd finds containerd-shim-skiff-v2 on its PATH; the shim finds skiff beside itself.
  # The peer script's exit status is that of its last cleanup command, not of the run: its
  # table says whether anything failed.
  PATH="$(dirname "$SKIFF"):$PATH" SHIM=io.containerd.skiff.v2 LABEL=skiff-shim+skiff \
    "$SHARED/containerd-bench.sh" "${SHIM_N:-50}" || true
  if command -v runc >/dev/null; then
    SHIM=io.containerd.runc.v2 LABEL=runc-shim+runc "$SHARED/containerd-bench.sh" "${SHIM_N:-50}" || true
  fi
fi

# Engines: skiffctl beside docker (a private dockerd 20.10) and podman 4.3, one run.
if [ -x "$SHARED/engine-bench.sh" ] && [ "${SKIP_ENGINES:-0}" != 1 ]; then
  echo "== engines: skiffctl, docker, podman (N=${ENGINE_N:-20})"
  "$SHARED/engine-bench.sh" -n "${ENGINE_N:-20}" docker podman "$(dirname "$SKIFF")/skiffctl=skiffctl" || true
fi

# Compose: skiffctl compose beside docker-compose 1.29 and podman-compose 1.0.3.
if [ "${SKIP_COMPOSE:-0}" != 1 ]; then
  echo "== compose: up -d (until running and healthy) and down of a three-service app"
  SHARED_BENCH="$SHARED" SKIFFCTL="$(dirname "$SKIFF")/skiffctl" ROUNDS=${COMPOSE_ROUNDS:-5} bash bench/compose.sh || true
fi
