#!/usr/bin/env bash
# Install what crid's build, demo and tests need, from Debian's packages and
# crates.io only. Idempotent; run as root. Non-interactive.
set -euo pipefail

PKGS=(containerd runc containernetworking-plugins iptables busybox-static
      docker-registry skopeo crun protobuf-compiler iproute2 apache2-utils openssl
      ca-certificates gcc libc6-dev make curl docker.io)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # docker.io (for tests/migrate_docker.rs, which starts a dockerd of its
  # own) would start a system dockerd, with its iptables rules and bridge:
  # keep package services from starting during this install.
  if [[ " ${missing[*]} " == *" docker.io "* && ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "install-deps: add \$HOME/.cargo/bin to PATH" >&2
  else
    echo "install-deps: cargo (Rust toolchain) is required" >&2
    exit 1
  fi
fi
