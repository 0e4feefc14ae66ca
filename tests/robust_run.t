#!/usr/bin/env bash
# robust_run.t - `damc run` never reports a wrong or non-finite answer as ok
# (issue 10):
#  - non-finite inputs (0/0, 1/0, 1e400) from a Lua config are refused before
#    anything runs, located at the line of `dataset` / `inputs` / `params`,
#    exit 1 and nothing on stdout; the command line and dataset files keep
#    their own messages ("expected a number, found 'nan'");
#  - a fixed step that the leak of a free layer makes unstable (Euler
#    dt >= 2 tau, RK4 dt >= 2.785 tau) is refused with the layer, its tau,
#    the bound and the way out (--solver dopri5 / expeuler); exponential
#    Euler and dopri5 are not refused, nor a layer that is entirely clamped;
#  - no output prints nan or inf as a value (text table, JSON, CSV trace,
#    messages): a run whose energy becomes non-finite has status "nan",
#    its table cells read "n/a", its JSON numbers null, its CSV fields are
#    empty, and the exit status is 3.
# Each check prints what it observed.
set -u
DAMC=${DAMC:-build/damc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
# run NAME damc-args...: stdout, stderr and exit status into $tmp/NAME.{out,err,st}
run() {
  local name=$1; shift
  "$DAMC" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.st"
}
# check NAME WANT_STATUS 'stderr text' [stdout-empty]: status, a line of stderr, no nan/inf
check() {
  local name=$1 want=$2 text=$3 empty=${4:-}
  local st; st=$(cat "$tmp/$name.st")
  n=$((n+1))
  local why=""
  [ "$st" = "$want" ] || why="$why exit $st, want $want;"
  [ -z "$text" ] || grep -qF -- "$text" "$tmp/$name.err" || why="$why stderr lacks the text;"
  [ -z "$empty" ] || [ ! -s "$tmp/$name.out" ] || why="$why stdout not empty;"
  ! grep -qE "Sanitizer|runtime error|Segmentation" "$tmp/$name.err" || why="$why sanitizer report;"
  if python3 - "$tmp/$name.out" "$tmp/$name.err" <<'PY'; then :; else why="$why nan/inf printed;"; fi
import re, sys
bad = re.compile(r"(?i)(?<![\w.])[-+]?(nan|inf|infinity)(?![\w])")
out, err = sys.argv[1], sys.argv[2]
for line in open(out):
    # the status of a run is a name, not a value: "status":"nan", or the
    # second column of a table row
    line = line.replace('"status":"nan"', "")
    line = re.sub(r"^(\s*\d+\s+)nan\b", r"\1", line)
    if bad.search(line):
        sys.exit(1)
for line in open(err):
    # diagnostics only (not the echoed source lines), without the file name
    # and without the user's own text they quote ("found 'nan'")
    m = re.search(r"(error|warning|note): (.*)", line)
    if m and bad.search(re.sub(r"'[^']*'", "", m.group(2))):
        sys.exit(1)
PY
  if [ -z "$why" ]; then
    echo "ok $n - $name: exit $want${text:+: $text}"
  else
    echo "not ok $n - $name:$why"
  fi
  sed 's/^/#   /' "$tmp/$name.err" | head -6
  [ ! -s "$tmp/$name.out" ] || sed 's/^/#   out: /' "$tmp/$name.out" | head -3
}
echo "1..29"

# ---- 2. non-finite inputs from a Lua config ------------------------------------
printf -- '-- three bad rows\ndataset = { {0/0,1}, {1/0,0}, {1,1e400} }\n' >"$tmp/n.lua"
run lua_nan run examples/xor.dam -c "$tmp/n.lua" --json
check lua_nan 1 "$tmp/n.lua:2:1: error: dataset row 1 element 1 is not a number (inputs must be finite)" empty
printf 'dataset = {\n  {1, 0},\n  {1, -1/0},\n}\n' >"$tmp/neg.lua"
run lua_inf run examples/xor.dam -c "$tmp/neg.lua"
check lua_inf 1 "$tmp/neg.lua:4:1: error: dataset row 2 element 2 is infinite (inputs must be finite)" empty
printf 'dataset = function() return { {1, 1e400} } end\n' >"$tmp/fn.lua"
run lua_fn run examples/xor.dam -c "$tmp/fn.lua"
check lua_fn 1 "$tmp/fn.lua:1:1: error: dataset row 1 element 2 is infinite (inputs must be finite)" empty
printf 't_end = 5\ninputs = { bits = {1, 0/0} }\n' >"$tmp/in.lua"
run lua_inputs run examples/xor.dam -c "$tmp/in.lua"
check lua_inputs 1 "$tmp/in.lua:2:1: error: inputs.bits element 2 is not a number (inputs must be finite)" empty
printf 'inputs = { tok = {0/0, 0, 0, 0, 0, 0, 0, 0} }\n' >"$tmp/tok.lua"
run lua_tok run examples/parity_et.dam -c "$tmp/tok.lua"
check lua_tok 1 "$tmp/tok.lua:1:1: error: inputs.tok element 1 is not a number (inputs must be finite)" empty
printf 'params = { beta = 0/0 }\ninputs = { bits = {1, 0} }\n' >"$tmp/par.lua"
run lua_param run examples/xor.dam -c "$tmp/par.lua"
check lua_param 1 "$tmp/par.lua:1:1: error: params.beta is not a number (a param must be a finite number or a string)" empty
printf 'dt = math.huge\ninputs = { bits = {1, 0} }\n' >"$tmp/dt.lua"
run lua_dt run examples/xor.dam -c "$tmp/dt.lua"
check lua_dt 1 "$tmp/dt.lua:1:1: error: 'dt' must be a finite number, got an infinite one" empty
printf 'dt = 1e-320\ninputs = { bits = {1, 0} }\n' >"$tmp/tiny.lua"
run lua_tiny run examples/xor.dam -c "$tmp/tiny.lua"
check lua_tiny 1 "damc: error: t_end / dt = 1 / 9.99989e-321 steps is too many" empty
# the command line and dataset files refuse the same values with their messages
run cli_nan run examples/xor.dam --input bits=nan,0
check cli_nan 1 "damc: error: --input bits: expected a number, found 'nan'" empty
printf '1 0\n1 inf\n' >"$tmp/rows.txt"
run file_inf run examples/xor.dam --dataset "$tmp/rows.txt"
check file_inf 1 "$tmp/rows.txt:2:3: error: expected a number, found 'inf'" empty

# ---- 4. fixed steps the leak makes unstable ------------------------------------------
run euler10 run examples/xor.dam --input bits=1,0 --dt 10 --t-end 5
check euler10 1 "damc: error: solver 'euler' is unstable with one step of t_end = 5 on layer 'h' (tau = 0.1): its leak is stable only for dt < 0.2 (2 tau)" empty
check euler10 1 "damc: note: use a --dt well below it (the couplings make steps near it unstable too), or --solver dopri5 (adaptive step) or --solver expeuler (exact on the leak)" empty
run euler02 run examples/xor.dam --input bits=1,0 --dt 0.2 --t-end 5
check euler02 1 "damc: error: solver 'euler' is unstable with dt = 0.2 on layer 'h' (tau = 0.1): its leak is stable only for dt < 0.2 (2 tau)" empty
run rk4 run examples/xor.dam --input bits=1,0 --dt 0.28 --t-end 5 --solver rk4
check rk4 1 "damc: error: solver 'rk4' is unstable with dt = 0.28 on layer 'h' (tau = 0.1): its leak is stable only for dt < 0.278529 (2.785 tau)" empty
printf 'solver = "euler"\ndt = 0.5\nt_end = 5\ninputs = { bits = {1, 0} }\n' >"$tmp/big.lua"
run lua_big run examples/xor.dam -c "$tmp/big.lua"
check lua_big 1 "damc: error: solver 'euler' is unstable with dt = 0.5 on layer 'h' (tau = 0.1)" empty
run huge run examples/xor.dam --input bits=1,0 --dt 1e308 --t-end 1e308
check huge 1 "damc: error: solver 'euler' is unstable with dt = 1e+308 on layer 'h'" empty
# stable steps, and the solvers that are not leak-limited, still run
run euler015 run examples/xor.dam --input bits=1,0 --dt 0.15 --t-end 5
check euler015 0 ""
run expeuler run examples/xor.dam --input bits=1,0 --dt 10 --t-end 5 --solver expeuler
check expeuler 0 ""
run dopri5 run examples/xor.dam --input bits=1,0 --dt 10 --t-end 5 --solver dopri5 --json
check dopri5 0 ""
# a fast layer held entirely by clamps does not limit the step; partly held, it does
cat >"$tmp/fastin.dam" <<'EOF'
import "lagrangians"
input bits[2]
layer u[2] : identity       tau = 0.001
layer v[3] : identity       tau = 1.0
layer h[4] : softmax(8)     tau = 0.1
weights xi : h -- v = [[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]]
weights wu : h -- u = [[0, 0], [0, 0], [0, 0], [0, 0]]
bias h[mu] = -0.5 * sum(i, xi[mu, i]^2)
clamp u = bits
clamp v[0:2] = bits
init  v = [0, 0, 0.5]
output y = v[2]
EOF
sed 's/^clamp u = bits/clamp u[0:1] = [1]/' "$tmp/fastin.dam" >"$tmp/fastfree.dam"
run clamped run "$tmp/fastin.dam" --input bits=1,0 --dt 0.01 --t-end 5
check clamped 0 ""
run halfclamped run "$tmp/fastfree.dam" --input bits=1,0 --dt 0.01 --t-end 5
check halfclamped 1 "damc: error: solver 'euler' is unstable with dt = 0.01 on layer 'u' (tau = 0.001): its leak is stable only for dt < 0.002 (2 tau)" empty

# ---- 5. non-finite results: status, n/a, null, empty CSV fields ----------------------
run big_text run examples/xor.dam --input bits=1e200,0 --t-end 1 --trace "$tmp/big.csv"
check big_text 3 ""
run big_json run examples/xor.dam --input bits=1e200,0 --t-end 1 --json
check big_json 3 ""
cat >"$tmp/grow.dam" <<'EOF'
# one neuron with a self-coupling of 2: tau dv/dt = 2 v - v, v = e^t
import "lagrangians"
input x0[1]
layer v[1] : identity  tau = 1.0  init = x0
weights w : v[a] -- v[b] = 2
output y = v[0]
EOF
run grow run "$tmp/grow.dam" --input x0=1 --t-end 400 --diverge-limit 1e308
check grow 3 ""
run diverged run examples/xor.dam --input bits=1e308,0 --t-end 1
check diverged 3 ""
python3 - "$tmp" "$n" <<'PY'
import json, re, sys
d = sys.argv[1]
n = int(sys.argv[2])
def ok(cond, what):
    global n; n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
def row(name):
    lines = open(f"{d}/{name}.out").read().splitlines()
    return lines[1].split() if len(lines) > 1 else []
t = row("big_text")
ok(t[1:4] == ["nan", "n/a", "n/a"] and "(the energy is not a number at t = 0)" in " ".join(t),
   f"inputs 1e200: text row {' '.join(t)!r}: status nan, energies n/a, the message in words")
def no_constants(s):
    raise ValueError(s)
try:
    j = json.loads(open(f"{d}/big_json.out").read(), parse_constant=no_constants)
except ValueError as e:
    j = {"error": str(e)}
ok(j.get("status") == "nan" and j.get("energy_start") is None and j.get("energy_end") is None
   and j.get("message") == "the energy is not a number at t = 0",
   f"inputs 1e200: JSON status {j.get('status')!r}, energies {j.get('energy_start')!r} "
   f"{j.get('energy_end')!r}, message {j.get('message')!r}")
csv = open(f"{d}/big.csv").read().splitlines()
last = csv[-1].split(",") if csv else []
ok(len(csv) >= 2 and last[-1] == "" and not re.search(r"(?i)\b(nan|inf)", "\n".join(csv)),
   f"inputs 1e200: CSV trace of {len(csv)} lines, energy field of the last row {last[-1:]!r} (empty)")
g = row("grow")
ok(g[1:2] == ["nan"] and g[3] == "n/a" and re.search(r"\(the energy is infinite at t = 354\.\d+\)", " ".join(g)),
   f"e^t growth past 1e154: text row {' '.join(g)!r}")
PY