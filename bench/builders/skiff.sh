#!/bin/bash
# Builder adapter for ../shared/bench/builder-bench.sh: skiff-build with a
# private store, RUN steps through skiff. Protocol: see the peer adapters
# (setup, build DOCKERFILE CTX TAG, clean TAG, size TAG, export_size TAG,
# cached, version, teardown).
# A build is timed with this script around it: the lines before `case` fork nothing.
: "${BENCH_WORK:=/var/tmp/skiff-bench}"; export BENCH_WORK
[ -d "$BENCH_WORK" ] || mkdir -p "$BENCH_WORK"
set -uo pipefail
HERE=${BASH_SOURCE[0]%/*}; [ "$HERE" = "${BASH_SOURCE[0]}" ] && HERE=.
BIN=${SKIFF_BIN_DIR:-$HERE/../../target/release}
B=${BENCH_SKIFF_DIR:-$BENCH_WORK/skiff-build}
STORE="$B/store"
IMAGES=${BENCH_IMAGES:-$BENCH_WORK/images}
BASE="bench/busybox:latest=oci-layout://$IMAGES/busybox-oci:latest"
SB=("$BIN/skiff-build")
cmd=${1:?}; shift
manifest() {  # manifest TAG -> path of the manifest blob in the store
  local d
  d=$(jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t
        or .annotations["org.opencontainers.image.ref.name"] == ($t + ":latest")) | .digest' \
      "$STORE/index.json" | head -1)
  [ -n "$d" ] && echo "$STORE/blobs/${d/://}"
}
case $cmd in
setup)
  mkdir -p "$B" ;;
build)
  "${SB[@]}" --store "$STORE" --runtime "$BIN/skiff" --progress plain --build-context "$BASE" \
    -f "$1" -t "$3" "$2" > "$B/last-build.log" 2>&1 || { cat "$B/last-build.log" >&2; exit 1; } ;;
clean)
  "${SB[@]}" prune --store "$STORE" >/dev/null 2>&1; rm -rf "$STORE" ;;
size)
  m=$(manifest "$1") || exit 1
  jq -r '"\([.layers[].size] | add // 0) \(.layers | length)"' "$m" ;;
export_size)
  # What `docker save` would write: a docker archive with the layers uncompressed.
  f="$B/export.tar"; u="$B/export-plain.tar"; rm -f "$f" "$u"
  "${SB[@]}" image save --store "$STORE" --format docker -o "$f" "$1" >/dev/null 2>&1 &&
    skopeo copy -q --dest-decompress "docker-archive:$f" "docker-archive:$u:$1" >/dev/null 2>&1 &&
    stat -c %s "$u"
  rm -f "$f" "$u" ;;
cached)
  grep -c ' CACHED' "$B/last-build.log" || true ;;
version)
  echo "$("${SB[@]}" --version 2>&1 | head -1) runtime=$("$BIN/skiff" --version | head -1)" ;;
teardown)
  : ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
