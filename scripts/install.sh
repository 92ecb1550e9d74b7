#!/usr/bin/env bash
# `make install` / `make uninstall`: put crid on a node, or take it off.
#   scripts/install.sh install|uninstall
# Knobs (environment, as the Makefile passes them):
#   BIN_DIR     where the built binaries are (default target/release)
#   PREFIX      /usr/local by default: binaries in $PREFIX/bin
#   DESTDIR     staging root prepended to every path (packages, tests)
#   UNIT_DIR    systemd unit dir (default $PREFIX/lib/systemd/system; both
#               /usr/local/lib/... and /usr/lib/... are on systemd's path)
#   SYSCONFDIR  /etc by default: crid reads $SYSCONFDIR/crid/config.toml
# Installs crid, crid-logger (crid starts it from its own directory),
# cridctl and containerd-shim-crid-v1 (crid's own shim, runtime type
# io.containerd.crid.v1, which containerd finds on its PATH); the unit, its ExecStart pointing at the installed crid; and the
# default config, only when none is there (an operator's is never
# overwritten, and uninstall leaves it). crid-bench is a development tool
# and is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN_DIR=${BIN_DIR:-target/release}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
UNIT_DIR=${UNIT_DIR:-$PREFIX/lib/systemd/system}
SYSCONFDIR=${SYSCONFDIR:-/etc}
BINARIES=(crid crid-logger cridctl containerd-shim-crid-v1)

bindir=$DESTDIR$PREFIX/bin
unit=$DESTDIR$UNIT_DIR/crid.service
config=$DESTDIR$SYSCONFDIR/crid/config.toml

case "${1:-}" in
install)
  for b in "${BINARIES[@]}"; do
    [ -x "$BIN_DIR/$b" ] || { echo "install: $BIN_DIR/$b missing; build first (make release)" >&2; exit 1; }
  done
  install -d "$bindir" "$(dirname "$unit")"
  for b in "${BINARIES[@]}"; do
    install -m 0755 "$BIN_DIR/$b" "$bindir/$b"
    echo "installed $bindir/$b"
  done
  sed -e "s|^ExecStart=/usr/local/bin/crid |ExecStart=$PREFIX/bin/crid |" \
      -e "s|--config /etc/crid/config.toml|--config $SYSCONFDIR/crid/config.toml|" \
      contrib/systemd/crid.service > "$unit.tmp"
  chmod 0644 "$unit.tmp"
  mv "$unit.tmp" "$unit"
  echo "installed $unit"
  if [ -e "$config" ]; then
    echo "kept $config (already there)"
  else
    install -d -m 0755 "$(dirname "$config")"
    "$BIN_DIR/crid" config default > "$config.tmp"
    chmod 0644 "$config.tmp"
    mv "$config.tmp" "$config"
    echo "installed $config (crid's defaults)"
  fi
  if [ -z "$DESTDIR" ]; then
    echo "next: systemctl daemon-reload; crid check; systemctl enable --now crid"
  fi
  ;;
uninstall)
  for b in "${BINARIES[@]}"; do
    rm -f "$bindir/$b"
  done
  rm -f "$unit"
  echo "removed crid's binaries from $bindir and $unit; left $(dirname "$config") and crid's data (/var/lib/crid)"
  ;;
*)
  echo "usage: $0 install|uninstall" >&2
  exit 2
  ;;
esac
