#!/usr/bin/env bash
# Set up a fresh Debian bookworm machine for Pulmo: software Vulkan (lavapipe, Mesa from
# bookworm-backports, because bookworm's own Mesa is too old for Dawn), the Debian tools the tests
# use, and the npm dependencies.
# Idempotent: running it twice is harmless. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

have_backports_mesa() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q 'bpo12'
}

add_backports_suite() {
  # Reuse the URI apt already uses for bookworm; never hard-code a registry host.
  local target=/etc/apt/sources.list.d/pulmo-backports.sources
  [ -f "$target" ] && return 0
  if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then return 0; fi
  local deb822=/etc/apt/sources.list.d/debian.sources
  if [ -f "$deb822" ]; then
    # First stanza whose Suites line names plain bookworm: copy it with the suite swapped.
    awk 'BEGIN{RS=""; FS="\n"} /Suites:[^\n]*bookworm( |$|\n)/ && !done {print; done=1}' "$deb822" \
      | grep -v '^#' \
      | sed -E 's/^Suites:.*/Suites: bookworm-backports/' | $SUDO tee "$target" >/dev/null
  elif [ -f /etc/apt/sources.list ]; then
    local line
    line=$(grep -E '^deb[[:space:]]+[^[:space:]]+[[:space:]]+bookworm[[:space:]]' /etc/apt/sources.list | head -1)
    [ -n "$line" ] || { echo "setup: no bookworm entry in /etc/apt/sources.list to copy" >&2; exit 1; }
    echo "$line" | sed -E 's/[[:space:]]bookworm[[:space:]]/ bookworm-backports /' \
      | $SUDO tee /etc/apt/sources.list.d/pulmo-backports.list >/dev/null
  else
    echo "setup: cannot find an apt source to copy for bookworm-backports" >&2; exit 1
  fi
}

# Debian packages the tests use: dciodvfy (dicom3tools) validates the RTSTRUCTs we write, pydicom
# reads them back and ships the CT_small/rtstruct test files, Chromium runs the browser tests;
# dcmtk's dcmdjpeg gives scripts/dicom_expected.py an independent JPEG Lossless decoder.
TOOLS=(dicom3tools python3-pydicom chromium dcmtk)
missing_tools() {
  local p
  for p in "${TOOLS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

export DEBIAN_FRONTEND=noninteractive
updated=0
if ! have_backports_mesa; then
  add_backports_suite
  $SUDO apt-get update -q; updated=1
  $SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers
fi
mapfile -t need < <(missing_tools)
if [ "${#need[@]}" -gt 0 ]; then
  [ "$updated" = 1 ] || $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${need[@]}"
fi

# onnxruntime-node (a bench peer) would fetch CUDA binaries at install: its CPU build is bundled, skip that.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
echo "setup: done ($(dpkg-query -W -f='mesa-vulkan-drivers ${Version}' mesa-vulkan-drivers))"
