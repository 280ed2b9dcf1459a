#!/usr/bin/env bash
# Installs what flyCes needs on a Debian 12 machine, as root: the container runtime and
# network plugins, the tools that build and serve test images, and the npm dependencies,
# then builds the project. Safe to run again.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: run as root (flyCes creates network namespaces and containers)" >&2
  exit 1
fi

packages=(
  runc conmon iproute2 nftables util-linux socat busybox-static
  skopeo umoci attr
  docker-registry apache2-utils bsdutils etcd-server
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v kubectl >/dev/null; then
  echo "setup: kubectl is not installed; the flyces command (flyces apply/get/logs/delete) works without it" >&2
fi

cd "$here"
npm ci --no-audit --no-fund
npm run build
echo "setup: done" >&2
