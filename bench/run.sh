#!/bin/bash
# make bench: skiff side by side with runc and crun, in one run, using the peer
# scripts in ../shared/bench (present on the project's machines, not in the repo).
# Env: N (containers per runtime, default 200), ROUNDS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED_BENCH:-$(cd .. && pwd)/shared/bench}
if [ ! -x "$SHARED/compare-runtimes.sh" ]; then
  echo "bench: $SHARED/compare-runtimes.sh not found; the peer benchmarks live outside the repo" >&2
  exit 2
fi
SKIFF=${SKIFF:-$(pwd)/target/release/skiff}
peers=()
for p in runc crun; do command -v "$p" >/dev/null && peers+=("$p"); done
echo "== runtimes: skiff ${peers[*]} (N=${N:-200}, rounds=${ROUNDS:-5})"
"$SHARED/compare-runtimes.sh" -n "${N:-200}" -r "${ROUNDS:-5}" "$SKIFF=skiff" "${peers[@]}"
