#!/bin/bash
# The README's first command: build the example app (examples/app, two stages) on a busybox
# base image made here from Debian's busybox-static (examples/busybox), then run it the
# docker way with skiffctl: detached, port 8000 published on the host, a request to it,
# its logs, and removal; then as a compose project (examples/app/compose.yaml: web and the
# words service it reaches by name, gated by words' health check): up -d, a request, down -v.
# No registry, no internet.
#   BIN_DIR     where skiff, skiff-build and skiffctl are (default: the release build)
#   DEMO_DIR    scratch directory (default /tmp/skiff-demo)
#   SKIFF_STORE image store (default /var/lib/skiff/store); another store DIR/store makes
#               DIR skiffctl's --root
#   DEMO_PORT   the host port (default 8080)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-target/$(rustc -vV | sed -n 's/^host: //p')/release}
DEMO=${DEMO_DIR:-/tmp/skiff-demo}
STORE=${SKIFF_STORE:-/var/lib/skiff/store}
PORT=${DEMO_PORT:-8080}
BUSYBOX=/bin/busybox
run() { echo "+ $*" >&2; "$@"; }
ctl=("$BIN_DIR/skiffctl")
if [ -n "${SKIFF_STORE:-}" ]; then
  [ "$(basename "$STORE")" = store ] || { echo "SKIFF_STORE must end in /store" >&2; exit 2; }
  ctl+=(--root "$(dirname "$STORE")")
fi

rm -rf "$DEMO"
mkdir -p "$DEMO/base"
cp examples/busybox/Dockerfile "$DEMO/base/"
cp "$BUSYBOX" "$DEMO/base/busybox"

run "$BIN_DIR/skiff-build" --progress=plain --store "$STORE" -t skiff-demo/busybox "$DEMO/base"
run "$BIN_DIR/skiff-build" --progress=plain --store "$STORE" -t skiff-demo/app examples/app

name="demo-$$"
cleanup() { "${ctl[@]}" rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
run "${ctl[@]}" run -d -p "$PORT:8000" --hostname skiff --name "$name" skiff-demo/app
# GET /cgi-bin/hello on the published port, once it answers; prints the body.
hello() {
  local reply
  for _ in $(seq 100); do
    if reply=$(printf 'GET /cgi-bin/hello HTTP/1.0\r\n\r\n' | busybox nc 127.0.0.1 "$PORT" 2>/dev/null) &&
       [ -n "$reply" ]; then
      echo "+ GET http://127.0.0.1:$PORT/cgi-bin/hello" >&2
      printf '%s\n' "$reply" | sed -n '/^\r\{0,1\}$/,$p' | sed '1d'
      return 0
    fi
    sleep 0.1
  done
  return 1
}
status=0
hello || status=1
run "${ctl[@]}" ps
run "${ctl[@]}" logs "$name"
run "${ctl[@]}" rm -f "$name"

project="skiff-demo-$$"
compose=("${ctl[@]}" compose -f examples/app/compose.yaml -p "$project")
trap '"${compose[@]}" down -v >/dev/null 2>&1 || true' EXIT
export DEMO_PORT=$PORT
run "${compose[@]}" up -d
hello || status=1
run "${compose[@]}" ps
run "${compose[@]}" down -v
trap - EXIT
echo "+ exit code: $status" >&2
exit "$status"
