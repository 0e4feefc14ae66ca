#!/usr/bin/env bash
# install.t - `cmake --install` into a temporary prefix, then use the
# installed copy only (docs/api.md "Installing"):
#  - the layout: damc, libdam (shared and static), libdam-runtime (shared and
#    static), the headers under include/dam, the stdlib and the device
#    profiles under share/damc, dam.pc and dam-runtime.pc;
#  - libdam.so exports the dam_* API and nothing else;
#  - the installed damc runs XOR from a directory outside the source tree and
#    searches the installed stdlib (a module only the installed copy has);
#  - examples/embed.c builds with `pkg-config --cflags --libs dam` (shared)
#    and against libdam.a (`pkg-config --static`), and both runs print the four
#    XOR outputs within 0.05 of a XOR b;
#  - examples/controller.c builds with `pkg-config --cflags --libs dam` and with
#    `dam-runtime`; the runtime build needs neither LLVM nor libdam.so
#    (readelf -d), reads an image the installed damc wrote, and its dequantised
#    weights are exactly those of `damc image --extract`; a corrupted image is
#    refused with the reader's message, exit 1.
set -u
B=${DAM_BUILD:-build}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
P=$tmp/prefix
cmake --install "$B" --prefix "$P" >"$tmp/install.log" 2>&1
ok $? "cmake --install $B --prefix TMP"
missing=""
for f in bin/damc lib/libdam.so lib/libdam.a lib/libdam-runtime.so lib/libdam-runtime.a \
         include/dam/dam.h include/dam/dam_image.h lib/pkgconfig/dam.pc lib/pkgconfig/dam-runtime.pc \
         share/damc/stdlib/blocks.dam share/damc/stdlib/lagrangians.dam share/damc/devices/discrete.lua; do
  [ -e "$P/$f" ] || missing="$missing $f"
done
[ -z "$missing" ]; ok $? "installed layout complete${missing:+ (missing:$missing)}"
other=$(nm -D --defined-only "$P/lib/libdam.so" | awk '{print $3}' | grep -v '^dam_' | grep -v '^_' | head -3)
nm -D --defined-only "$P/lib/libdam.so" | grep -q ' dam_compile_file$' &&
  nm -D --defined-only "$P/lib/libdam.so" | grep -q ' dam_image_open$' && [ -z "$other" ]
ok $? "libdam.so exports the dam_* API only${other:+ (also: $other)}"

# the installed damc, outside the source tree, with its installed stdlib
mkdir -p "$tmp/work"
cp examples/xor.dam examples/xor.lua "$tmp/work/"
printf '# probe.dam - only the installed stdlib has it (tests/install.t)\nparam probe_beta = 8\n' \
  >"$P/share/damc/stdlib/probe.dam"
sed 's/^import "lagrangians"/import "lagrangians"\nimport "probe"/' examples/xor.dam >"$tmp/work/xorp.dam"
(cd "$tmp/work" && env -u DAMC_STDLIB -u DAMC_DEVICES "$P/bin/damc" run xor.dam -c xor.lua --json) \
  >"$tmp/xor.jsonl" 2>"$tmp/xor.err"
r=$(python3 -c "
import json, sys
rs = [json.loads(l) for l in open('$tmp/xor.jsonl')]
ins = [(0, 0), (0, 1), (1, 0), (1, 1)]
y = lambda r: r['outputs']['y'][0] if isinstance(r['outputs']['y'], list) else r['outputs']['y']
print(max(abs(y(r) - (a ^ b)) for r, (a, b) in zip(rs, ins)) if len(rs) == 4 else 9)")
python3 -c "import sys; sys.exit(0 if $r < 0.05 else 1)"
ok $? "installed damc runs XOR outside the source tree (worst |y - xor| = $r, tol 0.05)"
(cd "$tmp/work" && env -u DAMC_STDLIB "$P/bin/damc" check xorp.dam) >/dev/null 2>"$tmp/probe.err"
ok $? "installed damc imports from the installed stdlib (share/damc/stdlib/probe.dam)"

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
san=""
grep -q '^DAM_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null && san="-fsanitize=address,undefined"
CFLAGS="-std=c17 -O2 -Wall -Wextra -Wconversion -Werror $san"
xorcheck() {   # embed output -> worst |y - xor| or 9
  python3 -c "
import sys
xs = [l.split() for l in open(sys.argv[1]) if l.startswith('xor ')]
print(max(abs(float(t[3][2:]) - (int(t[1]) ^ int(t[2]))) for t in xs) if len(xs) == 4 else 9)" "$1"
}
pub=../shared/data/published/analog-denseam-parity/model_best.npz
# shellcheck disable=SC2046
cc $CFLAGS "$P/share/damc/examples/embed.c" $(pkg-config --cflags --libs dam) -o "$tmp/embed" 2>"$tmp/cc1.err"
ok $? "embed.c builds with pkg-config --cflags --libs dam"
LD_LIBRARY_PATH="$P/lib" "$tmp/embed" -e "$tmp/work" "$pub" >"$tmp/e1.out" 2>"$tmp/e1.err"
w=$(xorcheck "$tmp/e1.out")
python3 -c "import sys; sys.exit(0 if $w < 0.05 else 1)"
ok $? "embed (shared libdam) computes XOR (worst |y - xor| = $w)"
static_libs=$(pkg-config --static --libs dam | sed 's/-ldam\b/-l:libdam.a/')
# shellcheck disable=SC2086
cc $CFLAGS "$P/share/damc/examples/embed.c" $(pkg-config --cflags dam) $static_libs -o "$tmp/embed_s" 2>"$tmp/cc2.err"
ok $? "embed.c builds against libdam.a (pkg-config --static)"
! readelf -d "$tmp/embed_s" | grep -q 'libdam\.so'
ok $? "the static build needs no libdam.so"
"$tmp/embed_s" -e "$tmp/work" "$pub" >"$tmp/e2.out" 2>"$tmp/e2.err"
w=$(xorcheck "$tmp/e2.out")
python3 -c "import sys; sys.exit(0 if $w < 0.05 else 1)"
ok $? "embed (static libdam) computes XOR (worst |y - xor| = $w)"

# the controller: the image reader alone
cc $CFLAGS "$P/share/damc/examples/controller.c" $(pkg-config --cflags --libs dam) -o "$tmp/ctl_dam" 2>"$tmp/cc3.err"
ok $? "controller.c builds with pkg-config --cflags --libs dam"
cc $CFLAGS "$P/share/damc/examples/controller.c" $(pkg-config --cflags --libs dam-runtime) -o "$tmp/ctl" 2>"$tmp/cc4.err"
ok $? "controller.c builds with pkg-config --cflags --libs dam-runtime"
needed=$(readelf -d "$tmp/ctl" | grep NEEDED | tr -s ' ' | cut -d' ' -f6 | tr '\n' ' ')
echo "# controller (runtime) needs: $needed"
! echo "$needed" | grep -qi 'llvm\|libdam\.so\|lua'
ok $? "the runtime controller links without LLVM, Lua or libdam.so"
(cd "$tmp/work" && "$P/bin/damc" image xor.dam -c xor.lua --row 0 --device discrete -o xor.img) 2>"$tmp/img.err" &&
  "$P/bin/damc" image --extract "$tmp/work/xor.img" -o "$tmp/xor.npz" 2>>"$tmp/img.err"
ok $? "installed damc writes and extracts an image (installed device profile 'discrete')"
LD_LIBRARY_PATH="$P/lib" "$tmp/ctl" "$tmp/work/xor.img" --weights >"$tmp/ctl.out" 2>"$tmp/ctl.err"
st=$?
r=$(python3 - "$tmp/ctl.out" "$tmp/xor.npz" <<'PY'
import ast, struct, sys, zipfile
z = zipfile.ZipFile(sys.argv[2])
b = z.read("xi.npy")
hl = struct.unpack("<H", b[8:10])[0]
h = ast.literal_eval(b[10:10 + hl].decode("latin1"))
rows, cols = h["shape"]
want = struct.unpack("<%dd" % (rows * cols), b[10 + hl:10 + hl + 8 * rows * cols])
got = {}
for l in open(sys.argv[1]):
    t = l.split()
    if t[0] == "w" and t[1] == "xi":
        got[(int(t[2]), int(t[3]))] = float(t[4])
same = len(got) == rows * cols and all(got[(r, c)] == want[r * cols + c] for r in range(rows) for c in range(cols))
print("%d %d" % (len(got), 0 if same else 1))
PY
)
set -- $r
[ $st = 0 ] && [ "${2:-1}" = 0 ] && grep -q "^block xi: 4x3 in 1 tiles" "$tmp/ctl.out"
ok $? "controller reads the image: ${1:-0} weights of xi, identical to damc image --extract"
python3 -c "
import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[300] ^= 0x40; open(sys.argv[2], 'wb').write(b)" \
  "$tmp/work/xor.img" "$tmp/bad.img"
LD_LIBRARY_PATH="$P/lib" "$tmp/ctl" "$tmp/bad.img" >/dev/null 2>"$tmp/bad.err"; st=$?
echo "# $(cat "$tmp/bad.err")"
[ $st = 1 ] && grep -q "CRC mismatch" "$tmp/bad.err"
ok $? "a corrupted image is refused by the controller (exit $st, the reader's message)"
echo "1..$n"
