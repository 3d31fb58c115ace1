#!/bin/bash
# bench/registry.sh: push and pull of the `bigfile` image (../shared/bench fixtures, 200 MiB)
# to a loopback docker-registry, skiff-build beside `skopeo copy`, interleaved, in one run.
# Each round gets a fresh registry (nothing to skip or mount) and fresh destinations.
# Env: SKIFF_BIN_DIR (skiff-build and skiff), ROUNDS (default 3), BENCH_WORK.
: "${BENCH_WORK:=/var/tmp/skiff-bench}"; export BENCH_WORK
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$(cd "$HERE/../.." && pwd)/shared/bench}
BIN=${SKIFF_BIN_DIR:-$HERE/../target/release}
ROUNDS=${ROUNDS:-3}
W="$BENCH_WORK/registry"
for tool in docker-registry skopeo; do
  command -v "$tool" >/dev/null || { echo "bench registry: $tool is not installed" >&2; exit 2; }
done
[ -d "$BENCH_WORK/contexts/bigfile" ] || "$SHARED/make-build-fixtures.sh" >/dev/null
[ -d "$BENCH_WORK/images/busybox-oci" ] || "$SHARED/make-base-image.sh" >/dev/null
rm -rf "$W"; mkdir -p "$W"
HOST=
REG_PID=
stop_registry() {
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  REG_PID=
}
trap 'stop_registry; rm -rf "$W"' EXIT
# A new, empty registry on a new port: neither tool can mount or skip a blob because it
# remembers a location (skopeo keeps a blob-location cache across runs).
start_registry() {
  stop_registry
  HOST="127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  rm -rf "$W/data"; mkdir -p "$W/data"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$W/data" "$HOST" > "$W/config.yml"
  docker-registry serve "$W/config.yml" > "$W/registry.log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 100); do curl -fsS "http://$HOST/v2/" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "bench registry: docker-registry did not start" >&2; cat "$W/registry.log" >&2; exit 1
}
ms() { local t0=$1 t1=$2; echo $(((t1 - t0) / 1000)); }
quiet() {  # runs a command, showing its output only when it fails
  "$@" > "$W/cmd.log" 2>&1 || { echo "bench registry: failed: $*" >&2; cat "$W/cmd.log" >&2; exit 1; }
}

# The image, with gzip layers so that both tools move the same bytes (skopeo 1.9 cannot read
# zstd layers from an OCI layout).
quiet "$BIN/skiff-build" --store "$W/store" --runtime "$BIN/skiff" --progress plain --compression gzip \
  --build-context "bench/busybox:latest=oci-layout://$BENCH_WORK/images/busybox-oci:latest" \
  -f "$BENCH_WORK/dockerfiles/bigfile.Dockerfile" -t bigfile "$BENCH_WORK/contexts/bigfile"
: > "$W/results.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
  start_registry
  t0=${EPOCHREALTIME/./}
  quiet skopeo copy -q --dest-tls-verify=false "oci:$W/store:bigfile:latest" "docker://$HOST/skopeo/bigfile:latest"
  t1=${EPOCHREALTIME/./}
  quiet "$BIN/skiff-build" image push --store "$W/store" --insecure-registry "$HOST" bigfile "$HOST/skiff/bigfile:latest"
  t2=${EPOCHREALTIME/./}
  printf 'push\tskopeo\t%s\npush\tskiff\t%s\n' "$(ms "$t0" "$t1")" "$(ms "$t1" "$t2")" >> "$W/results.tsv"
  rm -rf "$W/pull-skiff" "$W/pull-skopeo"
  sync
  t0=${EPOCHREALTIME/./}
  quiet "$BIN/skiff-build" image pull --store "$W/pull-skiff" --insecure-registry "$HOST" "$HOST/skiff/bigfile:latest"
  t1=${EPOCHREALTIME/./}
  quiet skopeo copy -q --src-tls-verify=false "docker://$HOST/skiff/bigfile:latest" "oci:$W/pull-skopeo:bigfile"
  t2=${EPOCHREALTIME/./}
  printf 'pull\tskiff\t%s\npull\tskopeo\t%s\n' "$(ms "$t0" "$t1")" "$(ms "$t1" "$t2")" >> "$W/results.tsv"
done
stop_registry
echo "registry: bigfile (200 MiB), loopback docker-registry, $ROUNDS rounds, median ms"
for op in push pull; do
  s=$(awk -v o=$op '$1 == o && $2 == "skiff" {print $3}' "$W/results.tsv" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  k=$(awk -v o=$op '$1 == o && $2 == "skopeo" {print $3}' "$W/results.tsv" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%s\tskiff %s\tskopeo %s\tratio %s\n' "$op" "$s" "$k" "$(awk -v a="$s" -v b="$k" 'BEGIN {printf "%.2f", a / b}')"
done
