#!/bin/bash
# The README's first command: a busybox bundle from Debian's busybox-static, run with skiff.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=${SKIFF:-target/release/skiff}
DEMO=${DEMO_DIR:-/tmp/skiff-demo}
scripts/make-bundle.sh "$DEMO/bundle" sh -c \
  'echo "hello from skiff: $(hostname), pid $$, uid $(id -u)"; echo "kernel $(uname -r)"; ls /' >/dev/null
echo "+ skiff run --bundle $DEMO/bundle demo-$$"
"$SKIFF" --root "$DEMO/state" run --bundle "$DEMO/bundle" "demo-$$"
echo "+ exit code: $?"
