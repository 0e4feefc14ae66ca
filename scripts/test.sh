#!/usr/bin/env bash
# Set up, build (normal + sanitizer) and run every test under prove.
#   scripts/test.sh            # setup + build + all tests, both builds; then, when
#                              # clang is there, the libFuzzer build and tests/libfuzz.t
#   scripts/test.sh --quick    # no setup, normal build only
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0; [ "${1:-}" = "--quick" ] && quick=1
fuzz=0
if [ $quick -eq 0 ]; then
  scripts/setup.sh
  if command -v clang-14 >/dev/null 2>&1 || command -v clang >/dev/null 2>&1; then fuzz=1; fi
  if [ $fuzz -eq 1 ]; then scripts/build.sh --asan --fuzz; else scripts/build.sh --asan; fi
else
  scripts/build.sh
fi
status=0
shopt -s nullglob
# The JIT's object cache (docs/cli.md) of this test run: fresh, and not the user's.
DAMC_CACHE_DIR=$(mktemp -d); export DAMC_CACHE_DIR
trap 'rm -rf "$DAMC_CACHE_DIR"' EXIT
run() {
  local b=$1
  local tests=("$b"/tests/t_*)
  for t in tests/*.t; do [ "$t" = tests/libfuzz.t ] || tests+=("$t"); done
  echo "== ${#tests[@]} test programs against $b"
  DAM_BUILD="$PWD/$b" DAMC="$PWD/$b/damc" DAM_SRC="$PWD" prove -j2 --exec '' "${tests[@]}" || status=1
}
run build
if [ $quick -eq 0 ]; then
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run build-asan
fi
if [ $fuzz -eq 1 ]; then
  echo "== libFuzzer harnesses of build-fuzz (tests/libfuzz.t)"
  DAM_FUZZ_BUILD="$PWD/build-fuzz" prove -v --exec '' tests/libfuzz.t || status=1
fi
exit $status
