#!/usr/bin/env bash
# run_errors.t - bad inputs to `damc run` give a located diagnostic and exit
# status 1 (2 for usage errors), never a crash: wrong number of values,
# unknown input name, token index out of range, malformed dataset rows, Lua
# config errors, the Lua instruction limit, Lua reaching for os/io.  The
# exact diagnostic text is checked.
set -u
DAMC=${DAMC:-build/damc}
pub=../shared/data/published/analog-denseam-parity
W="-D weights=$pub/model_best.npz"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
# expect STATUS 'TEXT' -- damc args...: exit status and a line of stderr.
expect() {
  local want=$1 text=$2; shift 3
  "$DAMC" "$@" >"$tmp/out" 2>"$tmp/err"
  local st=$?
  n=$((n+1))
  if [ $st = "$want" ] && grep -qF -- "$text" "$tmp/err" && ! grep -qE "Sanitizer|runtime error|Segmentation" "$tmp/err"; then
    echo "ok $n - exit $want: $text"
  else
    echo "not ok $n - exit $want: $text (got exit $st)"
    sed 's/^/#   /' "$tmp/err" | head -8
  fi
}
# caret LINE_NO: the line after the diagnostic is the source, then a caret.
caret_at() {
  n=$((n+1))
  if python3 - "$tmp/err" "$1" "$2" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
head, col = sys.argv[2], int(sys.argv[3])
i = next((k for k, l in enumerate(lines) if l.startswith(head)), None)
sys.exit(0 if i is not None and i + 2 < len(lines) and lines[i + 2] == " " * (col - 1) + "^" else 1)
PY
  then echo "ok $n - caret under column $2 of $1"; else echo "not ok $n - caret under column $2 of $1"; sed 's/^/#   /' "$tmp/err" | head -6; fi
}
echo "1..29"
expect 1 "damc: error: input 'bits' expects 2 values, got 3" -- run examples/xor.dam --input bits=1,0,1
expect 1 "damc: error: model has no input 'foo' (inputs: bits)" -- run examples/xor.dam --input foo=1
expect 1 "damc: error: input 'bits' is not set (use --input bits=... or --dataset FILE)" -- run examples/xor.dam
expect 1 "damc: error: --input bits: " -- run examples/xor.dam --input bits=1,x
printf '0 1 0 1 1 0 1 1\n1 1 0 2 0 0 1 1\n' >"$tmp/tok.txt"
expect 1 "$tmp/tok.txt:2:7: error: input 'tok' value 2 at position 3 is not a token index in 0..1" -- run examples/parity_et.dam $W --dataset "$tmp/tok.txt"
caret_at "$tmp/tok.txt:2:7:" 7
printf '0 1 0 1 1 0 1 1\n\n# comment\n0, 1, 0.5, 1, 1, 0, 1, 1\n' >"$tmp/frac.txt"
expect 1 "$tmp/frac.txt:4:7: error: input 'tok' value 0.5 at position 2 is not a token index in 0..1" -- run examples/parity_et.dam $W --dataset "$tmp/frac.txt"
printf '1 0\n1 x0\n' >"$tmp/bad.txt"
expect 1 "$tmp/bad.txt:2:3: error: " -- run examples/xor.dam --dataset "$tmp/bad.txt"
caret_at "$tmp/bad.txt:2:3:" 3
printf '1 0\n1 0 1\n' >"$tmp/long.txt"
expect 1 "$tmp/long.txt:2:1: error: row has 3 values, expected 2" -- run examples/xor.dam --dataset "$tmp/long.txt"
expect 1 "damc: note: a row holds the values of the inputs bits[2], in that order" -- run examples/xor.dam --dataset "$tmp/long.txt"
expect 1 "cannot read dataset '$tmp/none.txt'" -- run examples/xor.dam --dataset "$tmp/none.txt"
printf 'dt = 1e-3\nt_end = = 2\n' >"$tmp/syntax.lua"
expect 1 "$tmp/syntax.lua:2:1: error: unexpected symbol near '='" -- run examples/xor.dam -c "$tmp/syntax.lua"
printf 'solver = "rk4"\n  dt = "small"\n' >"$tmp/type.lua"
expect 1 "$tmp/type.lua:2:3: error: 'dt' must be a number, got string" -- run examples/xor.dam -c "$tmp/type.lua"
caret_at "$tmp/type.lua:2:3:" 3
printf 'dt = 1e-3\nwhile true do end\n' >"$tmp/loop.lua"
expect 1 "$tmp/loop.lua:2:1: error: instruction limit exceeded" -- run examples/xor.dam -c "$tmp/loop.lua"
printf 'dt = 1e-3\nos.execute("touch %s/pwned")\n' "$tmp" >"$tmp/os.lua"
expect 1 "$tmp/os.lua:2:1: error: attempt to index a nil value (global 'os')" -- run examples/xor.dam -c "$tmp/os.lua"
n=$((n+1)); if [ ! -e "$tmp/pwned" ]; then echo "ok $n - os.execute did not run"; else echo "not ok $n - os.execute ran"; fi
printf 'local p = io.popen("id")\n' >"$tmp/io.lua"
expect 1 "$tmp/io.lua:1:1: error: attempt to index a nil value (global 'io')" -- run examples/xor.dam -c "$tmp/io.lua"
printf 'outputs = { "z" }\ninputs = { bits = {1, 0} }\n' >"$tmp/out.lua"
expect 1 "damc: error: model has no output 'z' (outputs: y)" -- run examples/xor.dam -c "$tmp/out.lua"
printf 'solver = "leapfrog"\ninputs = { bits = {1, 0} }\n' >"$tmp/solver.lua"
expect 1 "damc: error: unknown solver 'leapfrog' (solvers: euler, rk4, dopri5, expeuler)" -- run examples/xor.dam -c "$tmp/solver.lua"
expect 1 "cannot read config file '$tmp/none.lua'" -- run examples/xor.dam -c "$tmp/none.lua"
expect 1 "error: " -- run examples/parity_et.dam -D weights=$tmp/none.npz --input tok=0,1,0,1,0,1,0,1
expect 1 "error: trace file '$tmp/t.txt' must end in .csv or .npy" -- run examples/xor.dam --input bits=1,0 --trace "$tmp/t.txt"
expect 2 "damc run: unknown option '--frobnicate'" -- run examples/xor.dam --frobnicate
expect 2 "damc run: no model given" -- run
expect 2 "damc run: unknown solver 'leapfrog'" -- run examples/xor.dam --solver leapfrog
expect 2 "damc run: --dt expects a non-negative number, got 'abc'" -- run examples/xor.dam --dt abc
expect 2 "damc run: --threads expects a number in 0..1024, got '-1'" -- run examples/xor.dam --threads -1
