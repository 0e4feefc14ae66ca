#!/usr/bin/env bash
# et_scale.sh - the Analog ET family at D = M = 16, 256, 1024 and 4096: damc
# through the public API against plain C and OpenBLAS, compile
# time and memory against size, and `damc run` end to end (not a test).
# From the repository root:
#   bench/et_scale.sh              # D = 16, 256, 1024, 4096 + end to end (about 3 minutes)
#   bench/et_scale.sh --small      # without D = 4096 (it takes about 90 s of the 3 minutes)
#   bench/et_scale.sh --only 4096  # one size (16, 256, 1024 or 4096), no end to end
#   bench/et_scale.sh --e2e        # the end-to-end part alone (about 1 minute)
#   bench/et_scale.sh --callgrind  # instructions per Euler step at D = 256 and 1024 (valgrind)
# DAM_BUILD selects the build directory (default build/); the parity checkpoint
# for the end-to-end part is read from ../shared/data/published/analog-denseam-parity.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${DAM_BUILD:-build}
pub=${DAM_PARITY_DATA:-../shared/data/published/analog-denseam-parity}
big=1 only= cg=0 e2e=0
while [ $# -gt 0 ]; do
  case $1 in
    --small) big=0 ;;
    --only) only=$2; shift ;;
    --callgrind) cg=1 ;;
    --e2e) e2e=1 ;;
    *) echo "usage: bench/et_scale.sh [--small] [--only D] [--e2e] [--callgrind]" >&2; exit 2 ;;
  esac
  shift
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
libs=("$B/libdamdrv.a" "$B/libdamjit.a" "$B/libdamspice.a" "$B/libdamfront.a" "$B/libdamir.a" "$B/libdamrt.a")
for l in "${libs[@]}" "$B/damc"; do [ -f "$l" ] || { echo "et_scale.sh: $l missing: build first" >&2; exit 2; }; done
CC=${CC:-cc}
# The hand-written baselines: -O3 -march=native, one translation unit each.
$CC -std=c17 -O3 -march=native -Iruntime/include -c bench/hand_et.c -o "$tmp/hand_et.o"
$CC -std=c17 -O3 -march=native -Iruntime/include -c bench/hand_parity.c -o "$tmp/hand_parity.o"
$CC -std=c17 -O2 -g -D_POSIX_C_SOURCE=200809L -Iruntime/include -Isrc/frontend -Isrc/ir \
  -Isrc/backends/jit -Isrc/driver -Ibench -c bench/et_scale.c -o "$tmp/et_scale.o"
$CC "$tmp/et_scale.o" "$tmp/hand_et.o" "$tmp/hand_parity.o" "${libs[@]}" -lopenblas \
  -L/usr/lib/llvm-16/lib -lLLVM -llua5.4 -lz -lpthread -lm -o "$tmp/et_scale"
E=$tmp/et_scale

if [ $cg = 1 ]; then
  # valgrind decodes no AVX-512 and reports a CPU without it, so the JIT and
  # OpenBLAS (which both pick code for the CPU they see) get AVX2 code under
  # valgrind: build the hand code for the same level.
  $CC -std=c17 -O3 -march=x86-64-v3 -Iruntime/include -c bench/hand_et.c -o "$tmp/hand_et.o"
  $CC "$tmp/et_scale.o" "$tmp/hand_et.o" "$tmp/hand_parity.o" "${libs[@]}" -lopenblas \
    -L/usr/lib/llvm-16/lib -lLLVM -llua5.4 -lz -lpthread -lm -o "$E"
  fns=(damc_steps damc_one_step hand_et_run hand_et_run_axpy hand_et_run_blas)
  echo "callgrind: instructions per Euler step per string (64 strings, 1 pass; OpenBLAS 1 thread; AVX2)"
  for s in "256 32 10" "1024 64 3"; do
    read -r D L n <<<"$s"
    "$E" weights "$tmp/w$D.npz" "$D" "$L" "$D" 2024
    DAM_ET_BATCH_MB=0 DAM_ET_NO_BLAS2=1 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$D" \
      "${fns[@]/#/--toggle-collect=}" "$E" bench "$D" "$L" "$D" "$n" 1 1 "$tmp/w$D.npz" \
      >"$tmp/cgout.$D" 2>"$tmp/vg.$D" || { cat "$tmp/vg.$D" >&2; exit 1; }
    callgrind_annotate --inclusive=yes "$tmp/cg.$D" >"$tmp/cga.$D" 2>/dev/null
    ir() { awk -v f="$1" '$0 ~ "[ :]" f " " || $0 ~ "[ :]" f "$" {gsub(",", "", $1); print $1; exit}' "$tmp/cga.$D"; }
    awk -v D="$D" -v L="$L" -v n="$n" -v s="$(ir damc_steps)" -v o="$(ir damc_one_step)" \
        -v h="$(ir hand_et_run)" -v x="$(ir hand_et_run_axpy)" -v b="$(ir hand_et_run_blas)" 'BEGIN {
      F = 4 * D * (L + D) + 3 * D + 8 * L + 3 * D
      printf "  D = M = %d, L = %d, %d steps: F = %d FLOPs per step\n", D, L, n, F
      printf "    damc (dam_run)    %12.0f per step incl. setup; %12.0f per step alone; setup %10.0f per run\n", s / (64 * n), (s - o) / (64 * (n - 1)), o / 64 - (s - o) / (64 * (n - 1))
      printf "    plain C           %12.0f per step\n", h / (64 * n)
      printf "    plain C axpy      %12.0f per step\n", x / (64 * n)
      printf "    OpenBLAS 1 thread %12.0f per step\n", b / (64 * n)
      printf "    per FLOP: damc alone %.3f, plain C %.3f, plain C axpy %.3f, OpenBLAS %.3f\n", (s - o) / (64 * (n - 1)) / F, h / (64 * n) / F, x / (64 * n) / F, b / (64 * n) / F }'
  done
  exit 0
fi

# ---- the machine -----------------------------------------------------------------
ncores=$(nproc)
mhz=$(awk -F: '/cpu MHz/ {print $2; exit}' /proc/cpuinfo | tr -d ' ')
flags=$(grep -m1 '^flags' /proc/cpuinfo)
if [[ $flags == *avx512f* ]]; then w=8 isa="AVX-512 (avx512f present)"
elif [[ $flags == *avx2* ]]; then w=4 isa="AVX2 (no AVX-512)"
else w=2 isa="SSE2"; fi
fma=1; [[ $flags == *" fma "* ]] && fma=2
echo "# $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $ncores cores, $mhz MHz, $isa"
echo "# build $B, $($CC --version | head -1), $(dpkg-query -W -f='libopenblas ${Version}' libopenblas0-pthread 2>/dev/null || echo libopenblas)"
awk -v c="$ncores" -v w="$w" -v f="$fma" -v m="$mhz" 'BEGIN {
  p = c * w * f * m / 1000;
  printf "# peak = cores x doubles per vector x %d (FMA) x clock = %d x %d x %d x %.3f GHz = %.1f GFLOP/s", f, c, w, f, m / 1000, p;
  printf " (%.1f per core; x2 again if the core issues two vector FMAs per cycle)\n", p / c }'
echo "# FLOPs per Euler step per string: F = 4 D (L + M) + 3 D + 8 L + 3 M (bench/README.md)"

# ---- sizes: D L steps passes compile-reps ---------------------------------------
sizes=("16 8 1000 9 5" "256 32 200 7 5" "1024 64 20 5 3")
[ $big = 1 ] && sizes+=("4096 64 6 3 3")
if [ -n "$only" ]; then
  case $only in 16) sizes=("16 8 1000 9 5") ;; 256) sizes=("256 32 200 7 5") ;;
    1024) sizes=("1024 64 20 5 3") ;; 4096) sizes=("4096 64 6 3 3") ;;
    *) echo "et_scale.sh: --only takes 16, 256, 1024 or 4096" >&2; exit 2 ;; esac
fi
[ $e2e = 1 ] && sizes=()
for s in "${sizes[@]}"; do
  read -r D L n reps creps <<<"$s"
  "$E" weights "$tmp/w$D.npz" "$D" "$L" "$D" 2024
  t0=$(date +%s.%N)
  "$E" bench "$D" "$L" "$D" "$n" "$reps" "$creps" "$tmp/w$D.npz" | tee -a "$tmp/rows" | grep -v "^row "
  for what in damc hand blas; do "$E" mem $what "$D" "$L" "$D" "$tmp/w$D.npz" >>"$tmp/rows"; done
  echo "    ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}') s for this size)"
done

[ $e2e = 1 ] || {
echo
echo "summary: ns per Euler step per string (GFLOP/s), medians; compile = dam_compile_file (front end, weights,"
echo "checks, code); codegen = its code generation alone (LLVM: IR, optimisation, machine code); max RSS of a"
echo "process that compiles / loads and runs the 64 strings for one step"
printf "%6s %4s %22s %22s %22s %22s %22s %22s %22s %9s %9s %26s\n" D L "damc dam_run" "damc batch (int.)" "damc batch 2 thr" "plain C" \
  "plain C axpy" "OpenBLAS 1 thr" "OpenBLAS 2 thr" "compile" "codegen" "max RSS damc/hand/blas"
for s in "${sizes[@]}"; do
  read -r D L _ <<<"$s"
  awk -v D="$D" -v L="$L" '
    $1 == "row" && $2 == "D=" D {
      if ($3 == "compile") { split($4, a, "="); comp = a[2] }
      else if ($3 == "codegen") { split($4, a, "="); cg = a[2] }
      else if ($3 == "mem") { split($5, a, "="); mem[$4] = a[2] }
      else {
        name = ""; for (i = 3; i <= NF && $i !~ /^ns=/; i++) name = name (name == "" ? "" : " ") $i
        split($i, a, "="); split($(i + 1), g, "="); cell[name] = sprintf("%.1f (%.2f)", a[2], g[2])
      }
    }
    END {
      n = split("damc (dam_run)|damc batch (internal)|damc batch 2 threads|plain C|plain C axpy|OpenBLAS 1 thread|OpenBLAS 2 threads", k, "|")
      printf "%6s %4s", D, L
      for (i = 1; i <= n; i++) printf " %22s", (k[i] in cell) ? cell[k[i]] : "-"
      printf " %6.0f ms %6.0f ms %11s MB\n", comp, cg, mem["damc"] "/" mem["hand"] "/" mem["blas"]
    }' "$tmp/rows"
done
}
[ -n "$only" ] && exit 0

# ---- end to end: damc run on all 256 8-bit strings ------------------------------
echo
echo "end to end: damc run examples/parity_et.dam, 256 strings, Euler dt 1e-4, T = 1, default checks,"
echo "against bench/hand_parity.c (one thread, the same run), wall time of the whole process, median of 5"
for s in $(seq 0 255); do
  for i in 7 6 5 4 3 2 1 0; do printf '%d ' $(((s >> i) & 1)); done; echo
done >"$tmp/all256.txt"
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (b - a) * 1000}'; }
declare -a td t1 th ts tc
# The JIT's object cache (docs/cli.md): a fresh one, filled by the first run;
# the "no object cache" line compiles every time.
DAMC_CACHE_DIR=$tmp/cache; export DAMC_CACHE_DIR
"$B/damc" run examples/parity_et.dam --dataset "$tmp/all256.txt" --solver euler --dt 1e-4 --t-end 1e-4 >/dev/null 2>&1
for r in 1 2 3 4 5; do
  a=$(date +%s.%N); DAMC_CACHE=0 "$B/damc" run examples/parity_et.dam --dataset "$tmp/all256.txt" --solver euler --dt 1e-4 \
    --t-end 1 --json >/dev/null 2>&1; b=$(date +%s.%N); tc+=("$(ms "$a" "$b")")
  a=$(date +%s.%N); "$B/damc" run examples/parity_et.dam --dataset "$tmp/all256.txt" --solver euler --dt 1e-4 --t-end 1 --json \
    >"$tmp/e2e.json" 2>/dev/null; b=$(date +%s.%N); td+=("$(ms "$a" "$b")")
  a=$(date +%s.%N); "$B/damc" run examples/parity_et.dam --dataset "$tmp/all256.txt" --solver euler --dt 1e-4 --t-end 1 --json \
    --threads 1 >"$tmp/e2e1.json" 2>/dev/null; b=$(date +%s.%N); t1+=("$(ms "$a" "$b")")
  a=$(date +%s.%N); "$E" e2e-hand "$pub/model_best.npz" "$tmp/all256.txt" >/dev/null; b=$(date +%s.%N)
  th+=("$(ms "$a" "$b")")
  a=$(date +%s.%N); "$B/damc" run examples/parity_et.dam --dataset "$tmp/all256.txt" --solver euler --dt 1e-4 --t-end 1e-4 --json \
    >/dev/null 2>&1; b=$(date +%s.%N); ts+=("$(ms "$a" "$b")")
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
md=$(med "${td[@]}") m1=$(med "${t1[@]}") mh=$(med "${th[@]}") ms1=$(med "${ts[@]}") mc=$(med "${tc[@]}")
echo "    damc run (all cores, $ncores)   ${td[*]} ms: median $md ms"
echo "    damc run --threads 1     ${t1[*]} ms: median $m1 ms"
echo "    damc run, no object cache ${tc[*]} ms: median $mc ms (DAMC_CACHE=0: compiles every time)"
echo "    hand C (hand_parity.c)   ${th[*]} ms: median $mh ms"
echo "    damc run, 1 step each    ${ts[*]} ms: median $ms1 ms (start-up, compile, 256 runs of 1 step: all but the steps)"
awk -v d="$md" -v o="$m1" -v h="$mh" -v c="$mc" 'BEGIN {
  printf "    ratio damc / hand C = %.3f (all cores), %.3f (--threads 1), %.3f (all cores, no object cache)\n", d / h, o / h, c / h }'
"$E" e2e-cmp "$pub/model_best.npz" "$tmp/all256.txt" "$tmp/e2e.json"
cmp -s "$tmp/e2e.json" "$tmp/e2e1.json" && echo "    damc run --threads 1 and all cores: byte-identical output" \
  || echo "    damc run --threads 1 and all cores: OUTPUT DIFFERS"
