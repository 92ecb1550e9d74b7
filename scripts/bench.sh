#!/usr/bin/env bash
# make bench: compare crid, containerd's CRI plugin and the docker path
# (dockershim's steps) on this machine. Starts one containerd (CRI plugin on,
# restrict_oom_score_adj), crid (release build, own containerd namespace) and
# dockerd (on the same containerd), all on their own paths under a temp dir,
# builds the images locally, runs crid-bench and writes BENCHMARKS.md + bench/.
# Everything started here is stopped by PID on exit.
#
#   BENCH_WORKLOADS=start,conc,stop,relist,exec,pull (default: all; relist,
#     exec and stop start their N pods first without measuring the starts)
#   BENCH_N=100 (pods per system), BENCH_CONC=10,50, BENCH_PULL_ROUNDS=3,
#   BENCH_RELIST=200, BENCH_EXEC=50, BENCH_DOCKER=1 (0: skip the docker path)
#   BENCH_CRID_PAUSE=1 (0: skip crid-pause, a second crid with
#     drop_pause_container = false, i.e. a pause container for every pod as
#     the CRI plugin runs them; it takes part in every workload but pull)
#   BENCH_CRID_RUNC=1 (0: skip crid-runc, a third crid whose default runtime
#     handler is containerd's runc shim with a crid-logger per container,
#     crid's default before its own shim; no pulls)
#   BENCH_OUT=DIR: write DIR/BENCHMARKS.md and DIR/bench/ (default: the
#     repository root, i.e. the committed results; use a temp dir for trials)
#   KEEP=1: keep the work dir (logs of containerd, crid, dockerd)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BENCH_BIN:-$ROOT/target/release}
ALL_WORKLOADS=start,conc,stop,relist,exec,pull
WORKLOADS=${BENCH_WORKLOADS:-$ALL_WORKLOADS}
for w in ${WORKLOADS//,/ }; do
  case ",$ALL_WORKLOADS," in *",$w,"*) ;; *) echo "bench: unknown workload '$w' (BENCH_WORKLOADS: $ALL_WORKLOADS)"; exit 1;; esac
done
has() { [[ ",$WORKLOADS," == *",$1,"* ]]; }
OUT=${BENCH_OUT:-$ROOT}
case "$OUT" in *.md) echo "bench: BENCH_OUT is a directory (BENCHMARKS.md and bench/ are written into it)"; exit 1;; esac
mkdir -p "$OUT/bench"
OUT=$(cd "$OUT" && pwd)
N=${BENCH_N:-100}
CONC=${BENCH_CONC:-10,50}
PULL_ROUNDS=${BENCH_PULL_ROUNDS:-3}
RELIST=${BENCH_RELIST:-200}
EXEC=${BENCH_EXEC:-50}
WITH_DOCKER=${BENCH_DOCKER:-1}
WITH_CRID_PAUSE=${BENCH_CRID_PAUSE:-1}
WITH_CRID_RUNC=${BENCH_CRID_RUNC:-1}
[ "$(id -u)" = 0 ] || { echo "bench: run as root"; exit 1; }
"$ROOT/scripts/install-bench-deps.sh"
for b in crid crid-logger cridctl crid-bench containerd-shim-crid-v1; do
  [ -x "$BIN/$b" ] || { echo "bench: $BIN/$b missing; run make release"; exit 1; }
done

W=$(mktemp -d /tmp/cb.XXXXXX)   # short: socket paths
PIDS=()
BRIDGES=(cridb0 cridb1 cridb2 cridb3 cridb4)
cleanup() {
  set +e
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill "${PIDS[$i]}" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  # shims of the containerd started here and crid's log processes (their
  # command lines name the work dir), then what still runs in the pods'
  # cgroups: after an interrupted run the pods are still up
  for d in /proc/[0-9]*; do
    if { tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null | grep -q -e "-address $W/" -e "crid-logger .*$W/"; then kill -9 "${d#/proc/}" 2>/dev/null; fi
  done
  find /sys/fs/cgroup -path '*/bench-kubepods*' -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u |
    while read -r p; do kill -9 "$p" 2>/dev/null; done
  sleep 0.5
  grep " $W/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
  for b in "${BRIDGES[@]}"; do ip link del "$b" 2>/dev/null; done
  # the pods' cgroup parents (crates/crid-bench/src/backend.rs pod_cgroup), leaves first
  find /sys/fs/cgroup -maxdepth 5 -depth -type d -path '*/bench-kubepods*' -exec rmdir {} + 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_sock() { for _ in $(seq 300); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "bench: $1 did not appear"; return 1; }

# ---- images: OCI layouts built by hand, pushed to a loopback registry
# oci_image LAYOUT TAG ENTRYPOINT_JSON CMD_JSON LAYER.tar...
oci_image() {
  local layout=$1 tag=$2 entry=$3 cmd=$4; shift 4
  mkdir -p "$layout/blobs/sha256"
  local diffs="" layers="" t diff dg
  for t in "$@"; do
    diff=$(sha256sum "$t" | cut -d' ' -f1)
    gzip -n -1 -c "$t" > "$t.gz"
    dg=$(sha256sum "$t.gz" | cut -d' ' -f1); cp "$t.gz" "$layout/blobs/sha256/$dg"
    echo "$dg" >> "$layout.layers"; echo "$diff" >> "$layout.diffs"
    diffs+="${diffs:+,}\"sha256:$diff\""
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dg\",\"size\":$(stat -c%s "$t.gz")}"
  done
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Cmd":%s,"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$entry" "$cmd" "$diffs" > "$layout.config"
  local cfg; cfg=$(sha256sum "$layout.config" | cut -d' ' -f1); cp "$layout.config" "$layout/blobs/sha256/$cfg"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[%s]}' \
    "$cfg" "$(stat -c%s "$layout.config")" "$layers" > "$layout.manifest"
  local man; man=$(sha256sum "$layout.manifest" | cut -d' ' -f1); cp "$layout.manifest" "$layout/blobs/sha256/$man"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$man" "$(stat -c%s "$layout.manifest")" "$tag" > "$layout/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
}
echo "== building images"
mkdir -p "$W/img/bb/bin" "$W/img/bb/etc"
cp /bin/busybox "$W/img/bb/bin/busybox"
for a in sh echo sleep cat ls true date hostname; do ln -sf busybox "$W/img/bb/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$W/img/bb/etc/passwd"; echo "root:x:0:" > "$W/img/bb/etc/group"
tar -C "$W/img/bb" --owner=0 --group=0 --mtime=@0 -cf "$W/img/busybox.tar" .
# The pause image of every system: crid's built-in one, layer for layer.
"$BIN/cridctl" pause-layer "$W/img/pause.tar"
oci_image "$W/img/oci-busybox" v1 '["/bin/sh"]' 'null' "$W/img/busybox.tar"
oci_image "$W/img/oci-pause" v1 '["/pause"]' 'null' "$W/img/pause.tar"
IMAGES=(busybox pause)
if has pull; then
  # ~100 MB in 5 layers of random data (incompressible) on a base layer of
  # its own (busybox + a random id): no layer is shared with the pod images,
  # so a cold pull downloads all six.
  cp -a "$W/img/bb" "$W/img/bigbase"
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$W/img/bigbase/etc/bench-pull-id"
  tar -C "$W/img/bigbase" --owner=0 --group=0 --mtime=@0 -cf "$W/img/bigbase.tar" .
  BIG_LAYERS=("$W/img/bigbase.tar")
  for i in 1 2 3 4 5; do
    mkdir -p "$W/img/big$i/data"
    head -c $((20 * 1024 * 1024)) /dev/urandom > "$W/img/big$i/data/blob$i"
    tar -C "$W/img/big$i" --owner=0 --group=0 --mtime=@0 -cf "$W/img/big$i.tar" .
    BIG_LAYERS+=("$W/img/big$i.tar")
  done
  oci_image "$W/img/oci-big" v1 '["/bin/sh"]' 'null' "${BIG_LAYERS[@]}"
  IMAGES+=(big)
fi

PORT=$(free_port)
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:%s\n' "$W" "$PORT" > "$W/registry.yml"
docker-registry serve "$W/registry.yml" </dev/null >"$W/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
REG=127.0.0.1:$PORT
for n in "${IMAGES[@]}"; do
  skopeo copy --quiet --dest-tls-verify=false "oci:$W/img/oci-$n:v1" "docker://$REG/bench/$n:v1"
done
mkdir -p "$W/certs.d/$REG"
printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$REG" "$REG" > "$W/certs.d/$REG/hosts.toml"

# ---- CNI: one bridge network per system
cni_conf() { # DIR BRIDGE SUBNET
  mkdir -p "$1"
  cat > "$1/10-bench.conflist" <<JSON
{"cniVersion":"1.0.0","name":"$2","plugins":[
 {"type":"bridge","bridge":"$2","isGateway":true,"ipMasq":false,
  "ipam":{"type":"host-local","ranges":[[{"subnet":"$3"}]],"dataDir":"$W/ipam"}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
JSON
}
cni_conf "$W/cni-crid" cridb0 10.202.0.0/18
cni_conf "$W/cni-cri" cridb1 10.202.64.0/18
cni_conf "$W/cni-docker" cridb2 10.202.128.0/18
cni_conf "$W/cni-crid-p" cridb3 10.202.192.0/18
cni_conf "$W/cni-crid-r" cridb4 10.203.0.0/18

# ---- containerd with its CRI plugin
CTRD_SOCK=$W/ctrd.sock
cat > "$W/containerd.toml" <<TOML
version = 2
root = "$W/ctrd/root"
state = "$W/ctrd/state"
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$W/ctrd.ttrpc.sock"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REG/bench/pause:v1"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni-cri"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$W/certs.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
TOML
echo "== containerd (CRI plugin on) at $CTRD_SOCK"
# crid's shim (containerd-shim-crid-v1) is found on containerd's PATH.
PATH="$BIN:$PATH" setsid containerd --config "$W/containerd.toml" </dev/null >"$W/containerd.log" 2>&1 &
CTRD_PID=$!; PIDS+=($CTRD_PID)
wait_sock "$CTRD_SOCK"

echo "== crid (its default configuration: crid's own shim)"
mkdir -p "$W/logs"
# The systems "crid" and "crid-pause" run crid's default runtime handler,
# its own shim; "crid-runc" is crid on containerd's runc shim (with a
# crid-logger per container).
: > "$W/crid.toml"
setsid "$BIN/crid" --config "$W/crid.toml" --listen "unix://$W/crid.sock" --root "$W/crid/root" --state "$W/crid/state" \
  --containerd-address "$CTRD_SOCK" --containerd-namespace crid-bench \
  --cni-conf-dir "$W/cni-crid" --cni-bin-dir /usr/lib/cni --sandbox-image "$REG/bench/pause:v1" \
  --registry-config-path "$W/certs.d" --stream-address 127.0.0.1:0 \
  --log-level 'info,crid::phases=debug,crid::server=debug' </dev/null >"$W/crid.out" 2>"$W/crid.log" &
CRID_PID=$!; PIDS+=($CRID_PID)
wait_sock "$W/crid.sock"

# A second or third crid: KEY (its files are $W/crid-KEY.*), containerd
# namespace, config TOML, log level (default info). Sets EXTRA_PID.
start_extra_crid() {
  printf '%b' "$3" > "$W/crid-$1.toml"
  setsid "$BIN/crid" --config "$W/crid-$1.toml" --listen "unix://$W/crid-$1.sock" \
    --root "$W/crid-$1/root" --state "$W/crid-$1/state" \
    --containerd-address "$CTRD_SOCK" --containerd-namespace "$2" \
    --cni-conf-dir "$W/cni-crid-$1" --cni-bin-dir /usr/lib/cni --sandbox-image "$REG/bench/pause:v1" \
    --registry-config-path "$W/certs.d" --stream-address 127.0.0.1:0 \
    --log-level "${4:-info}" </dev/null >"$W/crid-$1.out" 2>"$W/crid-$1.log" &
  EXTRA_PID=$!; PIDS+=($EXTRA_PID)
  wait_sock "$W/crid-$1.sock"
  CRI_ENDPOINTS+=("unix://$W/crid-$1.sock")
}

CRID_PAUSE_ARGS=()
CRI_ENDPOINTS=("unix://$W/crid.sock" "unix://$CTRD_SOCK")
if [ "$WITH_CRID_PAUSE" = 1 ]; then
  echo "== crid with drop_pause_container = false"
  start_extra_crid p crid-bench-pause "drop_pause_container = false\\n"
  CRID_PAUSE_ARGS=(--crid-pause "unix://$W/crid-p.sock" --crid-pause-pid "$EXTRA_PID"
                   --crid-pause-namespace crid-bench-pause)
fi

CRID_RUNC_ARGS=()
if [ "$WITH_CRID_RUNC" = 1 ]; then
  echo "== crid on containerd's runc shim"
  start_extra_crid r crid-bench-runc '[containerd]\ndefault_runtime = "runc"\n' 'info,crid::phases=debug'
  CRID_RUNC_ARGS=(--crid-runc "unix://$W/crid-r.sock" --crid-runc-pid "$EXTRA_PID"
                  --crid-runc-namespace crid-bench-runc --crid-runc-log "$W/crid-r.log")
fi

DOCKER_ARGS=()
if [ "$WITH_DOCKER" = 1 ]; then
  echo "== dockerd (on the same containerd)"
  setsid dockerd --data-root "$W/docker/data" --exec-root "$W/dx" --host "unix://$W/docker.sock" \
    --pidfile "$W/docker.pid" --bridge none --iptables=false --ip-masq=false --userland-proxy=false \
    --containerd "$CTRD_SOCK" --storage-driver overlay2 </dev/null >"$W/dockerd.log" 2>&1 &
  DOCKERD_PID=$!; PIDS+=($DOCKERD_PID)
  wait_sock "$W/docker.sock"
  D=(docker -H "unix://$W/docker.sock")
  for _ in $(seq 100); do "${D[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
  "${D[@]}" import --change 'ENTRYPOINT ["/pause"]' "$W/img/pause.tar" bench/pause:v1 >/dev/null
  "${D[@]}" import --change 'ENV PATH=/bin' "$W/img/busybox.tar" bench/busybox:v1 >/dev/null
  DOCKER_ARGS=(--docker "$W/docker.sock" --dockerd-pid "$DOCKERD_PID" --cni-conf-dir "$W/cni-docker"
               --cni-cache-dir "$W/cni-cache-docker" --docker-pull)
fi

echo "== images present on every CRI endpoint"
for ep in "${CRI_ENDPOINTS[@]}"; do
  for n in busybox pause; do "$BIN/cridctl" -r "$ep" pull "$REG/bench/$n:v1" >/dev/null; done
done

# ---- machine, versions, command
workload_text() {
  local parts=()
  if has start; then parts+=("batches of 10 sequential pod starts rotate through the systems until each has $N pods")
  elif has relist || has exec || has stop; then parts+=("$N pods per system started first (starts not measured)"); fi
  has relist && parts+=("relist ($RELIST rounds) at $N pods")
  has exec && parts+=("ExecSync ($EXEC rounds) at $N pods")
  if has stop; then parts+=("stop + remove in rotating batches")
  elif has start || has relist || has exec; then parts+=("pods removed afterwards (not measured)"); fi
  has conc && parts+=("concurrent starts ($CONC pods, 2 rounds each)")
  has pull && parts+=("pulls of a ~100 MB image (6 layers, 5 × 20 MiB random) from a registry on 127.0.0.1, one untimed warm-up round, then $PULL_ROUNDS rounds, each cold: after each RemoveImage / \`docker rmi\` a synchronous containerd GC, and no layer of the image may be left in any containerd namespace before a pull (dockerd: none reported as already present)")
  local IFS=';'; local t="${parts[*]}"; echo "${t//;/; }"
}
{
  echo "Generated by \`make bench\` (\`scripts/bench.sh\` → \`crid-bench\`) on $(date -u +%Y-%m-%dT%H:%MZ)."
  echo
  echo "## Setup"
  echo
  SEL=""; [ "$WORKLOADS" = "$ALL_WORKLOADS" ] || SEL="BENCH_WORKLOADS=$WORKLOADS "
  echo "- Command: \`${SEL}BENCH_N=$N BENCH_CONC=$CONC BENCH_PULL_ROUNDS=$PULL_ROUNDS BENCH_RELIST=$RELIST BENCH_EXEC=$EXEC make bench\`"
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') × $(nproc) cores; memory: $(free -h | awk '/^Mem:/{print $2}') total, $(free -h | awk '/^Mem:/{print $7}') available at start; kernel $(uname -r)"
  echo "- Load at start (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg) — the machine is shared with other builds, so absolute numbers are noisy; ratios come from interleaved rounds."
  echo "- containerd: $(containerd --version | awk '{print $3}'); runc: $(runc --version | head -1 | awk '{print $3}'); CNI plugins: $(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo unknown); dockerd: $(dockerd --version 2>/dev/null | awk '{print $3}' | tr -d ,); crid: $(grep -m1 '^version' "$ROOT/Cargo.toml" | cut -d'"' -f2) ($(git -C "$ROOT" rev-parse --short HEAD), release build)"
  echo "- One containerd for every system (CRI plugin with \`restrict_oom_score_adj = true\`, overlayfs, runc v2 shim); crid in containerd namespace \`crid-bench\` (\`crid-bench-pause\` for crid-pause), the CRI plugin in \`k8s.io\`, dockerd in \`moby\`. Each system has its own CNI bridge (bridge + host-local + portmap, 10.202.0.0/16 split four ways)."
  echo "- Client: crid-bench, a tonic gRPC client on one thread (tokio \`current_thread\`), one connection per CRI endpoint (the Docker Engine API over its unix socket for the docker path)."
  echo "- Pod: a sandbox (its pause image, where a pause container runs, is crid's built-in one, pushed to the registry: the same image for every system) + one busybox container running \`sleep 3600\`, image present, sent as kubelet sends a BestEffort pod without a securityContext: pod cgroup parent \`/bench-kubepods/besteffort/pod<uid>\`, sandbox with RuntimeDefault seccomp (kubelet forces it for the pause process), container Unconfined with cpu shares 2, oom_score_adj 1000, its own pid namespace and kubelet's masked/read-only /proc paths; the docker path gets the same cgroup parent, shares, oom_score_adj and seccomp options. Docker path = dockershim's steps: pause container with \`NetworkMode=none\`, CNI ADD by the client on \`/proc/<pid>/ns/net\`, app container with \`NetworkMode=container:<pause>\` / \`IpcMode=container:<pause>\`; teardown in reverse with CNI DEL."
  echo "- Pause containers: kubelet sends this pod with a PID namespace per container (no \`shareProcessNamespace\`) and no sysctls, so \`crid\` (its default configuration, \`drop_pause_container = true\`, as CRI-O's default \`drop_infra_ctr\`) runs it without a pause container: crid pins the pod's network, IPC and UTS namespaces itself and the app container starts the pod's shim. The CRI plugin and the docker path run a pause container per pod."
  echo "- \`crid\` runs its default runtime handler, crid's own shim (\`containerd-shim-crid-v1\`, runtime type \`io.containerd.crid.v1\`): one Rust shim per pod that writes the CRI logs itself, no crid-logger processes."
  if [ "$WITH_CRID_RUNC" = 1 ]; then
    echo "- \`crid-runc\`: a third crid (same build, containerd namespace \`crid-bench-runc\`, own bridge 10.203.0.0/18) whose default runtime handler is containerd's runc shim (\`containerd-shim-runc-v2\`, Go), with a crid-logger process per container writing the CRI logs: crid's default before its own shim. Like \`crid\`, no pause container."
  fi
  if [ "$WITH_CRID_PAUSE" = 1 ]; then
    echo "- \`crid-pause\`: a second crid (same build, containerd namespace \`crid-bench-pause\`, own bridge) with \`drop_pause_container = false\`, so it runs a pause container per pod as the CRI plugin does: the same work in containerd, shim and runc, crid's code around it."
  fi
  echo "- Workloads ($WORKLOADS), interleaved: $(workload_text)."
  echo
} > "$W/preamble.md"

PULL_ARGS=()
if has pull; then
  # crid-bench collects garbage in containerd before every pull and checks
  # that these layers (content, blob files, snapshots) are gone everywhere.
  PULL_ARGS=(--pull-image "$REG/bench/big:v1" --pull-rounds "$PULL_ROUNDS" --containerd-root "$W/ctrd/root")
  while read -r dg; do PULL_ARGS+=(--pull-layer "sha256:$dg"); done < "$W/img/oci-big.layers"
  while read -r d; do PULL_ARGS+=(--pull-diff-id "sha256:$d"); done < "$W/img/oci-big.diffs"
fi

echo "== crid-bench ($WORKLOADS; $N pods per system) → $OUT"
cd "$ROOT"
EPI=()
# The hand-written analysis belongs to the committed run only.
[ "$OUT" = "$ROOT" ] && [ -f "$ROOT/bench/ANALYSIS.md" ] && EPI=(--epilogue "$ROOT/bench/ANALYSIS.md")
"$BIN/crid-bench" --crid "unix://$W/crid.sock" --crid-pid "$CRID_PID" --crid-log "$W/crid.log" \
  --crid-namespace crid-bench \
  --containerd-cri "unix://$CTRD_SOCK" --containerd-pid "$CTRD_PID" --containerd-address "$CTRD_SOCK" \
  "${DOCKER_ARGS[@]}" "${CRID_PAUSE_ARGS[@]}" "${CRID_RUNC_ARGS[@]}" \
  --image "$REG/bench/busybox:v1" --log-root "$W/logs" \
  --workloads "$WORKLOADS" \
  --pods "$N" --concurrency "$CONC" --relist-iterations "$RELIST" --exec-iterations "$EXEC" \
  "${PULL_ARGS[@]}" \
  --preamble "$W/preamble.md" "${EPI[@]}" --out "$OUT/BENCHMARKS.md" --plot-dir "$OUT/bench" \
  --raw "$OUT/bench/raw.json"
echo "== done: $OUT/BENCHMARKS.md, $OUT/bench/"
