#!/usr/bin/env bash
# run_batch.t - a batch gives the same bytes as one-by-one runs and the same
# bytes run to run: Hamming(7,4) 112 rows on 2 threads vs 1 thread vs again;
# XOR's 4 rows and a few Hamming rows one at a time with --input (the JSON
# line compared byte for byte after the index).  --batch on (the batched
# Euler kernel: rows in lockstep, weights read once per step) gives the same
# bytes as --batch off on Hamming(7,4), the parity checkpoint and parity_et
# at D = M = 64 with random weights (checks every 7 steps, a short last step),
# and at D = 1100, M = 4100, where the Hopfield patterns (4.5M values) are too
# large for a transposed copy: the batched kernel packs them transposed for
# W v and must still give the one-string kernel's dot products bit for bit
# (4100 = 256 blocks of 16 columns + 4 left over, which the plain nest does).
set -u
DAMC=${DAMC:-build/damc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..14"
"$DAMC" run examples/hamming74.dam -c examples/hamming74.lua --json --threads 2 >"$tmp/a" 2>/dev/null; s1=$?
"$DAMC" run examples/hamming74.dam -c examples/hamming74.lua --json --threads 1 >"$tmp/b" 2>/dev/null; s2=$?
"$DAMC" run examples/hamming74.dam -c examples/hamming74.lua --json --threads 2 >"$tmp/c" 2>/dev/null; s3=$?
ok $(( s1 + s2 + s3 )) "three batch runs exit 0 ($s1 $s2 $s3)"
ok $([ "$(wc -l <"$tmp/a")" = 112 ]; echo $?) "112 lines"
cmp -s "$tmp/a" "$tmp/b"; ok $? "2 threads == 1 thread, byte for byte"
cmp -s "$tmp/a" "$tmp/c"; ok $? "2 threads == 2 threads again, byte for byte"
# One by one: rows 0, 38, 111 of the Hamming batch.
bad=0
for i in 0 38 111; do
  line=$(sed -n "$((i+1))p" "$tmp/a")
  word=$(python3 -c 'import json,sys; print(",".join("%d" % v for v in json.loads(sys.argv[1])["inputs"]["word"]))' "$line")
  one=$("$DAMC" run examples/hamming74.dam --input word=$word --t-end 5 --json 2>/dev/null)
  [ "${one#*,}" = "${line#*,}" ] || { bad=1; echo "# row $i differs:"; echo "# batch: $line"; echo "# alone: $one"; }
done
ok $bad "Hamming rows 0, 38, 111 alone == in the batch"
"$DAMC" run examples/xor.dam -c examples/xor.lua --json >"$tmp/x" 2>/dev/null
bad=0
i=0
for bits in 0,0 0,1 1,0 1,1; do
  i=$((i+1))
  line=$(sed -n "${i}p" "$tmp/x")
  one=$("$DAMC" run examples/xor.dam --input bits=$bits --t-end 5 --json 2>/dev/null)
  [ -n "$line" ] && [ "${one#*,}" = "${line#*,}" ] || { bad=1; echo "# xor $bits differs"; }
done
ok $bad "XOR rows alone == in the batch"
# Text output is deterministic as well.
"$DAMC" run examples/xor.dam -c examples/xor.lua --threads 2 >"$tmp/t1" 2>/dev/null
"$DAMC" run examples/xor.dam -c examples/xor.lua --threads 1 >"$tmp/t2" 2>/dev/null
cmp -s "$tmp/t1" "$tmp/t2"; ok $? "table output identical across thread counts"
head -1 "$tmp/t1" | grep -q "^  run  status"; ok $? "table has a header line"
"$DAMC" run examples/hamming74.dam -c examples/hamming74.lua --json --batch on >"$tmp/bon" 2>/dev/null
cmp -s "$tmp/a" "$tmp/bon"; ok $? "hamming74: --batch on == one by one, byte for byte"
W=../shared/data/published/analog-denseam-parity
if [ -f "$W/model_best.npz" ]; then
  "$DAMC" run examples/parity_et.dam -c examples/parity_et.lua --json --batch on >"$tmp/pon" 2>/dev/null
  "$DAMC" run examples/parity_et.dam -c examples/parity_et.lua --json --batch off >"$tmp/poff" 2>/dev/null
  [ "$(wc -l <"$tmp/pon")" = 52 ] && cmp -s "$tmp/pon" "$tmp/poff"; ok $? "parity checkpoint, 52 rows: --batch on == off, byte for byte"
else
  echo "ok 10 # SKIP $W is absent"
fi
python3 - "$tmp" <<'PY'
import random, struct, sys, zipfile
def npy(shape, vals):
    hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }" % (", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + struct.pack("<%dd" % len(vals), *vals)
D = M = 64; L = 16; r = random.Random(3); s = D ** -0.5
t = {"xi_attn_embed_raw": ((2, D), [r.uniform(0, s) for _ in range(2 * D)]),
     "xi_hopf_raw": ((M, D), [r.uniform(0, s) for _ in range(M * D)]),
     "a": ((D,), [r.uniform(-.1, .1) for _ in range(D)]), "b": ((L,), [0.0] * L),
     "c": ((M,), [r.uniform(-.1, .1) for _ in range(M)]),
     "W_dec": ((2, D), [r.uniform(-s, s) for _ in range(2 * D)]), "b_dec": ((2,), [0.0, 0.0])}
with zipfile.ZipFile(sys.argv[1] + "/et64.npz", "w") as z:
    for k, (sh, v) in t.items():
        z.writestr(k + ".npy", npy(sh, v))
with open(sys.argv[1] + "/tok.txt", "w") as f:
    for i in range(20):
        f.write(" ".join(str(r.randrange(2)) for _ in range(L)) + "\n")
PY
for m in on off; do
  "$DAMC" run examples/parity_et.dam -D D=64 -D M=64 -D L=16 -D weights="$tmp/et64.npz" --dataset "$tmp/tok.txt" \
    --solver euler --dt 1e-3 --t-end 0.2035 --check-every 7 --json --batch $m >"$tmp/e$m" 2>/dev/null
done
[ "$(wc -l <"$tmp/eon")" = 20 ] && cmp -s "$tmp/eon" "$tmp/eoff"; ok $? "parity_et D = M = 64, 20 rows: --batch on == off, byte for byte"
# Without --t-end: until settled, the steady-state test at every check (the
# batch computes dx/dt and the energy of all rows at once for it).
for m in on off; do
  "$DAMC" run examples/parity_et.dam -D D=64 -D M=64 -D L=16 -D weights="$tmp/et64.npz" --dataset "$tmp/tok.txt" \
    --json --batch $m >"$tmp/s$m" 2>/dev/null
done
[ "$(grep -c '"t_converged":[0-9]' "$tmp/son")" = 20 ] && cmp -s "$tmp/son" "$tmp/soff"
ok $? "parity_et D = M = 64, 20 rows until settled: all converge, --batch on == off, byte for byte"
python3 - "$tmp" <<'PY'
import array, struct, sys, zipfile
def npy(shape, vals):
    hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }" % (", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + array.array("d", vals).tobytes()
D, M, L = 1100, 4100, 8
state = 12345
def uni(n, lo, hi):           # a small LCG: 4.5M draws in a second or two
    global state
    out = array.array("d", bytes(8 * n))
    for i in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) & (2 ** 64 - 1)
        out[i] = lo + (hi - lo) * (state >> 11) / 2.0 ** 53
    return out
s = D ** -0.5
t = {"xi_attn_embed_raw": ((2, D), uni(2 * D, 0, s)), "xi_hopf_raw": ((M, D), uni(M * D, 0, s * 0.6)),
     "a": ((D,), uni(D, -.1, .1)), "b": ((L,), [0.0] * L), "c": ((M,), uni(M, 0.5, 1.0)),
     "W_dec": ((2, D), uni(2 * D, -s, s)), "b_dec": ((2,), [0.0, 0.0])}
with zipfile.ZipFile(sys.argv[1] + "/etbig.npz", "w") as z:
    for k, (sh, v) in t.items():
        z.writestr(k + ".npy", npy(sh, v))
with open(sys.argv[1] + "/tokbig.txt", "w") as f:
    for i in range(10):
        f.write(" ".join(str((i >> k) & 1) for k in range(L)) + "\n")
PY
for m in on off; do
  "$DAMC" run examples/parity_et.dam -D D=1100 -D M=4100 -D L=8 -D weights="$tmp/etbig.npz" --dataset "$tmp/tokbig.txt" \
    --solver euler --dt 1e-3 --t-end 0.03 --check-every 7 --json --batch $m >"$tmp/b$m" 2>"$tmp/berr$m"
done
[ "$(wc -l <"$tmp/bon")" = 10 ] && cmp -s "$tmp/bon" "$tmp/boff"; ok $? "parity_et D = 1100, M = 4100, 10 rows: --batch on == off, byte for byte"
# LLVM's remarks on loops it did not unroll-and-jam are not the user's business.
cat "$tmp/berron" "$tmp/berroff" >"$tmp/berr"
[ ! -s "$tmp/berr" ]; ok $? "parity_et D = 1100, M = 4100 compiles without messages on stderr" || sed 's/^/# /' "$tmp/berr" | head -3
