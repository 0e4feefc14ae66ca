#!/usr/bin/env bash
# bench.sh - damc timings (not a test).  From the repository root:
#   bench/bench.sh                 # (a) JIT vs hand C on parity_et, (b) end to end, (c) compile time
#   bench/bench.sh --callgrind     # instruction counts of (a) on 8 strings, T = 0.1 (valgrind)
# DAM_BUILD selects the build directory (default build/); the published
# checkpoint is read from ../shared/data/published/analog-denseam-parity.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${DAM_BUILD:-build}
pub=${DAM_PARITY_DATA:-../shared/data/published/analog-denseam-parity}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# (c) times compiles with the object cache too: a fresh one, not the user's.
DAMC_CACHE_DIR=$tmp/cache; export DAMC_CACHE_DIR
libs=("$B/libdamdrv.a" "$B/libdamjit.a" "$B/libdamspice.a" "$B/libdamfront.a" "$B/libdamir.a" "$B/libdamrt.a")
for l in "${libs[@]}"; do [ -f "$l" ] || { echo "bench.sh: $l missing: build first (scripts/build.sh)" >&2; exit 2; }; done
CC=${CC:-cc}
# The hand-written baseline: -O3 -march=native, as the brief says.
$CC -std=c17 -O3 -march=native -Iruntime/include -c bench/hand_parity.c -o "$tmp/hand_parity.o"
$CC -std=c17 -O2 -g -D_POSIX_C_SOURCE=200809L -Iruntime/include -Isrc/frontend -Isrc/ir -Isrc/backends/jit \
  -Ibench -c bench/bench_dam.c -o "$tmp/bench_dam.o"
$CC "$tmp/bench_dam.o" "$tmp/hand_parity.o" "${libs[@]}" -L/usr/lib/llvm-16/lib -lLLVM -llua5.4 -lz \
  -lpthread -lm -o "$tmp/bench_dam"
echo "# $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), build $B, $($CC --version | head -1)"
if [ "${1:-}" = "--callgrind" ]; then
  # valgrind decodes no AVX-512 (EVEX) and reports a CPU without it, so the JIT
  # (which targets the host CPU it sees) gets AVX2 code under valgrind: build
  # the baseline for the same level.
  $CC -std=c17 -O3 -march=x86-64-v3 -Iruntime/include -c bench/hand_parity.c -o "$tmp/hand_parity.o"
  $CC "$tmp/bench_dam.o" "$tmp/hand_parity.o" "${libs[@]}" -L/usr/lib/llvm-16/lib -lLLVM -llua5.4 -lz \
    -lpthread -lm -o "$tmp/bench_dam"
  for side in jit hand; do
    fn=$([ $side = jit ] && echo dam_run || echo hand_parity_run)
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$side" --toggle-collect="$fn" \
      "$tmp/bench_dam" --quick --only $side "$pub/model_best.npz" "$pub" >"$tmp/out.$side" 2>"$tmp/vg.$side" \
      || { cat "$tmp/vg.$side" >&2; exit 1; }
    ir=$(callgrind_annotate "$tmp/cg.$side" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "callgrind $side: $ir instructions in $fn (8 strings x 1000 Euler steps = 8000 steps; $((ir / 8000)) per step)"
  done
else
  "$tmp/bench_dam" "$@" "$pub/model_best.npz" "$pub"
fi
