#!/usr/bin/env bash
# run_solvers.t - the solvers agree within their error estimates.
# XOR input (1,0) to T = 5 and the first 3 parity inputs to T = 1:
#  - the reference is forward Euler at dt = 1e-5; its error is estimated by
#    Richardson, err(dt) ~ |y(dt) - y(2 dt)| (Euler is first order);
#  - dopri5 (rtol 1e-9, atol 1e-12) must match the reference within
#    3 * err_euler(1e-5) + 1e-6;
#  - RK4 at dt = 1e-3 must match dopri5 within 1e-6 (its error is O(dt^4));
#  - Euler at dt = 1e-3 must match dopri5 within 3 * |y(1e-3) - y(2e-3)|.
# Observed deviations are printed as diagnostics.
set -u
DAMC=${DAMC:-build/damc}
pub=../shared/data/published/analog-denseam-parity
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
head -3 $pub/parity_data_test_X.txt >"$tmp/three.txt"
xor() { "$DAMC" run examples/xor.dam --input bits=1,0 --t-end 5 --json "$@"; }
par() { "$DAMC" run examples/parity_et.dam -D weights=$pub/model_best.npz --dataset "$tmp/three.txt" --t-end 1 --json "$@"; }
for m in xor par; do
  $m --solver euler --dt 1e-5 >"$tmp/$m.e5" 2>>"$tmp/err"
  $m --solver euler --dt 2e-5 >"$tmp/$m.e2e5" 2>>"$tmp/err"
  $m --solver euler --dt 1e-3 >"$tmp/$m.e3" 2>>"$tmp/err"
  $m --solver euler --dt 2e-3 >"$tmp/$m.e2e3" 2>>"$tmp/err"
  $m --solver rk4 --dt 1e-3 >"$tmp/$m.rk4" 2>>"$tmp/err"
  $m --solver dopri5 --rtol 1e-9 --atol 1e-12 >"$tmp/$m.dp" 2>>"$tmp/err"
  $m --solver expeuler --dt 1e-4 >"$tmp/$m.xe" 2>>"$tmp/err"
done
python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
def outs(name):
    vals = []
    for l in open(f"{d}/{name}"):
        r = json.loads(l)
        assert r["status"] == "ok", r
        for v in r["outputs"].values():
            vals.extend(v)
    assert vals, f"{name}: no results"
    return vals
def dev(a, b):
    return max(abs(x - y) for x, y in zip(a, b)) if a and len(a) == len(b) else float("inf")
n = 0
def ok(cond, what):
    global n; n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
print("1..10")
for m in ("xor", "par"):
    try:
        e5, e2e5, e3, e2e3, rk4, dp, xe = (outs(f"{m}.{k}") for k in ("e5", "e2e5", "e3", "e2e3", "rk4", "dp", "xe"))
    except Exception as ex:
        for _ in range(5): ok(False, f"{m}: runs failed: {ex}")
        continue
    err5 = dev(e5, e2e5)
    err3 = dev(e3, e2e3)
    print(f"# {m}: Euler error estimates: dt=1e-5 {err5:.3e}, dt=1e-3 {err3:.3e}")
    tol = 3 * err5 + 1e-6
    ok(dev(dp, e5) <= tol, f"{m}: dopri5 vs Euler dt=1e-5: max dev {dev(dp, e5):.3e} (tol {tol:.3e})")
    ok(dev(rk4, dp) <= 1e-6, f"{m}: RK4 dt=1e-3 vs dopri5: max dev {dev(rk4, dp):.3e} (tol 1e-6)")
    tol3 = 3 * err3 + 1e-9
    ok(dev(e3, dp) <= tol3, f"{m}: Euler dt=1e-3 vs dopri5: max dev {dev(e3, dp):.3e} (tol {tol3:.3e})")
    ok(err5 < err3 / 50, f"{m}: Euler error shrinks ~linearly with dt ({err3:.3e} -> {err5:.3e})")
    # exponential Euler is first order: its error at dt=1e-4 ~ err3 / 10.
    ok(dev(xe, dp) <= err3 + 1e-6, f"{m}: exp-Euler dt=1e-4 vs dopri5: max dev {dev(xe, dp):.3e} (tol {err3 + 1e-6:.3e}, 10x its expected error)")
PY
