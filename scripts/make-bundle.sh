#!/bin/bash
# make-bundle.sh DIR [ARG...]: an OCI bundle in DIR with a busybox-static rootfs
# and the config.json `skiff spec` writes, running ARG... (default: sh -c 'echo ...').
set -euo pipefail
DIR=${1:?usage: $0 DIR [ARG...]}
shift
SKIFF=${SKIFF:-$(dirname "$0")/../target/release/skiff}
BUSYBOX=/bin/busybox
R="$DIR/rootfs"
rm -rf "$R"
mkdir -p "$R"/{bin,etc,proc,sys,dev,tmp,root}
chmod 1777 "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
rm -f "$DIR/config.json"
"$SKIFF" spec --bundle "$DIR"
if [ $# -gt 0 ]; then
  args=$(printf '%s\n' "$@" | jq -R . | jq -s -c .)
  jq --argjson a "$args" '.process.args = $a | .process.terminal = false' "$DIR/config.json" > "$DIR/config.json.new"
  mv "$DIR/config.json.new" "$DIR/config.json"
fi
echo "$DIR"
