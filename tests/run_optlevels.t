#!/usr/bin/env bash
# run_optlevels.t - the generated simulator computes the same numbers at every
# LLVM optimisation level: no fast-math, no reassociation, so -O0, -O1 and -O3
# must agree bit for bit (JSON text compared byte for byte) on XOR and on the
# Analog ET (8 parity strings).
set -u
DAMC=${DAMC:-build/damc}
case $DAMC in /*) ;; *) DAMC=$PWD/$DAMC ;; esac
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
W=../shared/data/published/analog-denseam-parity
echo "1..4"
for o in 0 1 3; do
  "$DAMC" run examples/xor.dam -c examples/xor.lua --json -O$o > "$tmp/xor.$o" 2>/dev/null
done
if cmp -s "$tmp/xor.0" "$tmp/xor.3" && cmp -s "$tmp/xor.1" "$tmp/xor.3" && [ -s "$tmp/xor.3" ]; then
  echo "ok 1 - xor: -O0, -O1 and -O3 give identical results ($(wc -l < "$tmp/xor.3") runs)"
else
  echo "not ok 1 - xor: -O0, -O1 and -O3 give identical results"; diff "$tmp/xor.0" "$tmp/xor.3" | head -5 | sed 's/^/# /'
fi
[ "$(grep -c '"status": *"ok"' "$tmp/xor.3")" = 4 ] && echo "ok 2 - xor: 4 runs ok" || echo "not ok 2 - xor: 4 runs ok"
if [ ! -f "$W/model_best.npz" ]; then
  echo "ok 3 # SKIP $W absent"; echo "ok 4 # SKIP $W absent"; exit 0
fi
head -8 "$W/parity_data_test_X.txt" > "$tmp/rows.txt"
for o in 0 3; do
  "$DAMC" run examples/parity_et.dam -D weights="$W/model_best.npz" --dataset "$tmp/rows.txt" --t-end 1 --json -O$o \
    > "$tmp/et.$o" 2>/dev/null
done
if cmp -s "$tmp/et.0" "$tmp/et.3" && [ -s "$tmp/et.3" ]; then
  echo "ok 3 - parity_et: -O0 and -O3 give identical results on 8 strings"
else
  echo "not ok 3 - parity_et: -O0 and -O3 give identical results on 8 strings"
  diff "$tmp/et.0" "$tmp/et.3" | head -4 | cut -c1-300 | sed 's/^/# /'
fi
[ "$(grep -c '"status": *"ok"' "$tmp/et.3")" = 8 ] && echo "ok 4 - parity_et: 8 runs ok" || echo "not ok 4 - parity_et: 8 runs ok"
