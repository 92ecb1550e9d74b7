#!/usr/bin/env bash
# `make run`: start crid against a real containerd and run a demo pod.
# - uses the containerd answering at $CONTAINERD_ADDRESS (default
#   /run/containerd/containerd.sock); if none answers, starts one on crid's own
#   paths (/var/lib/crid/containerd, /run/crid/containerd) with its CRI plugin
#   disabled — a system containerd is never disturbed (reusing one, it
#   installs crid's shim, the default handler's, in /usr/local/bin, where
#   that containerd finds it);
# - writes a demo CNI network to /etc/crid/net.d if that dir is empty;
# - builds a busybox image from Debian's busybox-static, serves it from a
#   registry on 127.0.0.1, and has crid pull it (no internet needed);
# - runs a pod with one container and prints what crid reports.
# Everything started here is recorded by PID under /run/crid/demo; stop it
# with `scripts/run.sh stop`.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release}
STATE=/run/crid/demo
# The demo pod's log directory (cridctl's, as kubelet names it); removed
# with the pod, as kubelet removes a deleted pod's logs.
POD_LOGS=/var/log/pods/default_demo_demo-uid
CONTAINERD_ADDRESS=${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}
SOCK=/run/crid/crid.sock
CNI_DIR=/etc/crid/net.d
mkdir -p "$STATE"

stop_pidfile() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

if [ "${1:-}" = stop ]; then
  if [ -f "$STATE/pod" ]; then "$BIN/cridctl" -r "unix://$SOCK" rmp "$(cat "$STATE/pod")" || true; rm -f "$STATE/pod"; fi
  rm -rf "$POD_LOGS"
  stop_pidfile "$STATE/crid.pid"
  stop_pidfile "$STATE/registry.pid"
  stop_pidfile "$STATE/containerd.pid"
  echo "stopped"
  exit 0
fi

answers() { ctr --address "$1" version >/dev/null 2>&1; }

# 1. containerd. crid's default runtime handler is its own shim,
# containerd-shim-crid-v1, which containerd looks up on its PATH.
SHIM=containerd-shim-crid-v1
if answers "$CONTAINERD_ADDRESS"; then
  echo "== using the containerd at $CONTAINERD_ADDRESS"
  if ! cmp -s "$BIN/$SHIM" "/usr/local/bin/$SHIM"; then
    install -m 0755 "$BIN/$SHIM" "/usr/local/bin/$SHIM"
    echo "== installed /usr/local/bin/$SHIM (crid's shim, on that containerd's PATH)"
  fi
else
  CONTAINERD_ADDRESS=/run/crid/containerd/containerd.sock
  if ! answers "$CONTAINERD_ADDRESS"; then
    echo "== starting containerd on crid's own paths ($CONTAINERD_ADDRESS)"
    mkdir -p /run/crid/containerd /var/lib/crid/containerd
    cat > /run/crid/containerd/config.toml <<TOML
version = 2
root = "/var/lib/crid/containerd"
state = "/run/crid/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CONTAINERD_ADDRESS"
[ttrpc]
  address = "$CONTAINERD_ADDRESS.ttrpc"
[debug]
  address = "$CONTAINERD_ADDRESS.debug"
TOML
    PATH="$(realpath "$BIN"):$PATH" setsid containerd --config /run/crid/containerd/config.toml </dev/null >/var/log/crid-containerd.log 2>&1 &
    echo $! > "$STATE/containerd.pid"
    for _ in $(seq 100); do answers "$CONTAINERD_ADDRESS" && break; sleep 0.1; done
    answers "$CONTAINERD_ADDRESS" || { echo "containerd did not start; see /var/log/crid-containerd.log"; exit 1; }
  fi
fi

# 2. CNI network for the demo
mkdir -p "$CNI_DIR"
if [ -z "$(ls -A "$CNI_DIR")" ]; then
  cat > "$CNI_DIR/10-crid-demo.conflist" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "crid-demo",
  "plugins": [
    {"type": "bridge", "bridge": "crid0", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.77.0/24"}]],
              "dataDir": "/var/lib/crid/cni-ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON
fi

# 3. crid
stop_pidfile "$STATE/crid.pid"
setsid "$BIN/crid" --containerd-address "$CONTAINERD_ADDRESS" --cni-conf-dir "$CNI_DIR" \
  --listen "unix://$SOCK" </dev/null >/var/log/crid.log 2>&1 &
echo $! > "$STATE/crid.pid"
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "crid did not start; see /var/log/crid.log"; cat /var/log/crid.log; exit 1; }
CTL=("$BIN/cridctl" -r "unix://$SOCK")
echo "== crid answers (Version)"; "${CTL[@]}" version
echo "== Status"; "${CTL[@]}" status

# 4. a busybox image in a registry on loopback
LAYOUT=$STATE/image
rm -rf "$LAYOUT" && mkdir -p "$LAYOUT/blobs/sha256" "$STATE/rootfs/bin" "$STATE/rootfs/etc"
cp /bin/busybox "$STATE/rootfs/bin/busybox"
for a in sh echo sleep cat ls date hostname ip; do ln -sf busybox "$STATE/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$STATE/rootfs/etc/passwd"
echo "root:x:0:" > "$STATE/rootfs/etc/group"
tar -C "$STATE/rootfs" --owner=0 --group=0 --mtime=@0 -cf "$STATE/layer.tar" .
DIFF=$(sha256sum "$STATE/layer.tar" | cut -d' ' -f1)
gzip -n -c "$STATE/layer.tar" > "$STATE/layer.tar.gz"
LAYER=$(sha256sum "$STATE/layer.tar.gz" | cut -d' ' -f1); cp "$STATE/layer.tar.gz" "$LAYOUT/blobs/sha256/$LAYER"
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$DIFF" > "$STATE/config.json"
CFG=$(sha256sum "$STATE/config.json" | cut -d' ' -f1); cp "$STATE/config.json" "$LAYOUT/blobs/sha256/$CFG"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
  "$CFG" "$(stat -c%s "$STATE/config.json")" "$LAYER" "$(stat -c%s "$STATE/layer.tar.gz")" > "$STATE/manifest.json"
MAN=$(sha256sum "$STATE/manifest.json" | cut -d' ' -f1); cp "$STATE/manifest.json" "$LAYOUT/blobs/sha256/$MAN"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"demo"}}]}' \
  "$MAN" "$(stat -c%s "$STATE/manifest.json")" > "$LAYOUT/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$LAYOUT/oci-layout"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
stop_pidfile "$STATE/registry.pid"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:%s\n' "$STATE" "$PORT" > "$STATE/registry.yml"
docker-registry serve "$STATE/registry.yml" </dev/null >/dev/null 2>&1 &
echo $! > "$STATE/registry.pid"
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
skopeo copy --quiet --dest-tls-verify=false "oci:$LAYOUT:demo" "docker://127.0.0.1:$PORT/busybox:demo"
IMAGE="127.0.0.1:$PORT/busybox:demo"
echo "== PullImage $IMAGE"; "${CTL[@]}" pull "$IMAGE"

# 5. a pod (an earlier demo pod goes first: its file, or by name when a
# `stop` found crid down and could not remove it)
if [ -f "$STATE/pod" ]; then "${CTL[@]}" rmp "$(cat "$STATE/pod")" || true; fi
for old in $("${CTL[@]}" pods | python3 -c 'import json,sys; print(" ".join(p["id"] for p in json.load(sys.stdin).get("items", []) if p["metadata"]["name"] == "demo" and p["metadata"]["uid"] == "demo-uid"))'); do
  "${CTL[@]}" rmp "$old"
done
rm -rf "$POD_LOGS"
echo "== RunPodSandbox + CreateContainer + StartContainer"
OUT=$("${CTL[@]}" run demo "$IMAGE" -- /bin/sh -c 'while true; do echo "hello from a crid pod ($(hostname))"; sleep 2; done')
echo "$OUT"
python3 -c 'import json,sys; print(json.load(sys.stdin)["pod_sandbox_id"])' <<<"$OUT" > "$STATE/pod"
LOG=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["log"])' <<<"$OUT")
sleep 3
echo "== ListPodSandbox"; "${CTL[@]}" pods
echo "== ListContainers"; "${CTL[@]}" ps
echo "== container log ($LOG)"; tail -n 3 "$LOG" || true
cat <<MSG

crid is running (pid $(cat "$STATE/crid.pid"), log /var/log/crid.log) on unix://$SOCK
  crictl:  crictl --runtime-endpoint unix://$SOCK ps
  kubelet: --container-runtime-endpoint=unix://$SOCK
Stop the demo (pod, crid, registry, and containerd if this script started it):
  scripts/run.sh stop
MSG
