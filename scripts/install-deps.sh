#!/bin/bash
# Installs the Debian packages skiff's build, demo and tests need. Run as root.
set -euo pipefail
PKGS=(
  build-essential pkg-config libseccomp-dev   # libcontainer's seccomp support
  busybox-static jq file time procps iproute2 # bundles, demo and test helpers
  runc crun podman containerd skopeo umoci    # peers and real clients in the tests
  containernetworking-plugins iptables        # CRI pods: CNI bridge, host-local, loopback; the no-rules-left check
  netavark aardvark-dns iptables iproute2     # specs::net: container networks (netavark runs iptables; ip for stand-in veths)
  tini                                        # skiffctl run --init (tini-static as PID 1)
  protobuf-compiler                           # protoc for the k8s-cri crate (tests/cri.rs's CRI client)
  docker-registry apache2-utils               # a loopback registry (htpasswd, token auth) for its tests
  ca-certificates openssl                     # ADD https: the trust store; test certificates
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
