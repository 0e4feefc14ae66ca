#!/usr/bin/env bash
# sweep.t - damc sweep: the XOR grid of examples/xor_sweep.lua (8 betas x 7
# tau ratios x 4 inputs = 224 runs) gives the XOR truth table where it should
# and not where the memory is too soft; the same bytes twice, on one thread
# and under mpirun -n 2; a sweep stopped (--stop-after) or killed (kill -9)
# halfway resumes from its .part to the same bytes, dropping a truncated last
# line; a .part of another sweep is refused; a random sample is reproducible
# and inside its ranges; bad sweeps (unknown name, empty grid or axis, dataset
# rows of the wrong width) exit 1 with a located message and leave no file.
set -u
DAMC=${DAMC:-build/damc}
DAM_BUILD=${DAM_BUILD:-$(dirname "$DAMC")}
export DAMC_STDLIB=$PWD/stdlib
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap '[ -n "$bg" ] && kill -9 $bg 2>/dev/null; rm -rf "$tmp"' EXIT
bg=
n=0
count() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
skip() { n=$((n+1)); echo "ok $n # SKIP $1"; }
echo "1..28"
M=examples/xor.dam
S=examples/xor_sweep.lua

# --- the XOR grid ------------------------------------------------------------
"$DAMC" sweep $M -c $S -o "$tmp/a.jsonl" 2>"$tmp/a.err"; s=$?
ok $s "xor sweep exits 0 (got $s)"
[ -f "$tmp/a.jsonl" ] && [ ! -e "$tmp/a.jsonl.part" ]; ok $? "the output is renamed from its .part when complete"
[ ! -s "$tmp/a.err" ]; ok $? "nothing on stderr when it is not a terminal"
python3 - "$tmp/a.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
n = 3
def ok(c, what):
    global n; n += 1
    print(("ok" if c else "not ok") + f" {n} - {what}")
ok(len(runs) >= 200 and len(runs) == 224, f"224 runs (8 betas x 7 ratios x 4 rows), got {len(runs)}")
ok([r["run"] for r in runs] == list(range(len(runs))) and
   [r["row"] for r in runs] == [i % 4 for i in range(len(runs))] and
   len({r["sweep"] for r in runs}) == 1, "runs in index order, rows innermost, one sweep hash")
betas = [1, 2, 4, 6, 8, 12, 16, 32]
ratios = [0.02, 0.05, 0.1, 0.2, 0.5, 1, 2]
want = [(b, t) for b in betas for t in ratios]
got = [(r["params"]["beta"], r["params"]["tau_ratio"]) for r in runs[::4]]
ok(got == want, "points in grid order: beta outer, tau_ratio inner")
def err(r):
    b = r["inputs"]["bits"]
    return abs(r["outputs"]["y"][0] - (int(b[0]) ^ int(b[1])))
at = [r for r in runs if r["params"] == {"beta": 8, "tau_ratio": 0.1}]
e = max(map(err, at)) if at else 1
ok(len(at) == 4 and e < 0.05 and all(r["status"] == "ok" for r in at),
   f"beta = 8, tau ratio 0.1: all four inputs within 0.05 of XOR (max err {e:.2e})")
strong = max(err(r) for r in runs if r["params"]["beta"] >= 8)
soft = min(err(r) for r in runs if r["params"]["beta"] == 1)
ok(strong < 0.05 and soft > 0.4, f"beta >= 8 solves XOR (max err {strong:.3f}), beta = 1 does not "
   f"(min err {soft:.3f})")
worse = all(max(err(r) for r in runs if r["params"] == {"beta": b, "tau_ratio": ratios[i + 1]}) >=
            max(err(r) for r in runs if r["params"] == {"beta": b, "tau_ratio": ratios[i]}) - 1e-12
            for b in betas for i in range(len(ratios) - 1))
ok(worse and all(r["status"] == "ok" and r["t_end"] == 5 and r["steps"] == 5000 for r in runs),
   "a slower hidden layer never helps at T = 5; every run ok, t_end 5, 5000 Euler steps")
PY
n=9
"$DAMC" run examples/xor.dam -c examples/xor.lua --json >"$tmp/run.jsonl" 2>/dev/null
python3 - "$tmp/a.jsonl" "$tmp/run.jsonl" <<'PY'
import sys
sweep = [l for l in open(sys.argv[1]) if '"params":{"beta":8,"tau_ratio":0.10000000000000001}' in l]
run = open(sys.argv[2]).read().splitlines()
same = len(sweep) == 4 and all(s.split(',"inputs":', 1)[1].rstrip("\n") == r.split(',"inputs":', 1)[1]
                                for s, r in zip(sweep, run))
print(("ok" if same else "not ok") + " 10 - the point beta = 8, ratio 0.1 equals damc run xor.dam, byte for byte")
PY
n=10
"$DAMC" sweep $M -c $S -o "$tmp/b.jsonl" --threads 1 2>/dev/null
cmp -s "$tmp/a.jsonl" "$tmp/b.jsonl"; ok $? "the same bytes again, on one thread"

# --- MPI -----------------------------------------------------------------------
mpi_skip=
if ! command -v mpirun >/dev/null 2>&1; then mpi_skip="mpirun is not installed"
elif "$DAMC" sweep --help | grep -q "without MPI"; then mpi_skip="this damc is built without MPI"
elif [[ "$DAM_BUILD" == *-asan* || "$DAMC" == *-asan* ]]; then mpi_skip="Open MPI is not leak-free under ASan"
fi
if [ -n "$mpi_skip" ]; then
  skip "$mpi_skip"; skip "$mpi_skip"
else
  mpirun -n 2 --oversubscribe --allow-run-as-root "$DAMC" sweep $M -c $S -o "$tmp/m.jsonl" 2>"$tmp/m.err"
  cmp -s "$tmp/a.jsonl" "$tmp/m.jsonl"; ok $? "mpirun -n 2: the same bytes as one process"
  "$DAMC" sweep $M -c $S -o "$tmp/mr.jsonl" --stop-after 100 2>/dev/null
  mpirun -n 2 --oversubscribe --allow-run-as-root "$DAMC" sweep $M -c $S -o "$tmp/mr.jsonl" 2>/dev/null
  cmp -s "$tmp/a.jsonl" "$tmp/mr.jsonl"; ok $? "mpirun -n 2 resumes a single process's .part to the same bytes"
fi

# --- stopped and resumed ---------------------------------------------------------
"$DAMC" sweep $M -c $S -o "$tmp/s.jsonl" --stop-after 30 2>/dev/null; s=$?
lines=$(count "$tmp/s.jsonl.part")
[ $s = 130 ] && [ ! -e "$tmp/s.jsonl" ] && [ "$lines" = 32 ] && head -32 "$tmp/a.jsonl" | cmp -s - "$tmp/s.jsonl.part"
ok $? "--stop-after 30: exit 130 (got $s), no output, the .part holds the first 32 lines (got $lines)"
"$DAMC" sweep $M -c $S -o "$tmp/s.jsonl" 2>"$tmp/s.err"
cmp -s "$tmp/a.jsonl" "$tmp/s.jsonl" && [ ! -e "$tmp/s.jsonl.part" ] && grep -q "resuming .* at run 32 of 224" "$tmp/s.err"
ok $? "restarted: continues at run 32, the same bytes as uninterrupted"

# A slow sweep (T = 300: about 40 ms a run), killed with SIGKILL once two
# units are in its .part, then restarted; a truncated line is added first.
cat >"$tmp/slow.lua" <<'EOF'
solver = "euler"
dt = 1e-3
t_end = 300
dataset = { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } }
outputs = { "y" }
sweep = { grid = { beta = { 4, 8 }, dt = { 1e-3, 2e-3, 5e-4 }, tau_ratio = { 0.1, 0.2, 0.5, 1 } } }
EOF
"$DAMC" sweep $M -c "$tmp/slow.lua" -o "$tmp/full.jsonl" 2>/dev/null
"$DAMC" sweep $M -c "$tmp/slow.lua" -o "$tmp/k.jsonl" 2>/dev/null & bg=$!
for i in $(seq 1 2400); do
  [ "$(count "$tmp/k.jsonl.part")" -ge 24 ] && break
  sleep 0.05
done
kill -9 $bg 2>/dev/null; wait $bg 2>/dev/null; bg=
lines=$(count "$tmp/k.jsonl.part")
[ ! -e "$tmp/k.jsonl" ] && [ "$lines" -ge 24 ] && [ "$lines" -lt 96 ] && head -"$lines" "$tmp/full.jsonl" | cmp -s - "$tmp/k.jsonl.part"
ok $? "kill -9 halfway: the .part holds the first $lines of 96 lines, whole"
printf '{"run":%d,"sweep":"0123' "$lines" >>"$tmp/k.jsonl.part"
"$DAMC" sweep $M -c "$tmp/slow.lua" -o "$tmp/k.jsonl" 2>/dev/null; s=$?
[ $s = 0 ] && cmp -s "$tmp/full.jsonl" "$tmp/k.jsonl"
ok $? "restarted after the kill (truncated last line dropped): exit $s, the same bytes as uninterrupted"

# A .part written by another sweep is refused and left alone.
head -5 "$tmp/a.jsonl" >"$tmp/o.jsonl.part"
cp "$tmp/o.jsonl.part" "$tmp/o.keep"
"$DAMC" sweep $M -c "$tmp/slow.lua" -o "$tmp/o.jsonl" 2>"$tmp/o.err"; s=$?
[ $s = 1 ] && cmp -s "$tmp/o.jsonl.part" "$tmp/o.keep" && [ ! -e "$tmp/o.jsonl" ] &&
  grep -q "o.jsonl.part:1:1: error: this line is not run 0 of this sweep" "$tmp/o.err"
ok $? "a .part of another sweep: exit 1 (got $s), located error, the file untouched"

# --- a random sample -------------------------------------------------------------
cat >"$tmp/r.lua" <<'EOF'
t_end = 2
dataset = { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } }
sweep = {
  random = {
    beta = { min = 2, max = 32, log = true },
    tau_ratio = { min = 0.05, max = 0.5 },
    solver = { "euler", "rk4" },
  },
  samples = 5,
  seed = { 1, 2 },
}
EOF
"$DAMC" sweep $M -c "$tmp/r.lua" >"$tmp/r1" 2>/dev/null
"$DAMC" sweep $M -c "$tmp/r.lua" --threads 1 >"$tmp/r2" 2>/dev/null
cmp -s "$tmp/r1" "$tmp/r2"; ok $? "random sample: the same bytes twice (standard output)"
python3 - "$tmp/r1" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
pts = [r["params"] for r in runs[::4]]
good = (len(runs) == 40 and [r["seed"] for r in runs[::4]] == [1] * 5 + [2] * 5 and
        all(2 <= p["beta"] <= 32 and 0.05 <= p["tau_ratio"] <= 0.5 and p["solver"] in ("euler", "rk4")
            for p in pts) and len({p["beta"] for p in pts}) == 10 and
        all(runs[i]["params"] == runs[i - i % 4]["params"] for i in range(len(runs))))
print(("ok" if good else "not ok") + " 20 - random: 2 seeds x 5 samples x 4 rows, values inside their ranges, "
      "10 distinct betas")
PY
n=20

# --- bad sweeps ---------------------------------------------------------------------
bad() {   # name, expected exit, expected stderr text; the config is $tmp/$1.lua
  "$DAMC" sweep $M -c "$tmp/$1.lua" -o "$tmp/$1.jsonl" 2>"$tmp/$1.err"; local s=$?
  [ $s = 1 ] && [ ! -e "$tmp/$1.jsonl" ] && [ ! -e "$tmp/$1.jsonl.part" ] && grep -qF -- "$2" "$tmp/$1.err"
  local r=$?
  [ $r = 0 ] || { echo "# exit $s, stderr:"; sed 's/^/# /' "$tmp/$1.err"; }
  ok $r "$3"
}
cat >"$tmp/unknown.lua" <<'EOF'
t_end = 1
dataset = { { 0, 0 }, { 1, 1 } }
sweep = {
  grid = {
    beta = { 4, 8 },
    gamma = { 1, 2 },
  },
}
EOF
bad unknown "unknown.lua:6:5: error: unknown sweep parameter 'gamma': not a param of $M (params: beta, tau_v, tau_ratio) nor a run option" \
  "unknown name: exit 1, located at its key, no output"
printf 't_end = 1\ndataset = { { 0, 0 } }\nsweep = { grid = {} }\n' >"$tmp/empty.lua"
bad empty "empty.lua:3:11: error: the grid is empty: give at least one NAME = { V1, V2, ... }" \
  "empty grid: exit 1, located, no output"
printf 't_end = 1\ndataset = { { 0, 0 } }\nsweep = {\n  grid = { beta = { 4 }, tau_ratio = {} },\n}\n' >"$tmp/emptyax.lua"
bad emptyax "emptyax.lua:4:26: error: grid.tau_ratio is empty: give it at least one value" \
  "empty axis: exit 1, located, no output"
printf 't_end = 1\ndataset = {\n  { 0, 0, 1 },\n  { 1, 1, 0 },\n}\nsweep = { grid = { beta = { 4, 8 } } }\n' >"$tmp/wide.lua"
bad wide "wide.lua:3:3: error: dataset row 1 has 3 values, but the inputs (bits[2]) take 2" \
  "dataset rows of the wrong width: exit 1, located at the first row, no output"
printf 't_end = 1\ndataset = {\n  { 0, 0 },\n  { 1, 1, 0 },\n}\nsweep = { grid = { beta = { 4, 8 } } }\n' >"$tmp/ragged.lua"
bad ragged "ragged.lua:5:1: error: dataset row 2 has 3 values, expected 2 (like row 1)" \
  "one dataset row of the wrong width: exit 1, located, no output"
printf 't_end = 1\ndataset = { { 0, 0 } }\nsweep = { grid = { solver = { "euler", "rk5" } } }\n' >"$tmp/solver.lua"
bad solver "solver.lua:3:20: error: solver value 2 must be one of" "unknown solver in the grid: exit 1, located"
printf 't_end = 1\ndataset = { { 0, 0 } }\nsweep = { grid = { tau_v = { 1, -1 } } }\n' >"$tmp/point.lua"
bad point "note: in the sweep point tau_v = -1" "a point the front end refuses: exit 1, the point named, no output"
printf 't_end = 1\ndataset = { { 0, 0 } }\nsweep = { random = { beta = { min = 1, max = 2 } } }\n' >"$tmp/nosamples.lua"
bad nosamples "nosamples.lua:3:1: error: a random sweep needs sweep.samples" "random without samples: exit 1, located"
