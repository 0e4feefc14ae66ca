#!/usr/bin/env bash
# train.t - `damc train` (docs/training.md).
#  - XOR (examples/xor_learn.dam, examples/xor_train.lua) from a random
#    initialisation: 4/4, the checkpoint is what examples/xor_learn.npz holds
#    (same bytes: the seed fixes everything), and `damc run -D weights=ckpt`
#    gives y < 0.05 on the two 0 rows and > 0.95 on the two 1 rows;
#  - one and two threads give the same bytes; a run resumed from its epoch-150
#    checkpoint ends with the same bytes as the straight 300 epochs;
#  - --json: one object per evaluation; --plot writes the plot;
#  - parity_et from a random initialisation with large Hopfield weights: with
#    the stability projection the checkpoint passes `damc check` without the
#    unbounded warning (sigma printed), with stability = "off" it does not;
#  - Ctrl-C during a run: exit 130, a resumable checkpoint, no temporary file;
#  - a run that blows up (NaN): stops with the epoch and the culprit, exit 3,
#    the checkpoint holds the last good parameters;
#  - init values given by the config are where training starts;
#  - optimizer.lr_scale scales one tensor's learning rate (x 0 freezes it);
#  - bad input: a loss on an undeclared output, a dataset row of the wrong
#    width, labels that do not match the rows, an unknown train key, init
#    values of the wrong size, lr_scale of a tensor that is not trained (located, exit 1, no checkpoint); a learned
#    tensor no output depends on (warning), revive epochs out of order or on
#    a model with no ReLU layer to revive;
#  - train.revive (tests/train/revive.dam): the dead unit takes the live
#    unit's pattern and the bias derived by hand, is active on the worst-fit
#    row alone, the loss falls, the same bytes twice, and a resumed run
#    revives as the straight one.
set -u
DAMC=${DAMC:-build/damc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
X="examples/xor_learn.dam -c examples/xor_train.lua"

"$DAMC" train $X -o "$tmp/x.npz" >"$tmp/x.out" 2>"$tmp/x.err"; st=$?
grep -q "train 4/4" "$tmp/x.out"; ok $(( st != 0 || $? )) "XOR trains from a random initialisation to 4/4 (exit $st)"
sed 's/^/# /' "$tmp/x.out"
cmp -s "$tmp/x.npz" examples/xor_learn.npz; ok $? "the checkpoint is byte for byte the shipped examples/xor_learn.npz"
for b in 0,0 0,1 1,0 1,1; do
  "$DAMC" run examples/xor_learn.dam -D weights="$tmp/x.npz" --input bits=$b --dt 1e-2 --t-end 5 --json
done >"$tmp/r.json" 2>/dev/null
python3 - "$tmp/r.json" <<'PY'; ok $? "damc run -D weights=ckpt.npz: y < 0.05 for 0,0 and 1,1, > 0.95 for 0,1 and 1,0"
import json, sys
y = [json.loads(l)["outputs"]["y"][0] for l in open(sys.argv[1])]
print("# y =", " ".join("%.3g" % v for v in y))
sys.exit(0 if len(y) == 4 and y[0] < 0.05 and y[3] < 0.05 and y[1] > 0.95 and y[2] > 0.95 else 1)
PY
"$DAMC" train $X -o "$tmp/x1.npz" --threads 1 >/dev/null 2>&1
cmp -s "$tmp/x.npz" "$tmp/x1.npz"; ok $? "one thread and two give the same bytes"
"$DAMC" train $X -o "$tmp/half.npz" --epochs 150 >/dev/null 2>&1
"$DAMC" train $X -o "$tmp/half.npz" --resume "$tmp/half.npz" >/dev/null 2>"$tmp/res.err"; st=$?
cmp -s "$tmp/x.npz" "$tmp/half.npz"; ok $(( st != 0 || $? )) "150 epochs, then --resume to 300: the same bytes as 300 straight"
"$DAMC" train $X -o "$tmp/j.npz" --json --plot "$tmp/p.svg" >"$tmp/j.json" 2>/dev/null
python3 - "$tmp/j.json" <<'PY'; ok $? "--json: one object per evaluation (epochs 1, 50, ..., 300), losses falling"
import json, sys
e = [json.loads(l) for l in open(sys.argv[1])]
ep = [x["epoch"] for x in e]
sys.exit(0 if ep == [1, 50, 100, 150, 200, 250, 300] and e[-1]["loss"] < e[0]["loss"] / 100
         and e[-1]["train_correct"] == 4 else 1)
PY
grep -q "<svg" "$tmp/p.svg" 2>/dev/null; ok $? "--plot writes an SVG"

# Stability: parity_et from random weights whose Hopfield block starts with sigma > 1.
W=../shared/data/published/analog-denseam-parity
if [ -f "$W/model_best.npz" ]; then
  cat >"$tmp/st.lua" <<EOF
params = { weights = "$PWD/$W/model_best.npz" }
dt = 2e-3
t_end = 0.2
train = {
  data = { inputs = "$PWD/$W/parity_data_test_X.txt", labels = "$PWD/$W/parity_data_test_y.txt" },
  epochs = 3, eval_every = 1,
  init = { seed = 5, std = 1, tensors = { hopf_raw = { mean = 0.6, std = 0.1 } } },
}
EOF
  "$DAMC" train examples/parity_et.dam -c "$tmp/st.lua" -o "$tmp/st.npz" >/dev/null 2>&1; st=$?
  "$DAMC" check examples/parity_et.dam -D weights="$tmp/st.npz" >"$tmp/chk" 2>&1
  ! grep -q unbounded "$tmp/chk"; ok $(( st != 0 || $? )) "with the projection (default) the checkpoint passes damc check: no unbounded warning"
  sed 's/stability/x/; s/epochs = 3/epochs = 3, stability = "off"/' "$tmp/st.lua" >"$tmp/st_off.lua"
  "$DAMC" train examples/parity_et.dam -c "$tmp/st_off.lua" -o "$tmp/off.npz" >/dev/null 2>&1
  "$DAMC" check examples/parity_et.dam -D weights="$tmp/off.npz" >"$tmp/chk2" 2>&1
  grep -q "unbounded below" "$tmp/chk2"; ok $? "with stability = \"off\" the same run leaves the energy unbounded (the check warns)"
  grep -o "spectral norm [0-9.]*" "$tmp/chk2" | sed 's/^/# off: /'

  # Ctrl-C: a long run, interrupted
  sed 's/epochs = 3/epochs = 100000/' "$tmp/st.lua" >"$tmp/long.lua"
  "$DAMC" train examples/parity_et.dam -c "$tmp/long.lua" -o "$tmp/int.npz" >/dev/null 2>"$tmp/int.err" &
  pid=$!
  sleep 3; kill -INT $pid; wait $pid; st=$?
  [ $st = 130 ] && [ -f "$tmp/int.npz" ] && ! ls "$tmp" | grep -q '\.tmp\.' && grep -q "interrupted after epoch" "$tmp/int.err"
  ok $? "Ctrl-C: exit 130 ($st), a checkpoint and no temporary file"
  grep -o "interrupted after epoch [0-9]*" "$tmp/int.err" | sed 's/^/# /'
  sed 's/epochs = 100000/epochs = 100000000/' "$tmp/long.lua" >/dev/null
  e=$(grep -o "interrupted after epoch [0-9]*" "$tmp/int.err" | awk '{print $4}')
  "$DAMC" train examples/parity_et.dam -c "$tmp/st.lua" -o "$tmp/int.npz" --resume "$tmp/int.npz" --epochs $((e + 1)) --json \
    >"$tmp/int.json" 2>/dev/null; st=$?
  [ $st = 0 ] && grep -q "\"epoch\":$((e + 1))," "$tmp/int.json"; ok $? "the interrupted run resumes at epoch $((e + 1))"
else
  for k in 1 2 3 4; do ok 0 "# SKIP $W is absent"; done
fi

# NaN: a learning rate that blows the weights up
sed 's/lr = 0.05/lr = 1e6/; s/name = "adam"/name = "sgd"/' examples/xor_train.lua >"$tmp/nan.lua"
"$DAMC" train examples/xor_learn.dam -c "$tmp/nan.lua" -o "$tmp/nan.npz" >/dev/null 2>"$tmp/nan.err"; st=$?
[ $st = 3 ] && grep -q "epoch [0-9]*: the .* is not finite" "$tmp/nan.err" && [ -f "$tmp/nan.npz" ]
ok $? "a run that blows up stops (exit $st) and says at which epoch and what"
grep "not finite" "$tmp/nan.err" | sed 's/^/# /'
python3 - "$tmp/nan.npz" <<'PY'; ok $? "its checkpoint holds finite (the last good) parameters"
import zipfile, struct, sys, math
z = zipfile.ZipFile(sys.argv[1])
b = z.read("xi.npy"); hl = struct.unpack("<H", b[8:10])[0]
v = struct.unpack("<12d", b[10 + hl:])
sys.exit(0 if all(math.isfinite(x) for x in v) else 1)
PY

# init.tensors.NAME.values: explicit initial values computed by the config
cat >"$tmp/vals.lua" <<'EOF2'
solver = "euler"; dt = 1e-2; t_end = 5
local xi = {}
for mu = 1, 4 do xi[mu] = { 0.1 * mu, 0.2, 0.3 } end
train = { data = { inputs = { {0, 0}, {0, 1}, {1, 0}, {1, 1} }, labels = { 0, 1, 1, 0 } },
  output = "y", loss = "squared", epochs = 1, optimizer = { name = "sgd", lr = 1e-300, weight_decay = 0 },
  stability = "off", init = { tensors = { xi = { values = xi } } } }
EOF2
"$DAMC" train examples/xor_learn.dam -c "$tmp/vals.lua" -o "$tmp/vals.npz" >/dev/null 2>&1; st=$?
python3 - "$tmp/vals.npz" <<'PY'; ok $(( st != 0 || $? )) "init values = rows from the config: the checkpoint starts from them (exit $st)"
import zipfile, struct, sys
z = zipfile.ZipFile(sys.argv[1])
b = z.read("xi.npy"); hl = struct.unpack("<H", b[8:10])[0]
v = struct.unpack("<12d", b[10 + hl:])
want = [0.1 * mu if j == 0 else (0.2, 0.3)[j - 1] for mu in range(1, 5) for j in range(3)]
err = max(abs(a - b) for a, b in zip(v, want))
print("# max |xi - values| = %g (tolerance 1e-15)" % err)
sys.exit(0 if err <= 1e-15 else 1)
PY

# optimizer.lr_scale: a factor of one tensor's learning rate (SGD, no decay: lr 0.1 x 2 is lr 0.2 exactly)
for v in "0.1 2" "0.2 1" "0.1 0"; do
  set -- $v
  cat >"$tmp/lrs.lua" <<EOF2
solver = "euler"; dt = 1e-2; t_end = 5
train = { data = { inputs = { {0, 0}, {0, 1}, {1, 0}, {1, 1} }, labels = { 0, 1, 1, 0 } },
  output = "y", loss = "squared", epochs = 3, optimizer = { name = "sgd", lr = $1, weight_decay = 0, lr_scale = { xi = $2 } },
  stability = "off", init = { tensors = { xi = { values = { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2 } } } } }
EOF2
  "$DAMC" train examples/xor_learn.dam -c "$tmp/lrs.lua" -o "$tmp/lrs$1_$2.npz" >/dev/null 2>&1
done
python3 - "$tmp" <<'PY'; ok $? "lr_scale: lr 0.1 x 2 gives the bits of lr 0.2; x 0 leaves the tensor at its initial values"
import zipfile, struct, sys
def xi(p):
    b = zipfile.ZipFile(p).read("xi.npy"); hl = struct.unpack("<H", b[8:10])[0]
    return struct.unpack("<12d", b[10 + hl:])
a, b, z = (xi("%s/lrs%s.npz" % (sys.argv[1], k)) for k in ("0.1_2", "0.2_1", "0.1_0"))
init = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)
moved = max(abs(x - y) for x, y in zip(a, init))
frozen = max(abs(x - y) for x, y in zip(z, init))
print("# x2 vs lr 0.2: %s; max |xi - init|: %.3g moved, %.3g frozen (must be 0)" % ("same" if a == b else "differ", moved, frozen))
sys.exit(0 if a == b and moved > 1e-6 and frozen == 0 else 1)
PY

# data.copies: rows taken twice, or dropped, train exactly as the same rows written out
cp_cfg() {  # data table
  printf 'solver = "euler" dt = 1e-2 t_end = 2\ntrain = { data = %s, output = "y", loss = "squared", epochs = 20,\n  optimizer = { name = "adam", lr = 0.05 }, init = { seed = 3 }, eval_every = 10 }\n' "$1"
}
cp_cfg '{ inputs = { {0, 0}, {0, 1}, {1, 0}, {1, 1} }, labels = { 0, 1, 1, 0 },
  copies = function(x, y) return x[1] == 1 and x[2] == 1 and 0 or (y == 1 and 2 or 1) end }' >"$tmp/cp1.lua"
cp_cfg '{ inputs = { {0, 0}, {0, 1}, {0, 1}, {1, 0}, {1, 0} }, labels = { 0, 1, 1, 1, 1 } }' >"$tmp/cp2.lua"
"$DAMC" train examples/xor_learn.dam -c "$tmp/cp1.lua" -o "$tmp/cp1.npz" >/dev/null 2>&1 &&
  "$DAMC" train examples/xor_learn.dam -c "$tmp/cp2.lua" -o "$tmp/cp2.npz" >/dev/null 2>&1 && cmp -s "$tmp/cp1.npz" "$tmp/cp2.npz"
ok $? "data.copies (x2 for label 1, 0 for the last row) trains the same bytes as the rows written out"

# train.revive: the dead unit 2 of hop.h takes unit 0's pattern, with its kink
# between the worst-fit row (1, 0) and the rest (tests/train/revive.lua derives c_2)
R="tests/train/revive.dam -c tests/train/revive.lua"
"$DAMC" train $R -o "$tmp/rv.npz" >/dev/null 2>"$tmp/rv.err"; st=$?
grep "revived" "$tmp/rv.err" | sed 's/^/# /'
python3 - "$tmp/rv.npz" "$tmp/rv.err" <<'PY'; ok $(( st != 0 || $? )) "revive: unit 2 gets unit 0's pattern and c_2 = -0.39752, the loss falls (exit $st)"
import zipfile, struct, sys, re
z = zipfile.ZipFile(sys.argv[1])
def arr(k, n):
    b = z.read(k + ".npy"); hl = struct.unpack("<H", b[8:10])[0]
    return struct.unpack("<%dd" % n, b[10 + hl:10 + hl + 8 * n])
P, c = arr("P", 6), arr("c", 3)
m = re.search(r"revived hop\.h unit 2 with the pattern of unit 0 \(x 1\), .*\(x = 1 0\); loss ([0-9.e+-]+) -> ([0-9.e+-]+)",
              open(sys.argv[2]).read())
print("# P[2] = %r, P[0] = %r, c = %r; |c_2 + 0.39752| = %.2g (tolerance 1e-4)" % (P[4:6], P[0:2], c, abs(c[2] + 0.39752)))
sys.exit(0 if m and float(m.group(2)) < float(m.group(1)) and P[4:6] == P[0:2] and abs(c[2] + 0.39752) < 1e-4 else 1)
PY
sed -E 's|^learn ([A-Za-z_]+)(\[.*\]) = .*|learn \1\2 = load(weights, "\1")|; s|^input|param weights = "rv.npz"\ninput|' \
  tests/train/revive.dam >"$tmp/rv.dam"
for x in 1,0 0,1 0.5,0.5 0,0; do
  "$DAMC" run "$tmp/rv.dam" --input x=$x --dt 2e-3 --t-end 2 --trace "$tmp/rv_$x.csv" >/dev/null 2>&1
done
python3 - "$tmp" <<'PY'; ok $? "revive: after the move unit 2 is active on the row (1, 0) alone"
import csv, sys
h = []
for x in ("1,0", "0,1", "0.5,0.5", "0,0"):
    r = list(csv.reader(open("%s/rv_%s.csv" % (sys.argv[1], x))))
    h.append(float(r[-1][r[0].index("hop.h[2]")]))
print("# h_2 at T = 2 on (1,0) (0,1) (0.5,0.5) (0,0):", " ".join("%.4f" % v for v in h))
sys.exit(0 if h[0] > 0.05 and max(h[1:]) < 0 else 1)
PY
"$DAMC" train $R -o "$tmp/rv2.npz" >/dev/null 2>&1
cmp -s "$tmp/rv.npz" "$tmp/rv2.npz"; ok $? "revive: the same config gives the same bytes"
sed 's/epochs = 1,/epochs = 2,/; s/at = { 1 }/at = { 2 }/' tests/train/revive.lua >"$tmp/rv2.lua"
"$DAMC" train tests/train/revive.dam -c "$tmp/rv2.lua" -o "$tmp/rvs.npz" >/dev/null 2>"$tmp/rvs.err"
"$DAMC" train tests/train/revive.dam -c "$tmp/rv2.lua" -o "$tmp/rvr.npz" --epochs 1 >/dev/null 2>&1
"$DAMC" train tests/train/revive.dam -c "$tmp/rv2.lua" -o "$tmp/rvr.npz" --resume "$tmp/rvr.npz" >/dev/null 2>"$tmp/rvr.err"
grep -q "epoch 2: revived" "$tmp/rvs.err" && grep -q "epoch 2: revived" "$tmp/rvr.err" && cmp -s "$tmp/rvs.npz" "$tmp/rvr.npz"
ok $? "revive at epoch 2: 1 epoch, then --resume to 2, revives too and gives the bytes of 2 straight"

# Bad input
bad() {  # name, config text, expected message
  printf '%s\n' "$2" >"$tmp/bad.lua"
  rm -f "$tmp/bad.npz"
  "$DAMC" train examples/xor_learn.dam -c "$tmp/bad.lua" -o "$tmp/bad.npz" >/dev/null 2>"$tmp/bad.err"; st=$?
  [ $st = 1 ] && [ ! -f "$tmp/bad.npz" ] && grep -q -- "$3" "$tmp/bad.err"; ok $? "$1: exit 1 ($st), no checkpoint, says '$3'"
}
bad "a loss on an undeclared output" 'train = { data = { inputs = { {0, 0} }, labels = { 0 } },
  output = "z", loss = "squared" }' "bad.lua:2:3: error: the loss is on output 'z', which the model does not declare"
printf '0 0\n0 1 1\n' >"$tmp/rows.txt"
bad "a dataset row of the wrong width" "train = { data = { inputs = \"$tmp/rows.txt\", labels = { 0, 1 } }, loss = \"squared\" }" \
  "rows.txt:2:.*row has 3 values, expected 2"
bad "labels that do not match the rows" 'train = { data = { inputs = { {0, 0}, {1, 1} }, labels = { 0 } }, loss = "squared" }' \
  "1 rows of labels for 2 rows of inputs"
bad "an unknown key" 'train = { data = { inputs = { {0, 0} }, labels = { 0 } }, loss = "squared",
  epoks = 3 }' "bad.lua:2:3: error: unknown key 'epoks' in 'train'"
bad "init values of the wrong size" 'train = { data = { inputs = { {0, 0} }, labels = { 0 } }, loss = "squared",
  init = { tensors = { xi = { values = { 1, 2, 3 } } } } }' "bad.lua:2:12: error: train.init.tensors.xi.values has 3 numbers; xi has 12"
bad "lr_scale of a tensor that is not trained" 'train = { data = { inputs = { {0, 0} }, labels = { 0 } }, loss = "squared",
  optimizer = { lr_scale = { zeta = 2 } } }' "bad.lua:2:17: error: train.optimizer.lr_scale.zeta: the model trains no tensor 'zeta'"
bad "copies that are not a whole number" 'train = { data = { inputs = { {0, 0}, {1, 1} }, labels = { 0, 1 },
  copies = function(x, y) return 1.5 end }, loss = "squared" }' "train.data.copies must return a whole number of times (0 to 1000000) for row 1"
bad "copies that drop every row" 'train = { data = { inputs = { {0, 0}, {1, 1} }, labels = { 0, 1 },
  copies = function(x, y) return 0 end }, loss = "squared" }' "train.data.copies leaves no rows"
bad "a readout time not before t_end" 'dt = 0.01 t_end = 1 train = { data = { inputs = { {0, 0} }, labels = { 0 } },
  loss = "squared", readout = { 0.5, 2 } }' "bad.lua:2:21: error: train.readout: time 2 is not before t_end"
bad "readout times out of order" 'dt = 0.01 t_end = 1 train = { data = { inputs = { {0, 0} }, labels = { 0 } },
  loss = "squared", readout = { 0.5, 0.25 } }' "train.readout: time 0.25 is not after the time before it"
bad "a readout that is not a list of times" 'train = { data = { inputs = { {0, 0} }, labels = { 0 } },
  loss = "squared", readout = 0.5 }' "bad.lua:2:21: error: train.readout must be a list of positive times"
bad "revive epochs out of order" 'train = { data = { inputs = { {0, 0} }, labels = { 0 } }, loss = "squared",
  revive = { at = { 5, 2 } } }' "bad.lua:2:14: error: train.revive.at must list epochs (integers >= 1), ascending"
bad "an unknown key in revive" 'train = { data = { inputs = { {0, 0} }, labels = { 0 } }, loss = "squared",
  revive = { at = { 1 }, every = 3 } }' "bad.lua:2:26: error: unknown key 'every' in 'train.revive'"
bad "revive on a model without a ReLU layer" 'train = { data = { inputs = { {0, 0} }, labels = { 0 } }, loss = "squared",
  revive = { at = { 1 } } }' "bad.lua:2:3: error: train.revive: examples/xor_learn.dam has no ReLU layer"
sed 's/^learn xi\[4, 3\].*/&\nlearn unused[3] = 0.1/' examples/xor_learn.dam >"$tmp/unused.dam"
cp examples/xor_learn.npz "$tmp/"
"$DAMC" train "$tmp/unused.dam" -c examples/xor_train.lua -o "$tmp/u.npz" --epochs 2 >/dev/null 2>"$tmp/u.err"; st=$?
[ $st = 0 ] && grep -q "unused.dam:[0-9]*:7: warning: no output depends on learned tensor 'unused'" "$tmp/u.err"
ok $? "a learned tensor no output depends on: a located warning, training goes on"
echo "1..$n"
