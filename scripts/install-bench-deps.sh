#!/usr/bin/env bash
# Peers the benchmark compares crid with, beyond scripts/install-deps.sh:
# dockerd (docker.io). Idempotent; run as root.
set -euo pipefail
"$(dirname "$0")/install-deps.sh"
if ! command -v dockerd >/dev/null 2>&1; then
  echo "install-bench-deps: installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends docker.io </dev/null >/dev/null
fi
