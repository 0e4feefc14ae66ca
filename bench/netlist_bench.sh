#!/usr/bin/env bash
# netlist_bench.sh - the same trajectory through ngspice and through the JIT.
#
#   bench/netlist_bench.sh [--runs N]            (default N = 5)
#   flock /tmp/damc-build.lock bench/netlist_bench.sh   (nobody builds while it times)
#
# For xor (row 1), hamming74 (row 3) and parity_et (row 0), with each model's
# example config:
#   ngspice  `damc netlist MODEL -c CFG --row N -o deck.cir` (timed apart), then
#            `ngspice -b -r out.raw deck.cir` (the deck's transient only), wall
#            time and ngspice's own "Total analysis time" line;
#   JIT      `damc run MODEL -c CFG --dataset row.txt` with a one-row dataset
#            holding that row's inputs (the whole process: Lua config, front
#            end, LLVM compile, the run), and the same with --t-end = dt (one
#            step: startup + compile), and the simulation alone: a dataset of
#            K = 100 copies of the row with --threads 1, (wall - one step) / K.
# Medians of N runs, interleaved (model by model within a run), and the ratios
# ngspice / JIT.  Before timing it checks that the one-row JIT run gives the
# outputs of row N of the full config run and of `damc verify --row N:N+1`
# (whose deck is the one `damc netlist --row N` writes), i.e. the same
# trajectory.  Builds nothing: run scripts/build.sh first.
set -euo pipefail

runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) [ $# -ge 2 ] || { echo "netlist_bench.sh: --runs needs a value" >&2; exit 2; }
            runs=$2; shift 2 ;;
    --runs=*) runs=${1#--runs=}; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "netlist_bench.sh: unknown argument '$1' (usage: netlist_bench.sh [--runs N])" >&2; exit 2 ;;
  esac
done
case "$runs" in ''|*[!0-9]*|0) echo "netlist_bench.sh: --runs wants a positive integer" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
build=${DAM_BUILD:-build}
damc=$build/damc
[ -x "$damc" ] || { echo "netlist_bench.sh: $damc not found: run scripts/build.sh first" >&2; exit 1; }
command -v ngspice >/dev/null || { echo "netlist_bench.sh: ngspice not found (scripts/setup.sh installs it)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "netlist_bench.sh: python3 not found" >&2; exit 1; }
[ -d ../shared/data/published/analog-denseam-parity ] ||
  { echo "netlist_bench.sh: ../shared/data/published/analog-denseam-parity missing (parity weights)" >&2; exit 1; }

krows=100   # copies of the row for the JIT's simulation time
tmp=$(mktemp -d "${TMPDIR:-/tmp}/netlist_bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# name  model  config  row
models="xor examples/xor.dam examples/xor.lua 1
hamming74 examples/hamming74.dam examples/hamming74.lua 3
parity_et examples/parity_et.dam examples/parity_et.lua 0"

# microseconds since the epoch (EPOCHREALTIME's separator follows the locale)
now_us() { local t=${EPOCHREALTIME//[!0-9]/}; echo "$((10#$t))"; }

# ---- preparation (untimed): the row, the deck, the same-trajectory checks
while read -r name model cfg row <&3; do
  "$damc" run "$model" -c "$cfg" --json >"$tmp/$name.all.json" 2>"$tmp/$name.err" ||
    { cat "$tmp/$name.err" >&2; echo "netlist_bench.sh: damc run $model failed" >&2; exit 1; }
  python3 - "$tmp/$name.all.json" "$row" "$name" "$tmp/$name.row.txt" "$tmp/$name.dt" "$krows" <<'EOF'
import json, sys
path, row, name, rowfile, dtfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
runs = [json.loads(l) for l in open(path) if l.startswith("{")]
r = next(x for x in runs if x["index"] == row)
vals = [v for k in r["inputs"] for v in r["inputs"][k]]   # declaration order
if name == "hamming74":   # row r: codeword r//7 of Table 1 with bit r%7+1 flipped
    n = row // 7
    d1, d2, d3, d4 = (n >> 3) & 1, (n >> 2) & 1, (n >> 1) & 1, n & 1
    c = [d1, d2, d3, d4, d2 ^ d3 ^ d4, d1 ^ d3 ^ d4, d1 ^ d2 ^ d4]
    c[row % 7] ^= 1
    assert [int(v) for v in vals] == c, (vals, c)
open(rowfile, "w").write(" ".join(repr(v) for v in vals) + "\n")
open(rowfile + ".k", "w").write((" ".join(repr(v) for v in vals) + "\n") * int(sys.argv[6]))
open(dtfile, "w").write(repr(r["t_end"] / r["steps"]) + "\n")
json.dump(r["outputs"], open(path + ".row", "w"))
EOF
  "$damc" run "$model" -c "$cfg" --dataset "$tmp/$name.row.txt" --json >"$tmp/$name.one.json" 2>/dev/null
  "$damc" netlist "$model" -c "$cfg" --row "$row" -o "$tmp/$name.cir" 2>/dev/null
  "$damc" verify "$model" -c "$cfg" --row "$row:$((row + 1))" --json >"$tmp/$name.verify.json" 2>/dev/null || true
  python3 - "$tmp/$name" "$name" "$row" <<'EOF'
import json, sys
base, name, row = sys.argv[1], sys.argv[2], int(sys.argv[3])
full = json.load(open(base + ".all.json.row"))
one = [json.loads(l) for l in open(base + ".one.json") if l.startswith("{")]
ver = [json.loads(l) for l in open(base + ".verify.json") if l.startswith("{")]
assert len(one) == 1 and one[0]["outputs"] == full, f"{name}: one-row JIT run differs from row {row}"
assert len(ver) == 1 and ver[0]["row"] == row, f"{name}: damc verify gave no row {row}"
oj = ver[0]["outputs_jit"]
vec = lambda v: v if isinstance(v, list) else [v]
assert sorted(oj) == sorted(full), f"{name}: damc verify reports other outputs"
dev = max(abs(a - b) for k in full for a, b in zip(vec(full[k]), vec(oj[k])))
assert dev <= 1e-12, f"{name}: damc verify's JIT outputs differ from the one-row run by {dev}"
print(f"  {name:<10} row {row}: one-row JIT run = row {row} of the config run = damc verify's JIT; "
      f"ngspice max deviation {ver[0]['max_dev']:.2g} (scale {ver[0]['scale']:.3g})")
EOF
done 3<<<"$models"

# ---- timing: runs x (netlist, ngspice, JIT, JIT one step), model by model
: >"$tmp/times"
for ((i = 1; i <= runs; i++)); do
  while read -r name model cfg row <&3; do
    dt=$(cat "$tmp/$name.dt")

    t0=$(now_us)
    "$damc" netlist "$model" -c "$cfg" --row "$row" -o "$tmp/$name.cir" 2>/dev/null
    t1=$(now_us)
    echo "$name netlist $((t1 - t0))" >>"$tmp/times"

    t0=$(now_us)
    ngspice -b -r "$tmp/$name.raw" "$tmp/$name.cir" >"$tmp/$name.ngspice.log" 2>&1 || true
    t1=$(now_us)
    echo "$name ngspice $((t1 - t0))" >>"$tmp/times"
    an=$(sed -n 's/.*Total analysis time (seconds) = *\([0-9.eE+-]*\).*/\1/p' "$tmp/$name.ngspice.log")
    pts=$(sed -n 's/.*No\. of Data Rows : *\([0-9]*\).*/\1/p' "$tmp/$name.ngspice.log" | tail -n 1)
    if [ -z "$an" ] || [ -z "$pts" ]; then
      tail -n 20 "$tmp/$name.ngspice.log" >&2
      echo "netlist_bench.sh: ngspice failed on the $name deck" >&2; exit 1
    fi
    echo "$name analysis $an" >>"$tmp/times"
    echo "$name points $pts" >>"$tmp/times"

    t0=$(now_us)
    "$damc" run "$model" -c "$cfg" --dataset "$tmp/$name.row.txt" >/dev/null 2>&1
    t1=$(now_us)
    echo "$name jit $((t1 - t0))" >>"$tmp/times"

    t0=$(now_us)
    "$damc" run "$model" -c "$cfg" --dataset "$tmp/$name.row.txt" --t-end "$dt" >/dev/null 2>&1
    t1=$(now_us)
    echo "$name jit1 $((t1 - t0))" >>"$tmp/times"

    t0=$(now_us)
    "$damc" run "$model" -c "$cfg" --dataset "$tmp/$name.row.txt.k" --threads 1 >/dev/null 2>&1
    t1=$(now_us)
    echo "$name jitk $((t1 - t0))" >>"$tmp/times"
  done 3<<<"$models"
done

for name in xor hamming74 parity_et; do
  echo "$name lines $(wc -l <"$tmp/$name.cir")" >>"$tmp/times"
  echo "$name steps $(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["steps"])' "$tmp/$name.one.json")" >>"$tmp/times"
done

python3 - "$tmp/times" "$runs" "$krows" <<'EOF'
import statistics, sys
from collections import defaultdict
d = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    name, kind, v = line.split()
    d[name][kind].append(float(v))
runs, k = int(sys.argv[2]), int(sys.argv[3])
med = lambda xs: statistics.median(xs)
print(f"\nngspice transient vs JIT, one row each, median of {runs} (times in ms)")
hdr = ("model", "deck lines", "spice pts", "JIT steps", "netlist", "ngspice", "analysis",
       "JIT", "JIT 1 step", "JIT sim", "ngspice/JIT", "analysis/sim")
print("{:<10} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>11} {:>12}".format(*hdr))
for name in ("xor", "hamming74", "parity_et"):
    m = d[name]
    ng = med(m["ngspice"]) / 1e3
    an = med(m["analysis"]) * 1e3
    jit = med(m["jit"]) / 1e3
    jit1 = med(m["jit1"]) / 1e3
    sim = med([(a - b) / k for a, b in zip(m["jitk"], m["jit1"])]) / 1e3   # paired, per row
    print(f"{name:<10} {int(m['lines'][0]):>10} {int(m['points'][-1]):>9} {int(m['steps'][0]):>9} "
          f"{med(m['netlist']) / 1e3:>8.1f} {ng:>8.1f} {an:>8.1f} {jit:>8.1f} {jit1:>10.1f} "
          f"{sim:>8.2f} {ng / jit:>11.2f} {an / sim:>12.0f}")
print("""
netlist      damc netlist MODEL -c CFG --row N -o deck.cir (wall, not in ngspice)
ngspice      ngspice -b -r out.raw deck.cir, wall (process start, parse, transient, raw file)
analysis     ngspice's own "Total analysis time" (1 ms resolution)
JIT          damc run MODEL -c CFG --dataset row.txt, wall (process, Lua, front end, LLVM, run)
JIT 1 step   the same with --t-end = dt: startup + compile
JIT sim      one trajectory: (wall of {k} copies of the row, --threads 1, - JIT 1 step) / {k}
ngspice/JIT  wall / wall;  analysis/sim = ngspice analysis / JIT sim""".format(k=k))
EOF
