#!/usr/bin/env bash
# Install every Debian 12 package damc needs (run as root, or with sudo available).
# clang-14 and libclang-rt-14-dev are for the libFuzzer build (scripts/build.sh --fuzz);
# libopenblas-dev for the OpenBLAS baseline of bench/et_scale.sh.
set -euo pipefail
PKGS=(build-essential cmake pkg-config re2c bison llvm-16-dev liblua5.4-dev zlib1g-dev
      ngspice gnuplot perl python3 valgrind libopenblas-dev clang-14 libclang-rt-14-dev libopenmpi-dev openmpi-bin)
need=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
