#!/usr/bin/env bash
# run_hamming.t - `damc run` on Hamming(7,4) (paper Sec. 5.2) with
# examples/hamming74.lua: all 16 codewords x 7 single-bit flips (112 rows, a
# Lua function builds them) are corrected: v(T) rounded to bits equals the
# codeword, and every bit is within 0.1 of it; the energy never increases.
set -u
DAMC=${DAMC:-build/damc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$DAMC" run examples/hamming74.dam -c examples/hamming74.lua --json >"$tmp/out.json" 2>"$tmp/err"
status=$?
python3 - "$tmp/out.json" "$status" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
status = int(sys.argv[2])
n = 0
def ok(cond, what):
    global n; n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
def codeword(k):
    d1, d2, d3, d4 = (k >> 3) & 1, (k >> 2) & 1, (k >> 1) & 1, k & 1
    return [d1, d2, d3, d4, d2 ^ d3 ^ d4, d1 ^ d3 ^ d4, d1 ^ d2 ^ d4]
print("1..7")
ok(status == 0, f"exit status 0 (got {status})")
ok(len(runs) == 112, f"112 runs (got {len(runs)})")
corrected, worst, rows_ok = 0, 0.0, True
for i, r in enumerate(runs):
    c = codeword(i // 7)
    flipped = list(c); flipped[i % 7] ^= 1
    rows_ok &= [int(x) for x in r["inputs"]["word"]] == flipped
    code = r["outputs"]["code"]
    worst = max(worst, max(abs(a - b) for a, b in zip(code, c)))
    corrected += [round(x) for x in code] == c
ok(rows_ok, "row i is codeword i//7 with bit i%7 flipped")
ok(corrected == 112, f"{corrected}/112 single-bit errors corrected")
ok(worst < 0.1, f"max |code - codeword| = {worst:.3e} (tol 0.1)")
ok(all(r["energy_rise"] == 0 for r in runs), "energy never increases (max rise %g)" % max([r["energy_rise"] for r in runs] or [0]))
ok(all(r["status"] == "ok" for r in runs), "all runs ok")
PY
