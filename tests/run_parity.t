#!/usr/bin/env bash
# run_parity.t - the published parity Analog ET checkpoint (DESIGN.md):
# Euler dt 1e-3, T = 1 gets 52/52 on the validation split (argmax of the
# logits vs parity_data_test_y.txt) and every input starts at the same energy
# (v(0) = 0, hidden states at their biases: the energy does not depend on the
# tokens); at T = 4 some inputs diverge: status "diverged", a message naming
# the layer and the time, exit status 3.  In every output, every value
# (inputs, outputs, energies, t_end, energy_rise) is a finite number: not
# null (what the JSON writer prints for a non-finite number), not a NaN or
# Infinity literal, and no run at T = 1 or from the config is anything but
# "ok" (diverged runs stop at a finite state, so they have no null either).
# The example config examples/parity_et.lua gives the same 52/52.
set -u
DAMC=${DAMC:-build/damc}
pub=../shared/data/published/analog-denseam-parity
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$DAMC" run examples/parity_et.dam -D weights=$pub/model_best.npz --dataset $pub/parity_data_test_X.txt \
  --solver euler --dt 1e-3 --t-end 1 --json >"$tmp/t1.json" 2>"$tmp/t1.err"
s1=$?
"$DAMC" run examples/parity_et.dam -D weights=$pub/model_best.npz --dataset $pub/parity_data_test_X.txt \
  --t-end 4 --json >"$tmp/t4.json" 2>"$tmp/t4.err"
s4=$?
"$DAMC" run examples/parity_et.dam -D weights=$pub/model_best.npz --dataset $pub/parity_data_test_X.txt \
  --t-end 4 --check-every 1 --json >"$tmp/t4e.json" 2>/dev/null
"$DAMC" run examples/parity_et.dam -c examples/parity_et.lua --json >"$tmp/cfg.json" 2>"$tmp/cfg.err"
sc=$?
python3 - "$tmp" "$s1" "$s4" "$sc" "$pub/parity_data_test_y.txt" <<'PY'
import json, sys
d, s1, s4, sc, ypath = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
labels = [int(l) for l in open(ypath) if l.strip()]
def literal(s):
    raise ValueError(f"non-finite literal {s}")
parse_errors = []
def load(name):
    # NaN / Infinity / -Infinity literals (or a bare nan) are an error, not a float
    runs = []
    for k, l in enumerate(open(f"{d}/{name}")):
        try:
            runs.append(json.loads(l, parse_constant=literal))
        except ValueError as e:
            parse_errors.append(f"{name} line {k + 1}: {e}")
    return runs
n = 0
def ok(cond, what):
    global n; n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
def correct(runs):
    def predicted(r):
        l = r["outputs"]["logits"]
        if not all(isinstance(v, (int, float)) for v in l):
            return None                        # a null logit predicts nothing
        return 1 if l[1] > l[0] else 0
    return sum(1 for r, y in zip(runs, labels) if predicted(r) == y)
def bad_values(runs):
    """(run index, key) of every value that is null or not a finite number."""
    bad = []
    for r in runs:
        vals = [("energy_start", r.get("energy_start")), ("energy_end", r.get("energy_end")),
                ("t_end", r.get("t_end")), ("energy_rise", r.get("energy_rise"))]
        for k, arr in list(r.get("outputs", {}).items()) + list(r.get("inputs", {}).items()):
            vals += [(k, v) for v in (arr if isinstance(arr, list) else [arr])]
        bad += [(r.get("index"), k) for k, v in vals
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)]
    return bad
import math
print("1..14")
t1, t4, cfg = load("t1.json"), load("t4.json"), load("cfg.json")
ok(not parse_errors, f"the three outputs are strict JSON, no NaN or Infinity literal ({parse_errors[:3]})")
ok(s1 == 0, f"T = 1: exit status 0 (got {s1})")
ok(len(t1) == 52 and len(labels) == 52, f"52 runs (got {len(t1)})")
ok(correct(t1) == 52, f"T = 1: {correct(t1)}/52 correct")
es = [r["energy_start"] for r in t1]
spread = max(es) - min(es) if es else float("nan")
ok(es and spread == 0, f"same energy_start for every input ({es[0] if es else None}, spread {spread})")
ok(all(r["status"] == "ok" for r in t1), "T = 1: all runs ok: " + str(sorted({r["status"] for r in t1})))
b1 = bad_values(t1)
ok(len(t1) == 52 and not b1, f"T = 1: every input, output and energy of the 52 runs is a finite number (bad: {b1[:5]})")
div = [r for r in t4 if r["status"] == "diverged"]
ok(s4 == 3, f"T = 4: exit status 3 (got {s4})")
ok(len(t4) == 52 and len(div) > 0, f"T = 4: {len(div)} of {len(t4)} runs diverged")
import re
msg_ok = all(re.fullmatch(r"layer '[\w.]+' neuron \d+ diverged at t = [0-9.e+-]+", r["message"] or "") for r in div)
ok(msg_ok, "divergence messages name a layer, a neuron and a time: " + (div[0]["message"] if div else "none"))
# The default checks every 40 steps (0.04 here): a divergence is reported at
# the first check after it, within one interval of the step it happens at
# (--check-every 1).
t4e = {r["index"]: r for r in load("t4e.json")}
gap = [r["t_end"] - t4e[r["index"]]["t_end"] for r in div if r["index"] in t4e and t4e[r["index"]]["status"] == "diverged"]
ok(len(gap) == len(div) and all(0 < r["t_end"] <= 4 for r in div) and all(-1e-9 <= g <= 0.04 + 1e-9 for g in gap),
   f"diverged runs stop by T = 4, within one check interval (0.04) of the step it happens at: lag {gap}")
b4 = bad_values(t4)
ok(len(t4) == 52 and not b4 and all(r["status"] in ("ok", "diverged") for r in t4),
   f"T = 4: every value of the ok and the diverged runs is a finite number, no status nan (bad: {b4[:5]}, "
   f"statuses {sorted({r['status'] for r in t4})})")
bc = bad_values(cfg)
ok(sc == 0 and correct(cfg) == 52 and len(cfg) == 52 and not bc and all(r["status"] == "ok" for r in cfg),
   f"examples/parity_et.lua: exit {sc}, {correct(cfg)}/52 correct, all ok, all values finite (bad: {bc[:5]})")
ok([r["outputs"] for r in cfg] == [r["outputs"] for r in t1], "config and flags give identical outputs")
PY
