#!/usr/bin/env bash
# image.t - `damc image`: crossbar programming images written, dumped and
# extracted (docs/image-format.md).
#
# Under tests/image/hires.lua (16 bits, 1 nS .. 10 mS, 4x4 tiles, so blocks
# are split), the extracted weights of XOR and Hamming(7,4) must be within
# half a quantisation step ((gmax - gmin) / (2^16 - 2) / 2 / g0 in weight
# units) of the matrices written in their .dam files, and those of the
# parity checkpoint within half a step of the squared raw weights of
# model_best.npz (xi_hopf_raw^2 as hopf.xi, the per-token rows
# xi_attn_embed_raw^2 as attn.xi_table).  Images and dumps are the same
# bytes twice, the XOR dump matches its golden (tests/image/xor.dump, the
# image path replaced by xor.img); the reader's unit test reruns its corruption checks on the
# parity image.  Bad input: a block outside the device's conductance range
# and a misspelt profile key are located errors, exit 1, no file left.
set -u
DAMC=${DAMC:-build/damc}
B=${DAM_BUILD:-build}
W=../shared/data/published/analog-denseam-parity
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
HI=tests/image/hires.lua

# A stdlib-only .npz reader and the comparison (no numpy needed).
cat >"$tmp/cmp.py" <<'PY'
import ast, re, struct, sys, zipfile
def npz(path):
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            b = z.read(name)
            hl = struct.unpack('<H', b[8:10])[0] if b[6] == 1 else struct.unpack('<I', b[8:12])[0]
            off = 10 if b[6] == 1 else 12
            h = ast.literal_eval(b[off:off + hl].decode('latin1'))
            shape, d = h['shape'], h['descr']
            cnt = 1
            for s in shape: cnt *= s
            fmt = {'<f8': 'd', '<f4': 'f'}[d]
            vals = struct.unpack('<%d%s' % (cnt, fmt), b[off + hl: off + hl + cnt * struct.calcsize(fmt)])
            out[name[:-4]] = (list(shape), list(vals))
    return out
def dam_matrix(path, name):
    s = open(path).read()
    m = re.search(r'weights\s+' + name + r'\s*:[^=]*=\s*(\[.*?\]\])', s, re.S)
    v = ast.literal_eval(m.group(1))
    return [len(v), len(v[0])], [x for row in v for x in row]
step = (1e-2 - 1e-9) / (2**16 - 2) / 1e-5
tol = step / 2 * (1 + 1e-9) + 1e-12
got = npz(sys.argv[1])
pairs = []
for spec in sys.argv[2:]:
    key, src = spec.split('=', 1)
    if src.startswith('dam:'):
        pairs.append((key, dam_matrix(src[4:], key)))
    else:
        f, member = src.split(':')
        shape, v = npz(f)[member]
        pairs.append((key, (shape, [x * x for x in v])))
worst = 0
for key, (shape, want) in pairs:
    gs, gv = got[key]
    if gs != shape:
        print('shape of %s: %s, want %s' % (key, gs, shape)); sys.exit(1)
    worst = max(worst, max(abs(a - b) for a, b in zip(gv, want)))
print('worst %.3g half-step %.3g' % (worst, tol))
sys.exit(0 if worst <= tol else 1)
PY

for m in xor hamming74; do
  "$DAMC" image examples/$m.dam -c examples/$m.lua --device $HI -o "$tmp/$m.img" 2>"$tmp/$m.err"
  ok $? "image of $m under the 16-bit profile"
  "$DAMC" image --extract "$tmp/$m.img" -o "$tmp/$m.npz" 2>>"$tmp/$m.err"
  ok $? "extract $m"
  r=$(python3 "$tmp/cmp.py" "$tmp/$m.npz" "xi=dam:examples/$m.dam"); rc=$?
  echo "# $m: $r"
  ok $rc "$m: every extracted weight within half a quantisation step of the .dam's xi"
done

# signed weights: a differential pair of planes, or one plane and a tile offset
for p in hires hires_offset; do
  "$DAMC" image tests/spice/signed.dam --device tests/image/$p.lua -o "$tmp/s.img" 2>"$tmp/s.err" &&
  "$DAMC" image --extract "$tmp/s.img" -o "$tmp/s.npz" 2>>"$tmp/s.err"
  ok $? "signed.dam under $p: image and extract"
  r=$(python3 "$tmp/cmp.py" "$tmp/s.npz" "w=dam:tests/spice/signed.dam"); rc=$?
  echo "# signed $p: $r"
  ok $rc "signed.dam under $p: negative weights within half a step"
done
"$DAMC" image --dump "$tmp/s.img" | grep -q "^     0  w            \[0, 0\]  2x3  offset 0.4  gain 1e-05 S$"
ok $? "offset encoding: the tile's offset is -min w = 0.4"

"$DAMC" image examples/xor.dam -c examples/xor.lua --device $HI -o "$tmp/xor2.img" 2>/dev/null
cmp -s "$tmp/xor.img" "$tmp/xor2.img"; ok $? "the same model gives the same image bytes"
"$DAMC" image --dump "$tmp/xor.img" | sed 's|^image [^:]*:|image xor.img:|' | diff -u tests/image/xor.dump - >"$tmp/golden.diff"
ok $? "--dump of xor matches the golden tests/image/xor.dump"; sed 's/^/# /' "$tmp/golden.diff"
"$DAMC" image --dump "$tmp/hamming74.img" >"$tmp/d1" && "$DAMC" image --dump "$tmp/hamming74.img" >"$tmp/d2"
cmp -s "$tmp/d1" "$tmp/d2"; ok $? "--dump is deterministic"
grep -q "^  xi           h -- v  16x7  8 tiles  tensor xi$" "$tmp/d1"; ok $? "--dump: the 16x7 block split into 8 tiles of 4x4"
grep -q "^device 'hires': 16 bits (65536 levels, 0 = open cell), differential" "$tmp/d1"; ok $? "--dump: the device line"
"$DAMC" image --dump "$tmp/hamming74.img" --json >"$tmp/j1" && "$DAMC" image --dump "$tmp/hamming74.img" --json >"$tmp/j2"
cmp -s "$tmp/j1" "$tmp/j2" && python3 -c "
import json,sys; j=json.load(open(sys.argv[1]))
assert j['device']['bits']==16 and len(j['tiles'])==8 and j['blocks'][0]['tensor']=='xi'
h=j['histogram']; assert h['open']+sum(b['count'] for b in h['bins'])==2*16*7
" "$tmp/j1"; ok $? "--dump --json: deterministic, parses, histogram counts every cell of both planes"

if [ -f "$W/model_best.npz" ]; then
  "$DAMC" image examples/parity_et.dam -c examples/parity_et.lua -D weights="$PWD/$W/model_best.npz" \
    --device $HI -o "$tmp/parity.img" 2>"$tmp/parity.err"
  ok $? "image of the parity checkpoint"
  grep -q "attn.xi .*token table: input 0, 2 rows" <("$DAMC" image --dump "$tmp/parity.img"); ok $? "the attention rows are a token table"
  "$DAMC" image --extract "$tmp/parity.img" -o "$tmp/parity.npz"
  r=$(python3 "$tmp/cmp.py" "$tmp/parity.npz" "hopf.xi=$W/model_best.npz:xi_hopf_raw" \
      "attn.xi_table=$W/model_best.npz:xi_attn_embed_raw"); rc=$?
  echo "# parity: $r"
  ok $rc "parity: hopf.xi and the attention table within half a step of the squared raw weights"
  DAM_IMAGE="$tmp/parity.img" "$B/tests/t_rt_image" >"$tmp/unit.tap" 2>&1
  ok $? "the reader's corruption checks on the parity image: $(grep -c '^ok' "$tmp/unit.tap") ok"
else
  for k in 1 2 3 4; do n=$((n+1)); echo "ok $n # skip no published checkpoint"; done
fi

# bad input
"$DAMC" image examples/xor.dam -c examples/xor.lua --device tests/image/narrow.lua -o "$tmp/bad.img" 2>"$tmp/bad.err"
rc=$?; [ $rc = 1 ] && [ ! -e "$tmp/bad.img" ] && [ -z "$(ls "$tmp" | grep 'bad.img')" ]; ok $? "out of range: exit 1, no file left"
grep -qx "examples/xor.dam:18:9: error: weight block 'xi' needs conductances 1e-05 .. 1e-05 S (g0 = 1e-05 S per unit weight), but device 'narrow' offers 1e-08 .. 1e-06 S" "$tmp/bad.err"
ok $? "out of range: located error naming the block and both ranges"
"$DAMC" image examples/xor.dam -c examples/xor.lua --device tests/image/badkey.lua -o "$tmp/bad.img" 2>"$tmp/key.err"
rc=$?; [ $rc = 1 ] && [ -z "$(ls "$tmp" | grep 'bad.img')" ]; ok $? "unknown profile key: exit 1, no file left"
grep -q "^tests/image/badkey.lua:4:3: error: unknown key 'encodng' in 'crossbar' (known: rows, cols, gmin, gmax, bits, encoding, scale, dac_bits, adc_bits)$" "$tmp/key.err"
ok $? "unknown profile key: located error"
"$DAMC" image examples/xor.dam -c examples/xor.lua --device tests/image/badenc.lua -o "$tmp/bad.img" 2>"$tmp/enc.err"
rc=$?; [ $rc = 1 ] && grep -q "^tests/image/badenc.lua:3:1: error: 'crossbar.encoding' must be \"differential\" or \"offset\", got 'twos-complement'$" "$tmp/enc.err"
ok $? "unknown encoding: exit 1, located error"
printf 'DAMIMG\0\1garbage' >"$tmp/junk.img"
"$DAMC" image --dump "$tmp/junk.img" 2>"$tmp/junk.err"; rc=$?
[ $rc = 1 ] && grep -q "junk.img: error: header at offset 0: 15 bytes is too short for an image header" "$tmp/junk.err"
ok $? "--dump of a broken file: exit 1 with the reader's message"
# The command line on broken images (the reader's own test, t_rt_image, tries
# every byte and every length in memory): every 3rd single-byte flip and every
# 3rd truncation of the XOR image, a zero-length file and version 1 through
# `damc image --dump` and `damc run --image`: exit 1, one message naming the
# header or a section and an offset, nothing on stdout.
img=$tmp/xor.img
len=$(wc -c <"$img")
python3 - "$img" "$tmp/broken" <<'PY'
import os, struct, sys, zlib
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
b = open(src, "rb").read()
for i in range(0, len(b), 3):
    c = bytearray(b); c[i] ^= 0x5a
    open("%s/flip%05d" % (out, i), "wb").write(c)
for n in range(0, len(b), 3):
    open("%s/cut%05d" % (out, n), "wb").write(b[:n])
v = bytearray(b); v[8] = 1
H = struct.unpack_from("<I", v, 12)[0]
struct.pack_into("<I", v, H - 4, zlib.crc32(bytes(v[:H - 4])))
open("%s/version1" % out, "wb").write(v)
PY
bad=0; tried=0; first=""
for f in "$tmp"/broken/*; do
  tried=$((tried + 1))
  "$DAMC" image --dump "$f" >"$tmp/o" 2>"$tmp/e"; rc=$?
  if [ $rc != 1 ] || [ -s "$tmp/o" ] || ! grep -Eq "error: (header|section [A-Z]+) at offset [0-9]+: " "$tmp/e"; then
    bad=$((bad + 1)); [ -n "$first" ] || first="$(basename "$f"): exit $rc: $(head -c 200 "$tmp/e")"
  fi
done
echo "# $tried broken images through damc image --dump, e.g. $(cat "$tmp/e")"
[ $bad = 0 ]; ok $? "every broken image (flips, truncations, empty, version 1): exit 1 with a located message ($bad of $tried not${first:+; first: $first})"
grep -q "header at offset 8: version 1, expected 2" <("$DAMC" image --dump "$tmp/broken/version1" 2>&1)
ok $? "a wrong version is named: version 1, expected 2"
bad=0
for f in "$tmp"/broken/flip000[0-9]* "$tmp"/broken/cut0000[0-9]; do
  "$DAMC" run examples/xor.dam --input bits=0,0 --image "$f" >"$tmp/o" 2>"$tmp/e"; rc=$?
  { [ $rc = 1 ] && [ ! -s "$tmp/o" ] && grep -q "offset" "$tmp/e"; } || bad=$((bad + 1))
done
[ $bad = 0 ]; ok $? "damc run --image refuses broken images with the reader's message, exit 1 ($bad failed)"
echo "1..$n"
