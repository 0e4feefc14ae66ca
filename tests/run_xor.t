#!/usr/bin/env bash
# run_xor.t - `damc run` on the XOR memory (paper Sec. 5.1) with examples/xor.lua:
# all four inputs settle within 0.05 of a XOR b (tolerance from the paper's
# Figure 2: v3 ends within a few 1e-3 of the bit for beta = 8, T = 5), the
# energy never increases (energy_rise == 0), every run is "ok", exit 0.
set -u
DAMC=${DAMC:-build/damc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$DAMC" run examples/xor.dam -c examples/xor.lua --json >"$tmp/out.json" 2>"$tmp/err"
status=$?
python3 - "$tmp/out.json" "$status" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
status = int(sys.argv[2])
n = 0
def ok(cond, what):
    global n; n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
print("1..9")
ok(status == 0, f"exit status 0 (got {status})")
ok(len(runs) == 4, f"four runs (got {len(runs)})")
worst = 0.0
for r in (runs + [None] * 4)[:4]:
    if r is None:
        ok(False, "missing run"); continue
    a, b = r["inputs"]["bits"]
    y = r["outputs"]["y"][0]
    want = float(int(a) ^ int(b))
    err = abs(y - want)
    worst = max(worst, err)
    ok(err < 0.05 and r["status"] == "ok", f"xor({a:g},{b:g}) = {y:.6f}, want {want:g} (err {err:.2e}, tol 0.05)")
ok(all(r["energy_rise"] == 0 for r in runs), "energy never increases: " + ", ".join(str(r["energy_rise"]) for r in runs))
ok(all(r["energy_end"] <= r["energy_start"] for r in runs), "energy_end <= energy_start")
ok(all(r["steps"] == 5000 and r["t_end"] == 5 for r in runs), "5000 Euler steps to t = 5")
print(f"# worst |y - xor| = {worst:.3e}")
PY
