#!/usr/bin/env bash
# run_trace.t - trajectory files and plots of `damc run`: --trace .csv (header
# t,<layer>[i]...,g_<layer>[i]...,E; one row at t = 0 and one per Euler step;
# the last row agrees with the JSON result), --trace .npy (float64 matrix of
# the same shape and values), --plot .png/.svg through gnuplot (PNG magic
# bytes, non-empty), and a clear error when gnuplot is missing.
set -u
DAMC=${DAMC:-build/damc}
case $DAMC in /*) ;; *) DAMC=$PWD/$DAMC ;; esac
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..11"
"$DAMC" run examples/xor.dam --input bits=1,0 --t-end 2 --json --trace "$tmp/t.csv" >"$tmp/r.json" 2>"$tmp/err"
ok $? "run with --trace t.csv exits 0"
"$DAMC" run examples/xor.dam --input bits=1,0 --t-end 2 --trace "$tmp/t.npy" >/dev/null 2>>"$tmp/err"
ok $? "run with --trace t.npy exits 0"
python3 - "$tmp" <<'PY'
import json, struct, sys, ast
d = sys.argv[1]
n = 2
def ok(cond, what):
    global n; n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
r = json.load(open(f"{d}/r.json"))
lines = open(f"{d}/t.csv").read().splitlines()
want = ("t,v[0],v[1],v[2],h[0],h[1],h[2],h[3],"
        "g_v[0],g_v[1],g_v[2],g_h[0],g_h[1],g_h[2],g_h[3],E")
ok(lines and lines[0] == want, "CSV header: " + (lines[0] if lines else "(empty)"))
rows = [[float(x) for x in l.split(",")] for l in lines[1:]]
ok(len(rows) == 2001 and rows[0][0] == 0 and rows[-1][0] == 2, f"2001 rows from t = 0 to 2 (got {len(rows)})")
last, first = rows[-1] if rows else [], rows[0] if rows else []
ok(last and last[3] == r["outputs"]["y"][0] and last[-1] == r["energy_end"] and first[-1] == r["energy_start"],
   "last row v[2] == output y, E matches energy_start/end exactly")
ok(all(b[-1] <= a[-1] + 1e-12 for a, b in zip(rows, rows[1:])), "E is non-increasing along the trace")
raw = open(f"{d}/t.npy", "rb").read()
ok(raw[:6] == b"\x93NUMPY", "npy magic")
major = raw[6]
hlen = struct.unpack("<H", raw[8:10])[0] if major == 1 else struct.unpack("<I", raw[8:12])[0]
off = 10 if major == 1 else 12
hdr = ast.literal_eval(raw[off:off + hlen].decode("latin1"))
data = struct.unpack(f"<{len(raw[off + hlen:]) // 8}d", raw[off + hlen:])
ok(hdr["descr"] == "<f8" and tuple(hdr["shape"]) == (2001, 16) and not hdr["fortran_order"],
   f"npy header {hdr}")
ok(len(data) == 2001 * 16 and all(abs(a - b) == 0 for a, b in zip(data, sum(rows, []))), "npy values == CSV values")
PY
n=9
"$DAMC" run examples/xor.dam --input bits=1,0 --t-end 5 --plot "$tmp/p.png" >/dev/null 2>"$tmp/perr"
st=$?
magic=$(head -c 8 "$tmp/p.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
ok $([ $st = 0 ] && [ "$magic" = 89504e470d0a1a0a ] && [ -s "$tmp/p.png" ]; echo $?) "--plot p.png: PNG written ($(stat -c %s "$tmp/p.png" 2>/dev/null) bytes, magic $magic)"
mkdir "$tmp/empty"
PATH="$tmp/empty" "$DAMC" run examples/xor.dam --input bits=1,0 --plot "$tmp/q.png" >/dev/null 2>"$tmp/qerr"
st=$?
ok $([ $st = 1 ] && grep -q "cannot run gnuplot" "$tmp/qerr" && [ ! -e "$tmp/q.png" ]; echo $?) "no gnuplot on PATH: exit 1, '$(head -1 "$tmp/qerr")'"
