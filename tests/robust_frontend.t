#!/usr/bin/env bash
# robust_frontend.t - the front end on oversized and odd inputs (issue 10):
# it answers with a located diagnostic, never a crash, a hang or an
# unlocated "out of memory".
#
#   - long flat chains (1+1+...+1, 3e5 and 1e6 terms; * and - too) through
#     check, derive, --dump-ast, -D and the init list of a runnable model;
#     exactly AST_MAX_OPS (10000) operators are accepted with the right value;
#     a chain of 3000 distinct terms is lowered in one n-ary node (it used to
#     take cubic time) and evaluates to the right value;
#   - deep nests: AST_MAX_NEST (1000) levels accepted, deeper ones rejected
#     before the symbolic IR and the JIT recurse through them;
#   - very long lists (1e6 elements) and nested sums;
#   - weight blocks whose size product is over the limit (constant, dynamic,
#     just over the limit), located at the block;
#   - -D values: empty, hexadecimal, inf, nan, out of range; decimal forms;
#     strings for string params;
#   - an empty file warns that it declares nothing; a library does not;
#   - a diagnostic on a 600 KB line shows only the part around the caret.
# Every check prints what it observed when it fails.
set -u
DAMC=${DAMC:-build/damc}
export DAMC_STDLIB=$PWD/stdlib
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
# run ARGS...: run damc (at most 60 s) into $tmp/out, $tmp/err; sets $st.
run() {
  timeout 60 "$DAMC" "$@" >"$tmp/out" 2>"$tmp/err"
  st=$?
}
sane() { [ "$st" -lt 124 ] && ! grep -qE "Sanitizer|runtime error|Segmentation|out of memory" "$tmp/err"; }
report() {  # report OK NAME
  n=$((n+1))
  if [ "$1" = 0 ]; then echo "ok $n - $2"; else
    echo "not ok $n - $2"
    echo "#   observed exit $st; stderr:"; head -c 600 "$tmp/err" | head -6 | sed 's/^/#   /'
  fi
}
# expect STATUS 'FIRST LINE OF STDERR' -- damc args...
expect() {
  local want=$1 text=$2; shift 3
  run "$@"
  local first; first=$(head -n 1 "$tmp/err")
  sane && [ "$st" = "$want" ] && [ "$first" = "$text" ]
  report $? "exit $want: $text"
}
# value 'LINE' -- damc args...: exit 0 and LINE on standard output.
value() {
  local text=$1; shift 2
  run "$@"
  sane && [ "$st" = 0 ] && grep -qxF -- "$text" "$tmp/out"
  local r=$?
  [ $r = 0 ] || grep -E '^  [a-z]+ =' "$tmp/out" | head -3 | sed 's/^/#   stdout: /'
  report $r "exit 0, stdout has '$text'"
}
gen() { python3 -c "$1" >"$2"; }
echo "1..41"

# ---- long chains -----------------------------------------------------------
too_long="error: expression is too long: more than 10000 operators in one chain"
for terms in 300000 1000000; do
  gen "print('param p = 1' + '+1' * $terms)" "$tmp/c$terms.dam"
  # The 10001st '+' is at column 11 + 2 * 10000 + 1.
  expect 1 "$tmp/c$terms.dam:1:20012: $too_long" -- check "$tmp/c$terms.dam"
done
expect 1 "$tmp/c300000.dam:1:20012: $too_long" -- derive "$tmp/c300000.dam"
# The 600 KB source line is shown as the 80 bytes on each side of the caret.
python3 - "$tmp/err" "$tmp/c300000.dam" <<'PY'
import sys
err = open(sys.argv[1]).read().split("\n")
line = open(sys.argv[2]).read().split("\n")[0]
col = 20012 - 1
sys.exit(0 if err[1:4] == ["..." + line[col - 80:col + 80] + "...", " " * 83 + "^", ""] else 1)
PY
report $? "the long source line is cut to the 160 bytes around the caret"
expect 1 "$tmp/c300000.dam:1:20012: $too_long" -- check "$tmp/c300000.dam" -D p=2
expect 1 "$tmp/c1000000.dam:1:20012: $too_long" -- derive "$tmp/c1000000.dam" -D p=2
run check --dump-ast "$tmp/c1000000.dam"
sane && [ "$st" = 1 ] && [ "$(head -c 12 "$tmp/out")" = "(param p = (" ]
report $? "check --dump-ast of 1e6 terms: exit 1, the (cut) tree is printed"
gen "print('param p = 2' + '*1' * 300000)" "$tmp/mul.dam"
expect 1 "$tmp/mul.dam:1:20012: $too_long" -- check "$tmp/mul.dam"
gen "print('param p = 2' + '-1+1' * 150000)" "$tmp/sub.dam"
expect 1 "$tmp/sub.dam:1:20012: $too_long" -- check "$tmp/sub.dam"
model='import "lagrangians"\nlayer v[3] : identity\nlayer h[2] : identity\nweights w : h -- v = 1\n'
gen "print('$model' + 'init v = [1' + '+1' * 300000 + ', 0, 0]')" "$tmp/init.dam"
expect 1 "$tmp/init.dam:5:20012: $too_long" -- run "$tmp/init.dam" --t-end 0
expect 1 "$tmp/init.dam:5:20012: $too_long" -- check "$tmp/init.dam"
# Exactly 10000 operators is fine, and means what it says.
gen "print('param p = 1' + '+1' * 10000)" "$tmp/c10000.dam"
value "  p = 10001" -- derive "$tmp/c10000.dam"
gen "print('param p = 1' + '*2/2' * 5000)" "$tmp/m10000.dam"
value "  p = 1" -- derive "$tmp/m10000.dam"
# 3000 distinct terms: y = sum_k exp(0.001 k) at the initial state.
gen "print('$model' + 'init v = [0.001, 0, 0]\noutput y = ' + '+'.join('exp(v[0]*%d)' % k for k in range(1, 3001)))" "$tmp/distinct.dam"
run run "$tmp/distinct.dam" --t-end 0 --json
want=$(python3 -c "import math; print(repr(sum(math.exp(0.001 * k) for k in range(1, 3001))))")
got=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['outputs']['y'][0])" "$tmp/out" 2>/dev/null)
sane && [ "$st" = 0 ] && python3 -c "import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 1e-9 * float(sys.argv[2]))" "$got" "$want"
report $? "3000 distinct terms: y = $got, expected $want"

# ---- deep nests ------------------------------------------------------------
gen "print('param p = ' + 'sqrt(' * 1000 + '2' + ')' * 1000)" "$tmp/n1000.dam"
value "  p = 1" -- derive "$tmp/n1000.dam"
gen "print('param p = ' + 'sqrt(' * 1001 + '2' + ')' * 1001)" "$tmp/n1001.dam"
expect 1 "$tmp/n1001.dam:1:11: error: expression is nested too deeply: more than 1000 levels" -- check "$tmp/n1001.dam"
gen "print('param p = ' + '- ' * 1001 + '3')" "$tmp/neg.dam"
expect 1 "$tmp/neg.dam:1:11: error: expression is nested too deeply: more than 1000 levels" -- check "$tmp/neg.dam"
# ((v0 + v1) * v2 + v1) * v2 ...: 2 levels per pair; 4000 pairs crashed the JIT.
for pairs in 4000 501; do
  gen "print('$model' + 'output y = ' + '(' * $pairs + 'v[0]' + '+v[1])*v[2]' * $pairs)" "$tmp/alt$pairs.dam"
  # v[0] is level 1, the k-th '+' level 2k, the k-th '*' level 2k + 1: the 500th '*' is level 1001.
  col=$(python3 -c "import re; print([m.start() for m in re.finditer('[*]', open('$tmp/alt$pairs.dam').read().split(chr(10))[4])][499] + 1)")
  expect 1 "$tmp/alt$pairs.dam:5:$col: error: expression is nested too deeply: more than 1000 levels" -- run "$tmp/alt$pairs.dam" --t-end 0
done
gen "print('$model' + 'init v = [0.5, 1, 1]\noutput y = ' + '(' * 499 + 'v[0]' + '+v[1])*v[2]' * 499)" "$tmp/alt499.dam"
run run "$tmp/alt499.dam" --t-end 0 --json
sane && [ "$st" = 0 ] && grep -qF '"outputs":{"y":[499.5]}' "$tmp/out"
report $? "999 levels run: y = 0.5 + 499 = 499.5 ($(grep -o '"outputs":{[^}]*}' "$tmp/out"))"

# ---- lists and sums --------------------------------------------------------
gen "print('tensor t = [' + ','.join(['1'] * 1000000) + ']\nparam s = sum(i, t[i])')" "$tmp/list.dam"
value "  s = 1000000" -- derive "$tmp/list.dam"
gen "print('param q = 2\ntensor t = [' + ','.join(['1+q'] * 300000) + ']\nparam s = sum(i, t[i])')" "$tmp/list3.dam"
value "  s = 900000" -- derive "$tmp/list3.dam"
gen "print('param p = ' + ''.join('sum(i%d: 2, ' % i for i in range(33)) + '1' + ')' * 33)" "$tmp/sums.dam"
expect 1 "$tmp/sums.dam:1:392: error: too many nested index variables (the limit is 32)" -- check "$tmp/sums.dam"
gen "print('param p = ' + ''.join('sum(i%d: 2, ' % i for i in range(20)) + '1' + ')' * 20)" "$tmp/sums20.dam"
value "  p = 1048576" -- derive "$tmp/sums20.dam"

# ---- sizes -----------------------------------------------------------------
big='import "lagrangians"\nlayer a[16777216] : identity\nlayer b[16777216] : identity\ninput x[2]\n'
gen "print('$big' + 'weights w : a -- b = 0')" "$tmp/w.dam"
expect 1 "$tmp/w.dam:5:9: error: weight block 'w' would have 281474976710656 entries (16777216 x 16777216), more than the limit of 268435456" -- check "$tmp/w.dam"
gen "print('$big' + 'weights w : a -- b = x[0]')" "$tmp/wdyn.dam"
expect 1 "$tmp/wdyn.dam:5:9: error: weight block 'w' would have 281474976710656 entries (16777216 x 16777216), more than the limit of 268435456" -- derive "$tmp/wdyn.dam"
gen "print('$big' + 'weights w : a[i] -- a[j] = 0')" "$tmp/wself.dam"
expect 1 "$tmp/wself.dam:5:9: error: weight block 'w' would have 281474976710656 entries (16777216 x 16777216), more than the limit of 268435456" -- check "$tmp/wself.dam"
gen "print('import \"lagrangians\"\nlayer a[16384] : identity\nlayer b[16385] : identity\nweights w : a -- b = 1')" "$tmp/wedge.dam"
expect 1 "$tmp/wedge.dam:4:9: error: weight block 'w' would have 268451840 entries (16384 x 16385), more than the limit of 268435456" -- check "$tmp/wedge.dam"
gen "print('tensor t[16777216, 16777216, 16777216, 16777216] = 0')" "$tmp/t4.dam"
expect 1 "$tmp/t4.dam:1:10: error: a tensor of 281474976710656 or more elements is too large (the limit is 268435456)" -- check "$tmp/t4.dam"

# ---- -D values ---------------------------------------------------------------
gen "print('param beta = 8\nparam file = \"a.npy\"')" "$tmp/params.dam"
expect 1 "damc: error: -D beta= has no value" -- check "$tmp/params.dam" -D beta=
expect 1 "damc: error: -D beta=0x10: not a decimal number" -- derive "$tmp/params.dam" -D beta=0x10
expect 1 "damc: error: -D beta=inf: not a decimal number" -- check "$tmp/params.dam" -D beta=inf
expect 1 "damc: error: -D beta=nan: not a decimal number" -- check "$tmp/params.dam" -D beta=nan
expect 1 "damc: error: -D beta=1e400: the number is out of range" -- check "$tmp/params.dam" -D beta=1e400
value "  beta = -0.5" -- derive "$tmp/params.dam" -D beta=-.5
value "  beta = 7" -- derive "$tmp/params.dam" -D beta=+7
value '  file = "b.npz"' -- derive "$tmp/params.dam" -D file=b.npz
value '  file = "inf"' -- derive "$tmp/params.dam" -D file=inf

# ---- files that declare nothing ----------------------------------------------
: >"$tmp/empty.dam"
run check "$tmp/empty.dam"
sane && [ "$st" = 0 ] && [ "$(cat "$tmp/err")" = "$tmp/empty.dam:1:1: warning: '$tmp/empty.dam' declares nothing" ]
report $? "an empty file: exit 0 and a warning"
run check "$tmp/params.dam"
sane && [ "$st" = 0 ] && [ ! -s "$tmp/err" ]
report $? "a library of params: exit 0, no warning"
printf 'import "lagrangians"\n' >"$tmp/reexport.dam"
run check "$tmp/reexport.dam"
sane && [ "$st" = 0 ] && [ ! -s "$tmp/err" ]
report $? "a file that only imports a library: exit 0, no warning"
