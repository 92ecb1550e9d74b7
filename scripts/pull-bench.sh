#!/usr/bin/env bash
# Cold-pull timing: a ~100 MB image (busybox + 5 layers of 20 MiB random
# data, gzip) on a loopback registry, pulled through crid into a fresh
# containerd each round (so no blob or snapshot survives from an earlier
# round: containerd collects asynchronously). Prints each round and the
# median. Everything started here is stopped by PID on exit.
#
# PULL_BENCH_BIN may list several build dirs (space separated): each round
# then pulls once with each, in turn, so a comparison sees the same noise.
#
#   PULL_BENCH_ROUNDS=5  PULL_BENCH_BIN=target/release  PULL_BENCH_LAYERS=5
#   PULL_BENCH_VIA=crid (default) | cri (containerd's CRI plugin pulls, driven
#     by cridctl on containerd's socket) | ctr (`ctr images pull`: containerd's
#     own Go client, fetching and unpacking over the same gRPC API as crid)
#   PULL_BENCH_LAYER_MIB=20  PULL_BENCH_LOG=info (crid --log-level)  KEEP=1 (keep the temp dir)
#   PULL_BENCH_PERF=1: `perf record -g` containerd and crid during each pull
#     (linux-perf), into $W/perf-r<round>-<build>-{containerd,crid}.data;
#     use with KEEP=1, then `perf report -i FILE --no-children --sort sym`
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
read -r -a BINS <<< "${PULL_BENCH_BIN:-$ROOT/target/release}"
ROUNDS=${PULL_BENCH_ROUNDS:-5}
LAYERS=${PULL_BENCH_LAYERS:-5}
MIB=${PULL_BENCH_LAYER_MIB:-20}
VIA=${PULL_BENCH_VIA:-crid}
case "$VIA" in crid|cri|ctr) ;; *) echo "pull-bench: PULL_BENCH_VIA is crid, cri or ctr"; exit 1;; esac
[ "$(id -u)" = 0 ] || { echo "pull-bench: run as root"; exit 1; }
for BIN in "${BINS[@]}"; do
  for b in crid cridctl; do
    [ -x "$BIN/$b" ] || { echo "pull-bench: $BIN/$b missing (cargo build --release)"; exit 1; }
  done
done

W=$(mktemp -d /tmp/pb.XXXXXX)   # short: socket paths
PIDS=()
stop_pid() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  set +e
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do stop_pid "${PIDS[$i]}"; done
  grep " $W/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_sock() { for _ in $(seq 300); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "pull-bench: $1 did not appear"; return 1; }

# ---- the image: an OCI layout built by hand (as scripts/bench.sh does)
L=$W/img/layout
mkdir -p "$L/blobs/sha256" "$W/img/bb/bin" "$W/img/bb/etc"
cp /bin/busybox "$W/img/bb/bin/busybox"
ln -sf busybox "$W/img/bb/bin/sh"
echo "root:x:0:0:root:/root:/bin/sh" > "$W/img/bb/etc/passwd"
tar -C "$W/img/bb" --owner=0 --group=0 --mtime=@0 -cf "$W/img/l0.tar" .
TARS=("$W/img/l0.tar")
for i in $(seq 1 "$LAYERS"); do
  mkdir -p "$W/img/d$i/data"
  head -c $((MIB * 1024 * 1024)) /dev/urandom > "$W/img/d$i/data/blob$i"
  tar -C "$W/img/d$i" --owner=0 --group=0 --mtime=@0 -cf "$W/img/l$i.tar" .
  rm -rf "$W/img/d$i"
  TARS+=("$W/img/l$i.tar")
done
diffs="" layers=""
for t in "${TARS[@]}"; do
  diff=$(sha256sum "$t" | cut -d' ' -f1)
  gzip -n -1 -c "$t" > "$t.gz"
  dg=$(sha256sum "$t.gz" | cut -d' ' -f1); mv "$t.gz" "$L/blobs/sha256/$dg"; rm -f "$t"
  diffs+="${diffs:+,}\"sha256:$diff\""
  layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dg\",\"size\":$(stat -c%s "$L/blobs/sha256/$dg")}"
done
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffs" > "$W/img/config"
cfg=$(sha256sum "$W/img/config" | cut -d' ' -f1); cp "$W/img/config" "$L/blobs/sha256/$cfg"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[%s]}' \
  "$cfg" "$(stat -c%s "$W/img/config")" "$layers" > "$W/img/manifest"
man=$(sha256sum "$W/img/manifest" | cut -d' ' -f1); cp "$W/img/manifest" "$L/blobs/sha256/$man"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
  "$man" "$(stat -c%s "$W/img/manifest")" > "$L/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$L/oci-layout"
echo "image: $((LAYERS + 1)) layers, $(du -sm "$L/blobs" | cut -f1) MB compressed"

# ---- registry
PORT=$(free_port)
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:%s\n' "$W" "$PORT" > "$W/registry.yml"
docker-registry serve "$W/registry.yml" </dev/null >"$W/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
IMAGE=127.0.0.1:$PORT/bench/big:v1
mkdir -p "$W/certs.d/127.0.0.1:$PORT"
printf 'server = "http://127.0.0.1:%s"\n[host."http://127.0.0.1:%s"]\n  capabilities = ["pull", "resolve"]\n' "$PORT" "$PORT" \
  > "$W/certs.d/127.0.0.1:$PORT/hosts.toml"
skopeo copy --quiet --dest-tls-verify=false "oci:$L:v1" "docker://$IMAGE"

# ---- rounds: fresh containerd + crid, one timed cold pull per build
declare -A TIMES
for r in $(seq 1 "$ROUNDS"); do
 for bi in "${!BINS[@]}"; do
  BIN=${BINS[$bi]}
  R=$W/r$r-$bi; mkdir -p "$R"
  cat > "$R/containerd.toml" <<TOML
version = 2
root = "$R/root"
state = "$R/state"
$( if [ "$VIA" = cri ]; then
  printf '[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "%s"\n  restrict_oom_score_adj = true\n' "$IMAGE"
  printf '  [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "%s"\n' "$W/certs.d"
else echo 'disabled_plugins = ["io.containerd.grpc.v1.cri"]'; fi )
[grpc]
  address = "$R/c.sock"
[ttrpc]
  address = "$R/c.ttrpc.sock"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""
TOML
  setsid containerd --config "$R/containerd.toml" </dev/null >"$R/containerd.log" 2>&1 &
  CPID=$!; PIDS+=("$CPID")
  wait_sock "$R/c.sock"
  : > "$R/crid.toml"
  "$BIN/crid" --config "$R/crid.toml" --listen "unix://$R/crid.sock" --containerd-address "$R/c.sock" \
    --root "$R/crid-root" --state "$R/crid-state" --cni-conf-dir "$R/net.d" --registry-config-path "$R/certs.d" \
    --log-level "${PULL_BENCH_LOG:-info}" </dev/null >"$R/crid.log" 2>&1 &
  DPID=$!; PIDS+=("$DPID")
  wait_sock "$R/crid.sock"
  # Let the start-up work (the locally built pause image) finish first.
  for _ in $(seq 100); do grep -q "built crid's pause image\|pulled" "$R/crid.log" && break; sleep 0.1; done
  sync; sleep 1
  cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
  C0=$(cpu "$CPID"); D0=$(cpu "$DPID")
  if [ -n "${PULL_BENCH_PERF:-}" ]; then
    perf record -q -F 999 -g -o "$W/perf-r$r-$bi-containerd.data" -p "$CPID" 2>/dev/null & PERF1=$!
    perf record -q -F 999 -g -o "$W/perf-r$r-$bi-crid.data" -p "$DPID" 2>/dev/null & PERF2=$!
    sleep 0.5
  fi
  t0=$(date +%s.%N)
  case "$VIA" in
    crid) "$BIN/cridctl" -r "unix://$R/crid.sock" pull "$IMAGE" >/dev/null ;;
    cri) "$BIN/cridctl" -r "unix://$R/c.sock" pull "$IMAGE" >/dev/null ;;
    ctr) ctr -a "$R/c.sock" -n k8s.io images pull --plain-http "$IMAGE" >/dev/null ;;
  esac
  t1=$(date +%s.%N)
  if [ -n "${PULL_BENCH_PERF:-}" ]; then kill -INT "$PERF1" "$PERF2"; wait "$PERF1" "$PERF2" || true; fi
  TICK=$(getconf CLK_TCK)
  printf 'round %d: CPU seconds during the pull: containerd %.2f, crid %.2f\n' "$r" \
    "$(echo "($(cpu "$CPID") - $C0) / $TICK" | bc -l)" "$(echo "($(cpu "$DPID") - $D0) / $TICK" | bc -l)"
  t=$(echo "$t1 - $t0" | bc -l)
  TIMES[$bi]+="$t "
  printf 'round %d, %s: %.2f s\n' "$r" "$BIN" "$t"
  if [ "$VIA" = crid ]; then
    # What the pull left resident in crid, once it is idle again.
    sleep 2
    printf 'round %d, %s: crid after the pull: %s, peak %s\n' "$r" "$BIN" \
      "$(awk '/^VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$DPID/status")" \
      "$(awk '/^VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$DPID/status")"
  fi
  stop_pid "$DPID"; stop_pid "$CPID"
  { grep " $R/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
  [ -n "${KEEP:-}" ] || rm -rf "$R"
 done
done
for bi in "${!BINS[@]}"; do
  printf '%s\n' ${TIMES[$bi]} | sort -n | awk -v b="${BINS[$bi]} ($VIA)" '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s: median of %d cold pulls: %.2f s\n", b, NR, m}'
done
