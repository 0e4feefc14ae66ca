#!/usr/bin/env bash
# report.t - `damc report`: its arithmetic on a case worked out by hand, and its
# verdicts on the Analog ET.
#
# tests/spice/rc.dam is one RC neuron v (tau = 2) driven through one
# conductance w = 0.5 from a clamped source s = 1:  v(t) = 0.5 (1 - e^{-t/2}).
# With the tiny device (GBW 1 GHz, SR 1e9 V/s, 1 mW per amplifier) and the
# default 0.1 V per unit, 100 kOhm unit resistor:
#   noise gain k = 1 + 0.5; tau_gbw = k / (2 pi GBW); tau_sr = 0.1 * 0.5 / SR
#   tau_use = 10 tau_gbw; seconds per time unit = tau_use / 2
#   settle: |dv/dt| = 0.25 e^{-t/2} < 1e-3 / 2  ->  T = 2 ln 500
#   E_crossbar = G0 0.5 vpu^2 spu [0.25 T + (1 - e^{-T/2}) + 0.25 (1 - e^{-T})]
#   E_leak     = G0 vpu^2 spu 0.25 (1 - e^{-T});  E_amp = 3 * 1 mW * T * spu
set -u
DAMC=${DAMC:-build/damc}
W=../shared/data/published/analog-denseam-parity
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

"$DAMC" report tests/spice/rc.dam --input u0=1 --device tests/spice/tiny.lua --json >"$tmp/rc.json" 2>"$tmp/rc.err"
ok $? "report on the RC case exits 0"
python3 - "$tmp/rc.json" >"$tmp/rc.res" <<'PY'
import json, math, sys
r = json.loads(open(sys.argv[1]).read())
G0, vpu = 1e-5, 0.1
tgbw = 1.5 / (2 * math.pi * 1e9)
tsr = vpu * 0.5 / 1e9
tuse = 10 * max(tgbw, tsr)
spu = tuse / 2
T = r["settle_time"]
want = {
  "tau_gbw": (tgbw, 1e-12), "tau_sr": (tsr, 1e-12), "tau_min_usable": (tuse, 1e-12),
  "seconds_per_time_unit": (spu, 1e-12), "settle_time": (2 * math.log(500), 2e-3),
  "latency": (T * spu, 1e-12),
  "energy_crossbar": (G0 * 0.5 * vpu**2 * spu * (0.25 * T + (1 - math.exp(-T / 2)) + 0.25 * (1 - math.exp(-T))), 1e-3),
  "energy_leak": (G0 * vpu**2 * spu * 0.25 * (1 - math.exp(-T)), 1e-3),
  "energy_amplifiers": (3 * 1e-3 * T * spu, 1e-12),
  "crosspoints": (1, 0), "resistors": (2, 0), "capacitors": (1, 0), "amplifiers": (3, 0), "dac": (1, 0), "adc": (1, 0),
  "gmin": (5e-6, 1e-12), "gmax": (5e-6, 1e-12),
}
bad = 0
for k, (w, tol) in want.items():
    err = abs(r[k] - w) / max(abs(w), 1e-300)
    good = err <= tol
    bad += not good
    print(f"{0 if good else 1} report {k} = {r[k]:.9g}, by hand {w:.9g} (rel err {err:.2g}, tol {tol:g})")
print(f"{0 if r['limited_by'] == 'gain-bandwidth' else 1} the RC case is gain-bandwidth limited")
PY
while read -r st what; do ok "$st" "rc: $what"; done <"$tmp/rc.res"
[ -s "$tmp/rc.res" ] || ok 1 "rc: the report could be read"

if [ -f "$W/model_best.npz" ]; then
  "$DAMC" report examples/parity_et.dam -c examples/parity_et.lua >"$tmp/fast.txt" 2>/dev/null
  grep -qE '^  latency +[0-9.e+-]+ s' "$tmp/fast.txt" && grep -qE '^  total +[0-9.e+-]+ J' "$tmp/fast.txt" &&
    grep -q 'limited by            gain-bandwidth' "$tmp/fast.txt"
  ok $? "parity_et, integrated device: latency and energy printed; gain-bandwidth limited"
  sed -n '/speed/,$p' "$tmp/fast.txt" | sed 's/^/# /'
  "$DAMC" report examples/parity_et.dam -c examples/parity_et.lua --device slow >"$tmp/slow.txt" 2>/dev/null
  grep -q 'limited by            slew rate (slew-limited)' "$tmp/slow.txt"
  ok $? "parity_et, slow device: the report says it is slew-limited"
  "$DAMC" report examples/parity_et.dam -c examples/parity_et.lua --json >"$tmp/f.json" 2>/dev/null
  "$DAMC" report examples/parity_et.dam -c examples/parity_et.lua --device slow --json >"$tmp/s.json" 2>/dev/null
  python3 - "$tmp/f.json" "$tmp/s.json" <<'PY'; ok $? "parity_et: the slow device's latency is its slew-limited tau times the same settle time"
import json, sys
f, s = (json.loads(open(p).read()) for p in sys.argv[1:3])
print(f"# latency integrated {f['latency']:.3g} s, slow {s['latency']:.3g} s")
good = s["latency"] > 1000 * f["latency"] and abs(s["tau_min_usable"] - 10 * s["tau_sr"]) <= 1e-12 * s["tau_sr"] \
    and s["settle_time"] == f["settle_time"]
sys.exit(0 if good else 1)
PY
else
  for i in 1 2 3; do n=$((n+1)); echo "ok $n # SKIP $W is absent"; done
fi

"$DAMC" report examples/dense_family.dam --sweep N=8,32 --json >"$tmp/sw.jsonl" 2>"$tmp/sw.err"
python3 - "$tmp/sw.jsonl" <<'PY'; ok $? "sweep: one line per size; crosspoints and amplifiers grow with N, settle time in tau units stays within 2x"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
good = len(r) == 2 and r[0]["sweep"] == "N=8" and r[1]["crosspoints"] == 4 * r[0]["crosspoints"] \
    and r[1]["amplifiers"] > r[0]["amplifiers"] and r[1]["settle_tau"] < 2 * r[0]["settle_tau"]
for x in r:
    print(f"# {x['sweep']}: {x['neurons']} neurons, settle {x['settle_tau']:.3g} tau, latency {x['latency']:.3g} s")
sys.exit(0 if good else 1)
PY
"$DAMC" report examples/xor.dam -c examples/xor.lua --device nosuch >/dev/null 2>"$tmp/e"
[ $? = 1 ] && grep -q "unknown device profile 'nosuch'" "$tmp/e"
ok $? "report with an unknown profile: error, exit 1"
echo "1..$n"
