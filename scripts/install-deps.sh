#!/usr/bin/env bash
# @file scripts/install-deps.sh @brief Installs Ember's system packages with apt-get (idempotent; quiet when all are present).
# Usage: scripts/install-deps.sh [EXTRA_PACKAGE...]   (extras: what one entry point needs beyond the build,
# e.g. `make train` adds gnuplot-nox for its plot)
set -euo pipefail
PKGS=(cmake make ninja-build g++ catch2 libopenblas-openmp-dev libboost-context-dev zlib1g-dev nlohmann-json3-dev libcli11-dev
      libbenchmark-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist fortunes "$@")
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
