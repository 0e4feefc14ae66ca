#!/usr/bin/env bash
# main_job.sh - the main job without setup and build: check and derive the
# examples, simulate XOR, Hamming(7,4) and the published parity Analog ET,
# emit the XOR netlist, simulate it in ngspice, verify it against the JIT and
# print the parity hardware report.  DAMC (default build/damc) is the compiler
# to use and OUT (default out/) where results go; tests/main_job.t runs it
# against the sanitizer build too.
set -euo pipefail
cd "$(dirname "$0")/.."
DAMC=${DAMC:-build/damc}
OUT=${OUT:-out}
PARITY=../shared/data/published/analog-denseam-parity
mkdir -p "$OUT"
for f in examples/*.dam; do
  echo "== damc check $f"
  $DAMC check "$f"
done
echo "== damc derive examples/xor.dam"
$DAMC derive examples/xor.dam -o $OUT/xor.derive && cat $OUT/xor.derive
if [ -x "$DAMC" ] && $DAMC run --help >/dev/null 2>&1; then
  echo "== damc run examples/xor.dam (all four inputs)"
  $DAMC run examples/xor.dam -c examples/xor.lua
  echo "== damc run examples/hamming74.dam (16 codewords x 7 bit flips)"
  $DAMC run examples/hamming74.dam -c examples/hamming74.lua --json > $OUT/hamming74.jsonl
  python3 - $OUT/hamming74.jsonl <<'PY'
import json, sys, itertools
# The 16 Hamming(7,4) codewords (paper Table 1): a run is corrected when its
# rounded final state is the codeword one bit away from its input.
code = lambda d: [d[0], d[1], d[2], d[3], d[1]^d[2]^d[3], d[0]^d[2]^d[3], d[0]^d[1]^d[3]]
words = {tuple(code(d)) for d in itertools.product([0, 1], repeat=4)}
runs = [json.loads(l) for l in open(sys.argv[1])]
good = 0
for r in runs:
    out = tuple(int(round(x)) for x in r["outputs"]["code"])
    inp = r["inputs"]["word"]
    good += out in words and sum(a != b for a, b in zip(out, inp)) <= 1 and r["status"] == "ok"
print(f"hamming74: {good}/{len(runs)} corrupted words corrected ({sys.argv[1]})")
PY
  if [ -f "$PARITY/model_best.npz" ]; then
    echo "== damc run examples/parity_et.dam on the published validation split"
    $DAMC run examples/parity_et.dam -D weights="$PARITY/model_best.npz" --t-end 1 \
      --dataset "$PARITY/parity_data_test_X.txt" --json > $OUT/parity.jsonl
    python3 - $OUT/parity.jsonl "$PARITY/parity_data_test_y.txt" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
ys = [int(float(l.split()[0])) for l in open(sys.argv[2]) if l.strip()]
pred = [max(range(2), key=lambda k: r["outputs"]["logits"][k]) for r in runs]
print(f"parity_et: {sum(p == y for p, y in zip(pred, ys))}/{len(ys)} validation strings correct ({sys.argv[1]})")
PY
  fi
fi
echo "== damc netlist examples/xor.dam (input 1,0): the analog circuit as an ngspice deck"
$DAMC netlist examples/xor.dam -c examples/xor.lua --row 2 -o $OUT/xor.cir
head -6 $OUT/xor.cir
echo "== ngspice -b $OUT/xor.cir"
ngspice -b -r $OUT/xor.raw $OUT/xor.cir >$OUT/xor.ngspice.log 2>&1 && grep -E "No. of Data Rows|Total analysis time" $OUT/xor.ngspice.log
echo "== damc verify examples/xor.dam: ngspice against the JIT on all four inputs (RK4 reference)"
$DAMC verify examples/xor.dam -c examples/xor.lua --solver rk4
if [ -f "$PARITY/model_best.npz" ]; then
  echo "== damc report examples/parity_et.dam: hardware, latency and energy (integrated device)"
  $DAMC report examples/parity_et.dam -D weights="$PARITY/model_best.npz" --dataset "$PARITY/parity_data_test_X.txt" 2>/dev/null
fi
