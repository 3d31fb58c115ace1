#!/bin/bash
# bench/compose.sh: `compose up -d` (until every service runs, healthy where it has a
# check) and `compose down` of a three-service application (web, db with a health check
# gating web, cache), images already there, for skiffctl compose, docker-compose 1.29
# (Debian, on a private dockerd like ../shared/bench/engine-bench.sh starts) and
# podman-compose 1.0.3, interleaved, medians. The services end on SIGTERM, so `down`
# measures the engines, not a 10 s grace period. Run by `make bench` (or alone, as root).
#   SKIFFCTL  skiffctl to measure (default: the release build)
#   ROUNDS    rounds (default 5)
set -uo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED_BENCH:-$(cd .. && pwd)/shared/bench}
: "${BENCH_WORK:=/var/tmp/skiff-bench}"; export BENCH_WORK
SKIFFCTL=${SKIFFCTL:-$(pwd)/target/$(rustc -vV | sed -n 's/^host: //p')/release/skiffctl}
ROUNDS=${ROUNDS:-5}
IMG=bench/busybox:latest
[ -f "$BENCH_WORK/images/busybox-docker.tar" ] || "$SHARED/make-base-image.sh" >/dev/null
for p in docker-compose podman-compose; do
  command -v "$p" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" >/dev/null
done
W=$BENCH_WORK/compose; rm -rf "$W"; mkdir -p "$W/app"
D=$BENCH_WORK/engine-docker; DOCK="unix://$D/docker.sock"
if ! DOCKER_HOST=$DOCK docker version >/dev/null 2>&1; then
  mkdir -p "$D"
  nohup dockerd --data-root "$D/data" --exec-root "$D/exec" -H "$DOCK" --pidfile "$D/dockerd.pid" \
    --storage-driver=overlay2 --log-level=warn > "$D/dockerd.log" 2>&1 &
  for _ in $(seq 120); do DOCKER_HOST=$DOCK docker version >/dev/null 2>&1 && break; sleep 0.5; done
fi
DOCKER_HOST=$DOCK docker load -q -i "$BENCH_WORK/images/busybox-docker.tar" >/dev/null
podman load -q -i "$BENCH_WORK/images/busybox-docker.tar" >/dev/null
"$SKIFFCTL" load -q -i "$BENCH_WORK/images/busybox-docker.tar"

cat > "$W/app/compose.yaml" <<EOF
services:
  web:
    image: $IMG
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8000 -h /etc & wait"]
    ports: ["18990:8000"]
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
  db:
    image: $IMG
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    healthcheck:
      test: ["CMD", "test", "-e", "/etc/passwd"]
      interval: 200ms
      timeout: 2s
      retries: 3
  cache:
    image: $IMG
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
EOF

ms() { echo $(( (${EPOCHREALTIME/./} - $1) / 1000 )); }
# Until the web answers on its published port (all three run, db was healthy first).
ready() { for _ in $(seq 500); do curl -fs -o /dev/null http://127.0.0.1:18990/passwd && return 0; sleep 0.01; done; return 1; }
: > "$W/samples.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
  for tool in skiffctl docker-compose podman-compose; do
    case $tool in
      skiffctl) up=("$SKIFFCTL" compose -p benchc up -d); down=("$SKIFFCTL" compose -p benchc down) ;;
      docker-compose) up=(env DOCKER_HOST=$DOCK docker-compose -p benchc up -d); down=(env DOCKER_HOST=$DOCK docker-compose -p benchc down) ;;
      podman-compose) up=(podman-compose --podman-args='--runtime runc' --podman-run-args='--ulimit nofile=1024:1024 --ulimit nproc=1024:1024' -p benchc up -d)
                      down=(podman-compose -p benchc down) ;;
    esac
    t0=${EPOCHREALTIME/./}
    (cd "$W/app" && "${up[@]}" >"$W/$tool.up.log" 2>&1) && ready && echo -e "$tool\tup\t$(ms "$t0")" >> "$W/samples.tsv"
    t0=${EPOCHREALTIME/./}
    (cd "$W/app" && "${down[@]}" >"$W/$tool.down.log" 2>&1) && echo -e "$tool\tdown\t$(ms "$t0")" >> "$W/samples.tsv"
  done
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '%-16s %-6s %4s %8s\n' tool metric n median_ms
for tool in skiffctl docker-compose podman-compose; do for m in up down; do
  v=$(awk -F'\t' -v t="$tool" -v m="$m" '$1==t && $2==m {print $3}' "$W/samples.tsv")
  [ -n "$v" ] && printf '%-16s %-6s %4s %8s\n' "$tool" "$m" "$(echo "$v" | wc -l)" "$(echo "$v" | median)"
done; done
echo "podman-compose does not wait for service_healthy; logs in $W"
if [ -f "$D/dockerd.pid" ] && [ "${KEEP:-0}" != 1 ]; then kill "$(cat "$D/dockerd.pid")" 2>/dev/null; sleep 2; ip link del docker0 2>/dev/null; fi
