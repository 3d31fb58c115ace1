#!/bin/bash
# The README's first command: build the example app (examples/app, two stages) on a busybox
# base image made here from Debian's busybox-static (examples/busybox), unpack the image as
# an OCI bundle and run it with skiff. No registry, no network.
#   BIN_DIR     where skiff and skiff-build are (default: the release build)
#   DEMO_DIR    scratch directory (default /tmp/skiff-demo)
#   SKIFF_STORE image store (default /var/lib/skiff/store, skiff-build's own default)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-target/$(rustc -vV | sed -n 's/^host: //p')/release}
DEMO=${DEMO_DIR:-/tmp/skiff-demo}
STORE=${SKIFF_STORE:-/var/lib/skiff/store}
BUSYBOX=/bin/busybox
run() { echo "+ $*" >&2; "$@"; }

rm -rf "$DEMO"
mkdir -p "$DEMO/base"
cp examples/busybox/Dockerfile "$DEMO/base/"
cp "$BUSYBOX" "$DEMO/base/busybox"

run "$BIN_DIR/skiff-build" --progress=plain --store "$STORE" -t skiff-demo/busybox "$DEMO/base"
run "$BIN_DIR/skiff-build" --progress=plain --store "$STORE" -t skiff-demo/app examples/app
run "$BIN_DIR/skiff-build" image unpack --store "$STORE" skiff-demo/app "$DEMO/bundle"
id="demo-$$"
status=0
run "$BIN_DIR/skiff" --root "$DEMO/state" run --bundle "$DEMO/bundle" "$id" || status=$?
echo "+ exit code: $status" >&2
exit "$status"
