#!/usr/bin/env bash
# run_docs.t - the Lua config example in docs/cli.md works as documented:
# XOR with RK4 and a steady-state stop gives the XOR truth table, every run
# converges before t_end and reports when.
set -u
DAMC=${DAMC:-build/damc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
awk '/<!-- example: run.lua -->/{f=1; next} f && /^```lua/{g=1; next} g && /^```/{exit} g' docs/cli.md >"$tmp/run.lua"
"$DAMC" run examples/xor.dam -c "$tmp/run.lua" >"$tmp/out" 2>"$tmp/err"
status=$?
python3 - "$tmp/out" "$status" "$tmp/run.lua" <<'PY'
import json, sys
n = 0
def ok(cond, what):
    global n; n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
print("1..5")
ok("solver" in open(sys.argv[3]).read(), "example extracted from docs/cli.md")
ok(sys.argv[2] == "0", f"exit status 0 (got {sys.argv[2]})")
runs = [json.loads(l) for l in open(sys.argv[1])]
ok(len(runs) == 4, f"json = true in the config: 4 JSON lines (got {len(runs)})")
errs = [abs(r["outputs"]["y"][0] - (int(r["inputs"]["bits"][0]) ^ int(r["inputs"]["bits"][1]))) for r in runs]
ok(runs and max(errs) < 0.05, f"XOR truth table, max err {max(errs or [1]):.2e} (tol 0.05)")
ok(runs and all(r["t_converged"] is not None and r["t_converged"] < 20 for r in runs),
   "steady stop: t_converged " + ", ".join(str(r["t_converged"]) for r in runs))
PY
