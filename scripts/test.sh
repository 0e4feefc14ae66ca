#!/usr/bin/env bash
# Set up, build (normal + sanitizer) and run every test under prove.
#   scripts/test.sh            # setup + build + all tests, both builds
#   scripts/test.sh --quick    # no setup, normal build only
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0; [ "${1:-}" = "--quick" ] && quick=1
if [ $quick -eq 0 ]; then scripts/setup.sh; scripts/build.sh --asan; else scripts/build.sh; fi
status=0
shopt -s nullglob
run() {
  local b=$1
  local tests=("$b"/tests/t_* tests/*.t)
  echo "== ${#tests[@]} test programs against $b"
  DAM_BUILD="$PWD/$b" DAMC="$PWD/$b/damc" DAM_SRC="$PWD" prove -j2 --exec '' "${tests[@]}" || status=1
}
run build
if [ $quick -eq 0 ]; then
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run build-asan
fi
exit $status
