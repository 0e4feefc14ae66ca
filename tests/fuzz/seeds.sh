#!/usr/bin/env bash
# seeds.sh - fill the seed corpora of the libFuzzer harnesses (tests/fuzz/).
#   tests/fuzz/seeds.sh [DIR]      # default: build-fuzz/corpus
# Writes DIR/<harness>/ for frontend, run, config and data:
#   frontend, run  examples/*.dam, stdlib/*.dam, tests/errors/**/*.dam, the
#                  spice test models and the ```dam blocks of docs/language.md
#   config         examples/*.lua, tests/spice/*.lua, examples/devices/*.lua
#                  and small crafted configs (every key, every kind of value,
#                  errors of each kind)
#   data           tests/errors/data/* and crafted datasets, .npy and .npz
#                  files, each prefixed with the selector byte of fuzz_data.c
#   image          crossbar images of xor, hamming74, signed.dam (both
#                  encodings) and the parity checkpoint written by $DAMC
#                  (default build/damc; none without it), each with both
#                  selector bytes of fuzz_image.c (as is, CRCs fixed up)
# Files are named by content (sha1), so re-running only adds; the entries
# libFuzzer adds to the same directories during long runs are kept.
# Needs python3 (no third-party modules).  Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build-fuzz/corpus}
mkdir -p "$out"/{frontend,run,config,data,image}
python3 - "$out" <<'PY'
import glob, hashlib, io, os, re, struct, sys, zipfile

out = sys.argv[1]
count = {}

def put(harness, data):
    if isinstance(data, str):
        data = data.encode()
    name = hashlib.sha1(data).hexdigest()
    path = os.path.join(out, harness, name)
    if not os.path.exists(path):
        open(path, "wb").write(data)
    count[harness] = count.get(harness, 0) + 1

# --- .dam models: front end and run ------------------------------------------
dams = sorted(glob.glob("examples/*.dam") + glob.glob("stdlib/*.dam") +
              glob.glob("tests/errors/**/*.dam", recursive=True) + glob.glob("tests/spice/*.dam"))
for p in dams:
    text = open(p, "rb").read()
    put("frontend", text)
    put("run", text)
for doc in ["docs/language.md"]:
    lines = open(doc, encoding="utf-8").read().split("\n")
    block = None
    for l in lines:
        if block is None and re.match(r"^```dam(-error)?\s*$", l):
            block = []
        elif block is not None and l.startswith("```"):
            put("frontend", "\n".join(block) + "\n")
            put("run", "\n".join(block) + "\n")
            block = None
        elif block is not None:
            block.append(l)

# --- Lua run configurations and device profiles -------------------------------
for p in sorted(glob.glob("examples/*.lua") + glob.glob("tests/spice/*.lua") +
                glob.glob("examples/devices/*.lua")):
    put("config", open(p, "rb").read())
configs = [
    'solver = "rk4"\ndt = 1e-2\nt_end = 2\ninputs = { bits = { 1, 0 } }\noutputs = { "y" }\njson = true\n',
    'solver = "dopri5"\nrtol = 1e-6\natol = 1e-9\nsteady_tol = 1e-4\ndiverge_limit = 0\nthreads = 2\n',
    'solver = "expeuler"\nparams = { beta = 4, weights = "w.npz" }\ntrace = "t.csv"\nplot = "p.png"\n',
    'dataset = "rows.txt"\n',
    'dataset = function()\n  local r = {}\n  for i = 0, 3 do r[#r + 1] = { i % 2, i // 2 } end\n  return r\nend\n',
    'dataset = { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } }\n',
    'volts_per_unit = 0.5\nseconds_per_time_unit = 1e-6\ndevice = "discrete"\nlevel = "amplifier"\n',
    'dt = "fast"\n',
    'threads = 1.5\n',
    'inputs = { bits = { 1, "x" } }\n',
    'dataset = { { 0, 0 }, { 1 } }\n',
    'outputs = { 1, 2 }\n',
    'unknown_key = 1\n',
    'while true do end\n',
    'local t = {}\nfor i = 1, 1e9 do t[i] = i end\n',
    'error("boom")\n',
    'dt = = 1\n',
    'x = load("return 1 + 1")()\ndt = x / 100\n',
    'x = string.rep("a", 10)\nsolver = x:sub(1, 5)\n',
    'setmetatable(_ENV, {})\n',
    't_end = math.huge\ndt = 0 / 0\n',
    'name = "fuzz"\ndescription = "d"\namplifier = { gain = 1, gbw = 2, slew = 3, vmax = 1, vmin = -1, power = 0 }\n'
    'crossbar = { rows = 4, cols = 4, gmin = 1e-6, gmax = 1e-3 }\n',
    'amplifier = { gain = -1 }\ncrossbar = { rows = "x" }\n',
]
for c in configs:
    put("config", c)

# --- datasets, .npy, .npz (selector byte first; see fuzz_data.c) --------------
def npy(descr, shape, data, version=(1, 0), fortran=False):
    hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, repr(tuple(shape)))
    hlen = 10 if version[0] == 1 else 12
    pad = (64 - (hlen + len(hdr) + 1) % 64) % 64
    hdr = (hdr + " " * pad + "\n").encode("latin1")
    size = struct.pack("<H", len(hdr)) if version[0] == 1 else struct.pack("<I", len(hdr))
    return b"\x93NUMPY" + bytes(version) + size + hdr + data

def npz(members, method=zipfile.ZIP_STORED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                       compress_type=method)
    return b.getvalue()

for p in sorted(glob.glob("tests/errors/data/*")):
    data = open(p, "rb").read()
    if p.endswith(".npy"):
        put("data", b"\x02" + data)
    elif p.endswith(".npz"):
        put("data", b"\x03" + data)
datasets = [b"1 0 1\n0 1 0\n", b"1,0,1\n0,1,0\n", b"# header\n\n1, 0, 1\n  \t0 ,1, 0\n",
            b"1 0\n1 0 1\n", b"1 x1 0\n", b"1e308 -1e308 1e-320 nan inf\n", b"1,,2\n", b"\n\n",
            b"0x1p3 .5 5. -0\n", b"1 2 3\r\n4 5 6\r\n"]
for k, d in enumerate(datasets):
    put("data", bytes([4 * (k % 4)]) + d)     # cols 0, 1, 2, 3
    put("data", b"\x01" + d.split(b"\n")[0])
f64 = lambda *v: struct.pack("<%dd" % len(v), *v)
npys = [
    npy("<f8", (2, 3), f64(1, 2, 3, 4, 5, 6)),
    npy("<f8", (2, 3), f64(1, 2, 3, 4, 5, 6), fortran=True),
    npy("<f4", (4,), struct.pack("<4f", 0.5, -0.5, 1, 0)),
    npy(">f8", (2,), struct.pack(">2d", 1, 2)),
    npy("<i8", (3,), struct.pack("<3q", 1, -2, 3)),
    npy("<i4", (2, 2), struct.pack("<4i", 1, 2, 3, 4)),
    npy("|u1", (3,), bytes([1, 2, 255])),
    npy("|b1", (2,), bytes([0, 1])),
    npy("<f2", (2,), struct.pack("<2e", 1.5, -2)),
    npy("<f8", (), f64(7)),
    npy("<f8", (0,), b""),
    npy("<f8", (2, 0, 3), b""),
    npy("<f8", (3,), f64(1, 2, 3), version=(2, 0)),
    npy("<f8", (3,), f64(1, 2, 3), version=(3, 0)),
    npy("<c16", (1,), f64(1, 0)),
    npy("<f8", (4,), f64(1, 2)),                    # truncated data
]
for n in npys:
    put("data", b"\x02" + n)
put("data", b"\x02" + npys[0][:20])      # truncated header
put("data", b"\x03" + npz([("a.npy", npys[2]), ("W.npy", npys[0])]))
put("data", b"\x03" + npz([("a.npy", npys[2]), ("b.npy", npys[4])], zipfile.ZIP_DEFLATED))
put("data", b"\x03" + npz([("x", npys[0])]))
put("data", b"\x03" + npz([]))
for h in sorted(count):
    print("%-8s %3d seeds -> %s/%s" % (h, count[h], out, h))
PY
D=${DAMC:-build/damc}
if [ -x "$D" ]; then
  t=$(mktemp -d)
  k=0
  for spec in "examples/xor.dam examples/xor.lua discrete" \
              "examples/hamming74.dam examples/hamming74.lua tests/image/hires.lua" \
              "tests/spice/signed.dam - tests/image/hires_offset.lua" \
              "examples/parity_et.dam examples/parity_et.lua integrated"; do
    set -- $spec
    cfg=(); [ "$2" = - ] || cfg=(-c "$2" --row 0)
    if "$D" image "$1" "${cfg[@]}" --device "$3" -o "$t/$k.img" 2>/dev/null; then
      for sel in 0 1; do
        { printf "\\$(printf %o $sel)"; cat "$t/$k.img"; } >"$t/seed"
        cp "$t/seed" "$out/image/$(sha1sum "$t/seed" | cut -c1-40)"
      done
    fi
    k=$((k + 1))
  done
  rm -rf "$t"
  echo "image    $(ls "$out/image" | wc -l) seeds -> $out/image"
fi
