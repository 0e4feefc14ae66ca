#!/usr/bin/env bash
# run_mc.t - `damc run --device P --mc N --seed S`: Monte Carlo draws of a
# device's non-idealities in the weights the ODE runs with.
#  - no noise (a profile with noise 0): every draw is the ideal run (std 0, the
#    means equal the plain run's outputs to 1e-12);
#  - examples/devices/noisy.lua on XOR: the outputs spread (std > 0) but the
#    answers hold on average;
#  - the published parity checkpoint, 100 draws: prints mean and worst accuracy;
#    the same seed gives the same bytes (also on one thread), another seed not;
#  - conductance drift (noise.drift, drift_sigma, drift_time): with one nu for
#    all cells, every draw is XOR with the weights scaled by t^-nu;
#  - bad input: --mc without a device, a misspelt noise key (located).
set -u
DAMC=${DAMC:-build/damc}
W=../shared/data/published/analog-denseam-parity
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
printf 'name = "quiet"\ncrossbar = { gmin = 0, gmax = 1e-4 }\nnoise = { program = 0, read = 0, stuck_min = 0, stuck_max = 0 }\n' >"$tmp/quiet.lua"
"$DAMC" run examples/xor.dam -c examples/xor.lua --device "$tmp/quiet.lua" --mc 3 --seed 5 --json >"$tmp/q.json" 2>"$tmp/e"
"$DAMC" run examples/xor.dam -c examples/xor.lua --json >"$tmp/x.json" 2>/dev/null
python3 - "$tmp/q.json" "$tmp/x.json" <<'PY'; ok $? "no noise: every draw is the ideal run (std 0, means = plain outputs within 1e-12)"
import json, sys
mc = [json.loads(l) for l in open(sys.argv[1])]
x = [json.loads(l) for l in open(sys.argv[2])]
d = max(abs(r["mean"][0] - p["outputs"]["y"][0]) for r, p in zip(mc, x)) if len(mc) == 4 else 1
s = max(r["std"][0] for r in mc) if mc else 1
print(f"# max |mean - ideal| {d:.3g}, max std {s:.3g}")
sys.exit(0 if d <= 1e-12 and s <= 1e-12 else 1)
PY
"$DAMC" run examples/xor.dam -c examples/xor.lua --device noisy --mc 50 --seed 3 --json >"$tmp/n.json" 2>/dev/null
python3 - "$tmp/n.json" <<'PY'; ok $? "noisy device on XOR: outputs spread (std > 1e-3), answers hold on average (|mean - bit| < 0.05)"
import json, sys
mc = [json.loads(l) for l in open(sys.argv[1])]
bits = [0, 1, 1, 0]
for r, b in zip(mc, bits):
    print(f"# row {r['row']}: mean {r['mean'][0]:.4f} std {r['std'][0]:.4f}")
good = len(mc) == 4 and all(r["std"][0] > 1e-3 and abs(r["mean"][0] - b) < 0.05 for r, b in zip(mc, bits))
sys.exit(0 if good else 1)
PY
# Drift: nu = 0.05 for every cell, read 10^4 s after programming: every
# programmed weight is scaled by (10^4)^-0.05 = 0.631, the biases keep their
# compiled values; so every draw equals a plain run of XOR with xi = 0.631 xi
# and XOR's biases written out (1e-12).  With drift_sigma the draws spread.
printf 'name = "drift"\nnoise = { drift = 0.05, drift_time = 1e4 }\n' >"$tmp/drift.lua"
"$DAMC" run examples/xor.dam -c examples/xor.lua --device "$tmp/drift.lua" --mc 3 --seed 5 --json >"$tmp/d.json" 2>/dev/null
f=$(python3 -c "print(repr(1e4 ** -0.05))")
sed "s/^weights xi : h -- v = \[\[0, 0, 0\],/weights xi : h -- v = $f * [[0, 0, 0],/; s/^bias h\[mu\].*/bias h = [0, -1, -1, -1]/" \
  examples/xor.dam >"$tmp/xor_drift.dam"
"$DAMC" run "$tmp/xor_drift.dam" -c examples/xor.lua --json >"$tmp/xd.json" 2>"$tmp/xd.err"
python3 - "$tmp/d.json" "$tmp/xd.json" <<'PY'; ok $? "drift nu = 0.05 at 10^4 s: every draw runs XOR with xi scaled by 0.631 (1e-12)"
import json, sys
mc = [json.loads(l) for l in open(sys.argv[1])]
x = [json.loads(l) for l in open(sys.argv[2])]
d = max(abs(r["mean"][0] - p["outputs"]["y"][0]) for r, p in zip(mc, x)) if len(mc) == 4 and len(x) == 4 else 1
print(f"# drifted means {[round(r['mean'][0], 4) for r in mc]}, max |mean - scaled xi run| {d:.3g}")
sys.exit(0 if d <= 1e-12 and max(r["std"][0] for r in mc) <= 1e-12 else 1)
PY
printf 'name = "drift2"\nnoise = { drift = 0.05, drift_sigma = 0.02, drift_time = 1e4 }\n' >"$tmp/drift2.lua"
"$DAMC" run examples/xor.dam -c examples/xor.lua --device "$tmp/drift2.lua" --mc 20 --seed 5 --json >"$tmp/d2.json" 2>/dev/null
python3 -c "
import json, sys
mc = [json.loads(l) for l in open('$tmp/d2.json')]
print('# drift_sigma 0.02: std', [round(r['std'][0], 4) for r in mc])
sys.exit(0 if len(mc) == 4 and max(r['std'][0] for r in mc) > 1e-3 else 1)"
ok $? "drift with a spread of nu from cell to cell: the draws differ"
printf 'name = "mismatch"\nnoise = { tau = 0.1 }\n' >"$tmp/mis.lua"
"$DAMC" run examples/xor.dam -c examples/xor.lua --t-end 0.5 --device "$tmp/mis.lua" --mc 20 --seed 4 --json >"$tmp/t.json" 2>/dev/null
"$DAMC" run examples/xor.dam -c examples/xor.lua --t-end 0.5 --device "$tmp/quiet.lua" --mc 2 --seed 4 --json >"$tmp/t0.json" 2>/dev/null
python3 - "$tmp/t.json" "$tmp/t0.json" <<'PY'; ok $? "tau mismatch alone (sigma 0.1) spreads the unsettled outputs at t = 0.5; without it they do not"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
sa, sb = max(r["std"][0] for r in a), max(r["std"][0] for r in b)
print(f"# max std with tau mismatch {sa:.3g}, without {sb:.3g}")
sys.exit(0 if len(a) == 4 and sa > 1e-3 and sb <= 1e-12 else 1)
PY
if [ -f "$W/model_best.npz" ]; then
  run() { "$DAMC" run examples/parity_et.dam -c examples/parity_et.lua --device noisy --mc 100 --labels "$W/parity_data_test_y.txt" "$@" 2>/dev/null; }
  run --seed 1 >"$tmp/p1.txt"; run --seed 1 --threads 1 >"$tmp/p1b.txt"; run --seed 2 >"$tmp/p2.txt"
  grep -qE '^accuracy over 100 draws of 52 rows: mean [0-9.]+, worst [0-9.]+ \(draw [0-9]+\), best' "$tmp/p1.txt"
  ok $? "parity, 100 draws of the noisy device: mean and worst-case accuracy printed"
  sed 's/^/# /' "$tmp/p1.txt"
  cmp -s "$tmp/p1.txt" "$tmp/p1b.txt" && ! cmp -s "$tmp/p1.txt" "$tmp/p2.txt"
  ok $? "the same seed gives the same bytes (all cores or one thread); another seed another draw"
else
  n=$((n+1)); echo "ok $n # SKIP $W is absent"; n=$((n+1)); echo "ok $n # SKIP $W is absent"
fi
"$DAMC" run examples/xor.dam -c examples/xor.lua --mc 5 >/dev/null 2>"$tmp/e"; st=$?
[ $st = 1 ] && grep -q -- "--mc needs a device profile" "$tmp/e"
ok $? "--mc without a device: error, exit 1"
printf 'name = "typo"\nnoise = {\n  progam = 0.1 }\n' >"$tmp/typo.lua"
"$DAMC" run examples/xor.dam -c examples/xor.lua --device "$tmp/typo.lua" --mc 5 >/dev/null 2>"$tmp/e"; st=$?
[ $st = 1 ] && grep -q "typo.lua:3:3: error: unknown key 'progam' in 'noise'" "$tmp/e"
ok $? "a misspelt noise key is a located error"
echo "1..$n"
