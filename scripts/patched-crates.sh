#!/bin/bash
# patched-crates.sh [--save NAME-VERSION]
#
# skiff carries small patches on crates.io dependencies (see
# patches/README.md). Cargo's [patch.crates-io] points at third_party/, which
# this script fills: the pristine .crate (from cargo's download cache, else
# from crates.io), checked against the sha256 pinned below (the same checksum
# Cargo.lock records), unpacked, and patched with patches/NAME-VERSION.patch.
# third_party/ is not committed; the patches are.
#
# --save NAME-VERSION writes the difference between the pristine crate and
# third_party/NAME-VERSION back into patches/NAME-VERSION.patch (after editing
# the patched copy).
set -euo pipefail
cd "$(dirname "$0")/.."

CRATES=(
  "libcontainer 0.7.0 2c28770cf8fb3acca0d168a10f5d9f8333d304af0b2ff5654029822d222d19f0"
)

# Prints the path of a verified pristine .crate file for NAME VERSION SHA.
fetch() {
  local name=$1 version=$2 sha=$3 file
  for file in "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate"; do
    if [ -f "$file" ] && echo "$sha  $file" | sha256sum -c --status; then
      echo "$file"
      return
    fi
  done
  mkdir -p third_party/.downloads
  file=third_party/.downloads/$name-$version.crate
  if ! { [ -f "$file" ] && echo "$sha  $file" | sha256sum -c --status; }; then
    curl -fsSL --retry 3 -o "$file.part" "https://static.crates.io/crates/$name/$name-$version.crate"
    if ! echo "$sha  $file.part" | sha256sum -c --status; then
      echo "patched-crates: $name-$version.crate from crates.io does not match sha256 $sha" >&2
      rm -f "$file.part"
      exit 1
    fi
    mv "$file.part" "$file"
  fi
  echo "$file"
}

# Unpacks the pristine crate into DIR/NAME-VERSION.
unpack() {
  local name=$1 version=$2 sha=$3 dir=$4
  mkdir -p "$dir"
  tar -xzf "$(fetch "$name" "$version" "$sha")" -C "$dir"
}

patch_sum() {
  local p=patches/$1.patch
  if [ -f "$p" ]; then sha256sum "$p" | cut -d' ' -f1; else echo none; fi
}

if [ "${1:-}" = --save ]; then
  target=${2:?usage: $0 --save NAME-VERSION}
  for c in "${CRATES[@]}"; do
    read -r name version sha <<<"$c"
    [ "$name-$version" = "$target" ] || continue
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    unpack "$name" "$version" "$sha" "$tmp/a"
    mkdir -p "$tmp/b"
    cp -a "third_party/$target" "$tmp/b/$target"
    rm -f "$tmp/b/$target/.patched"
    # No timestamps in the headers: the patch changes only when the code does.
    (cd "$tmp" && diff -ruN "a/$target" "b/$target" || true) |
      sed -E 's/^(---|\+\+\+) ([^\t]+)\t.*/\1 \2/' > "patches/$target.patch"
    [ -s "patches/$target.patch" ] || rm -f "patches/$target.patch"
    patch_sum "$target" > "third_party/$target/.patched"
    echo "wrote patches/$target.patch"
    exit 0
  done
  echo "patched-crates: unknown crate $target" >&2
  exit 1
fi

for c in "${CRATES[@]}"; do
  read -r name version sha <<<"$c"
  dest=third_party/$name-$version
  want=$(patch_sum "$name-$version")
  if [ -f "$dest/.patched" ] && [ "$(cat "$dest/.patched")" = "$want" ]; then
    continue
  fi
  tmp=$(mktemp -d third_party.tmp.XXXXXX)
  unpack "$name" "$version" "$sha" "$tmp"
  if [ -f "patches/$name-$version.patch" ]; then
    (cd "$tmp" && patch -s -p1 --no-backup-if-mismatch) < "patches/$name-$version.patch"
  fi
  echo "$want" > "$tmp/$name-$version/.patched"
  rm -rf "$dest"
  mkdir -p third_party
  mv "$tmp/$name-$version" "$dest"
  rm -rf "$tmp"
  echo "patched-crates: $dest ready"
done
