#!/usr/bin/env bash
# Configure and build damc: build/ (release with debug info) and, on request,
#   --asan   build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer)
#   --fuzz   build-fuzz/ (clang: libFuzzer harnesses of tests/fuzz/ with ASan +
#            UBSan, in build-fuzz/fuzz/; CC=clang-14, else clang; FUZZ_CC overrides)
# Flags combine (scripts/build.sh --asan --fuzz); the builds run in that order.
set -euo pipefail
cd "$(dirname "$0")/.."
asan=0; fuzz=0
for a in "$@"; do
  case $a in
    --asan) asan=1 ;;
    --fuzz) fuzz=1 ;;
    *) echo "usage: scripts/build.sh [--asan] [--fuzz]" >&2; exit 2 ;;
  esac
done
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
if [ $asan -eq 1 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDAM_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$(nproc)"
fi
if [ $fuzz -eq 1 ]; then
  cc=${FUZZ_CC:-$(command -v clang-14 || command -v clang || true)}
  if [ -z "$cc" ]; then
    echo "scripts/build.sh: --fuzz needs clang (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
  fi
  CC=$cc cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDAM_FUZZ=ON >/dev/null
  cmake --build build-fuzz --target fuzz -j"$(nproc)"
fi
