#!/usr/bin/env bash
# train_parity.sh - train the parity Analog Energy Transformer from a random
# initialisation (examples/parity_train.lua) and check what issue 8 asks of
# the result:
#   1. wall time and time per epoch of `damc train` (the published checkpoint
#      took 0.066 s per epoch on an Apple M1 Max, 30,000 epochs);
#   2. `damc check` on the checkpoint: no "unbounded" warning;
#   3. the 52 validation strings with readout at T = 1, 2, 4, 8, 16, 32 and 100
#      (Euler dt = 1e-3): correct count and run statuses;
#   4. all 256 8-bit strings at T = 1;
#   5. greedy `damc generate` from every 8-bit context, 64 steps: how many
#      contexts give a sequence in which every bit is the parity of the 8
#      before it.
#   bench/train_parity.sh [--config TRAIN.lua] [--out CKPT.npz] [--threads N] [--skip-generate]
#   bench/train_parity.sh --ckpt CKPT.npz [--skip-generate]   # checks 2-5 of a checkpoint, no training
set -euo pipefail
cd "$(dirname "$0")/.."
DAMC=${DAMC:-${DAM_BUILD:-build}/damc}
W=../shared/data/published/analog-denseam-parity
cfg=examples/parity_train.lua; out=""; threads=""; gen=1; given=""
while [ $# -gt 0 ]; do
  case $1 in
    --config) cfg=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --threads) threads="--threads $2"; shift 2 ;;
    --skip-generate) gen=0; shift ;;
    --ckpt) given=$2; shift 2 ;;
    *) echo "usage: bench/train_parity.sh [--config TRAIN.lua] [--out CKPT.npz] [--threads N] [--skip-generate] | --ckpt CKPT.npz" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ck=${given:-${out:-$tmp/ckpt.npz}}
if [ -z "$given" ]; then
  echo "== damc train examples/parity_et.dam -c $cfg ($(nproc) cores)"
  t0=$(date +%s.%N)
  "$DAMC" train examples/parity_et.dam -c "$cfg" -o "$ck" $threads >"$tmp/train.out" 2>"$tmp/train.err"
  t1=$(date +%s.%N)
  cat "$tmp/train.out"
  grep "^damc train:" "$tmp/train.err" || true
  python3 -c "print('wall time %.1f s (limit 600 s)' % ($t1 - $t0))"
fi

echo "== damc check -D weights=CKPT"
"$DAMC" check examples/parity_et.dam -D weights="$ck" >"$tmp/check" 2>&1 || true
if grep -q unbounded "$tmp/check"; then echo "UNBOUNDED:"; cat "$tmp/check"; else echo "no unbounded warning"; fi

echo "== validation strings, Euler dt = 1e-3, readout at T"
for T in 1 2 4 8 16 32 100; do
  "$DAMC" run examples/parity_et.dam -c examples/parity_et.lua -D weights="$ck" --dt 1e-3 --t-end $T \
    --json >"$tmp/v$T.json" 2>/dev/null || true
  python3 - "$tmp/v$T.json" "$W/parity_data_test_y.txt" $T <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
y = [int(l) for l in open(sys.argv[2]) if l.strip()]
ok = sum(1 for r, c in zip(runs, y) if r["outputs"]["logits"].index(max(r["outputs"]["logits"])) == c)
st = {}
for r in runs:
    st[r["status"]] = st.get(r["status"], 0) + 1
print("T = %-4s %d/%d correct, statuses %s" % (sys.argv[3], ok, len(y), st))
PY
done

echo "== all 256 strings, T = 1"
python3 -c "
for k in range(256):
    print(' '.join(str((k >> (7 - i)) & 1) for i in range(8)))" >"$tmp/all.txt"
"$DAMC" run examples/parity_et.dam -c examples/parity_et.lua -D weights="$ck" --dataset "$tmp/all.txt" --json \
  >"$tmp/all.json" 2>/dev/null || true
python3 - "$tmp/all.json" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
ok = sum(1 for r in runs if r["outputs"]["logits"].index(max(r["outputs"]["logits"])) == sum(r["inputs"]["tok"]) % 2)
print("%d/256 strings classified correctly" % ok)
PY

if [ $gen = 1 ]; then
  echo "== greedy damc generate from every 8-bit context, 64 steps"
  good=0
  for k in $(seq 0 255); do
    ctx=$(python3 -c "print(''.join(str(($k >> (7 - i)) & 1) for i in range(8)))")
    seq=$("$DAMC" generate examples/parity_et.dam -c examples/parity_et.lua -D weights="$ck" --context $ctx \
      --steps 64 2>/dev/null | sed -n 's/^generated //p')
    if python3 -c "
s = [int(c) for c in '$ctx$seq']
import sys
sys.exit(0 if len(s) == 72 and all(s[i] == sum(s[i - 8:i]) % 2 for i in range(8, 72)) else 1)"; then
      good=$((good + 1))
    fi
  done
  echo "$good/256 contexts: every generated bit is the parity of the 8 before it"
fi
