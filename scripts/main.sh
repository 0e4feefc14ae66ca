#!/usr/bin/env bash
# The main job: set up, build, then check, derive and simulate the examples.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
DAMC=build/damc
PARITY=../shared/data/published/analog-denseam-parity
mkdir -p out
for f in examples/*.dam; do
  echo "== damc check $f"
  $DAMC check "$f"
done
echo "== damc derive examples/xor.dam"
$DAMC derive examples/xor.dam -o out/xor.derive && cat out/xor.derive
if [ -x "$DAMC" ] && $DAMC run --help >/dev/null 2>&1; then
  echo "== damc run examples/xor.dam (all four inputs)"
  $DAMC run examples/xor.dam -c examples/xor.lua
  echo "== damc run examples/hamming74.dam (16 codewords x 7 bit flips)"
  $DAMC run examples/hamming74.dam -c examples/hamming74.lua --json > out/hamming74.jsonl
  echo "$(wc -l < out/hamming74.jsonl) runs written to out/hamming74.jsonl"
  if [ -f "$PARITY/model_best.npz" ]; then
    echo "== damc run examples/parity_et.dam on the published validation split"
    $DAMC run examples/parity_et.dam -D weights="$PARITY/model_best.npz" \
      --dataset "$PARITY/parity_data_test_X.txt" --json > out/parity.jsonl
    echo "$(wc -l < out/parity.jsonl) runs written to out/parity.jsonl"
  fi
fi
