#!/usr/bin/env bash
# netlist_docs.t - the two examples of docs/netlist.md work as documented.
#
# Extracts the Lua run configuration marked <!-- example: netlist.lua --> and
# the device profile marked <!-- example: device.lua -->, then: the deck of
# XOR under the configuration carries the configuration's scales (header line,
# .tran, C1, clamp and .ic values); `damc verify --solver rk4` passes and
# ngspice's y is the XOR bit of the configured inputs; the JIT's Euler error is
# what makes a plain Euler comparison loose; the profile loads (by path and
# through $DAMC_DEVICES), its numbers reach the damc_amp macromodel, and the
# amplifier-level deck verifies within the tolerance the page states (1e-2);
# `damc report` reads the profile's crossbar range.
set -u
DAMC=${DAMC:-build/damc}
DOC=docs/netlist.md
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
if ! command -v "${DAMC_NGSPICE:-ngspice}" >/dev/null; then echo "1..0 # SKIP ngspice is not installed"; exit 0; fi

extract() {  # extract NAME: the ```lua block after <!-- example: NAME -->
  awk -v tag="<!-- example: $1 -->" '$0 == tag {f=1; next} f && /^```lua/ {g=1; next} g && /^```/ {exit} g' "$DOC"
}
extract netlist.lua >"$tmp/netlist.lua"
extract device.lua >"$tmp/device.lua"
grep -q '^volts_per_unit' "$tmp/netlist.lua" && grep -q '^seconds_per_time_unit' "$tmp/netlist.lua" &&
  grep -q '^inputs' "$tmp/netlist.lua"
ok $? "netlist.lua extracted from $DOC (inputs and both scales)"
grep -q '^amplifier' "$tmp/device.lua" && grep -q '^crossbar' "$tmp/device.lua"
ok $? "device.lua extracted from $DOC (amplifier and crossbar tables)"

# Values of the examples, read with a small parser (flat `key = number` lines
# and `bits = { a, b }`): the expectations follow the blocks if they change.
python3 - "$tmp/netlist.lua" "$tmp/device.lua" >"$tmp/vals.sh" <<'PY'
import re, sys
def nums(path):
    out = {}
    for line in open(path):
        line = line.split("--")[0]
        for k, v in re.findall(r"\b([a-z_]+)\s*=\s*([-+0-9.eE]+)\b", line):
            out[k] = float(v)
    return out, open(path).read()
c, ctext = nums(sys.argv[1])
d, dtext = nums(sys.argv[2])
def short(v):                      # damc's num(): the shortest %.Ng (N >= 12) that reads back
    for p in range(12, 18):
        s = "%.*g" % (p, v)
        if float(s) == v:
            return s
    return s
bits = [float(x) for x in re.search(r"bits\s*=\s*\{([^}]*)\}", ctext).group(1).split(",")]
vpu, spu, dt, tend = c["volts_per_unit"], c["seconds_per_time_unit"], c["dt"], c["t_end"]
name = re.search(r'^name\s*=\s*"([^"]*)"', dtext, re.M).group(1)
print(f"HEADER='* damc: volts_per_unit={short(vpu)} seconds_per_time_unit={short(spu)}'")
print(f"TRAN='.tran {dt * spu:.15g} {tend * spu:.15g} 0 {dt * spu:.15g} uic'")
print(f"CIV='CI_v_2 v_2 0 {1.0 * spu / 1e5:.15g}'")         # tau_v = 1
print(f"CIH='CI_h_1 h_1 0 {0.1 * spu / 1e5:.15g}'")         # tau_h = tau_v / 10
print(f"VC0='VC_v_0 v_0 0 DC {short(vpu * bits[0])}'")
print(f"VC1='VC_v_1 v_1 0 DC {short(vpu * bits[1])}'")
print(f"IC='.ic V(v_2)={short(vpu * 0.5)}'")                # init v[2] = 0.5
print(f"XOR={int(bits[0]) ^ int(bits[1])}")
print(f"DEV='{name}'")
for k in ("gain", "gbw", "slew", "vmax", "vmin", "power", "gmin", "gmax"):
    print(f"{k.upper()}={d[k]!r}")
PY
# shellcheck disable=SC1091
. "$tmp/vals.sh"

# ---- the run configuration: the deck carries its scales and inputs ---------------
"$DAMC" netlist examples/xor.dam -c "$tmp/netlist.lua" -o "$tmp/xor.cir" 2>"$tmp/e"
ok $? "damc netlist examples/xor.dam -c netlist.lua exits 0"
[ "$(sed -n 2p "$tmp/xor.cir")" = "$HEADER" ]
ok $? "header line shows the config's scales: $HEADER"
grep -qxF "$TRAN" "$tmp/xor.cir" && grep -qxF "$CIV" "$tmp/xor.cir" && grep -qxF "$CIH" "$tmp/xor.cir"
ok $? "dt, t_end and tau in seconds: '$TRAN', C1 of v ($CIV) and of h ($CIH)"
grep -qxF "$VC0" "$tmp/xor.cir" && grep -qxF "$VC1" "$tmp/xor.cir" && grep -qxF "$IC" "$tmp/xor.cir"
ok $? "the config's inputs are the clamp sources and the initial state is scaled: $VC0, $VC1, $IC"
"$DAMC" netlist examples/xor.dam -c "$tmp/netlist.lua" -o "$tmp/xor2.cir" 2>/dev/null
cmp -s "$tmp/xor.cir" "$tmp/xor2.cir"
ok $? "the same deck, byte for byte, twice"

# ---- verify, behavioural level ----------------------------------------------------
"$DAMC" verify examples/xor.dam -c "$tmp/netlist.lua" --solver rk4 >"$tmp/v.txt" 2>"$tmp/v.err"
st=$?
sed 's/^/# /' "$tmp/v.txt"
y=$(awk '$1 == "output" && $2 == "y" {print $6}' "$tmp/v.txt")
[ $st = 0 ] && grep -q '^row 0: PASS ' "$tmp/v.txt" && grep -qx 'verify: 1/1 rows within tolerance' "$tmp/v.txt" &&
  python3 -c "import sys; sys.exit(0 if abs(float('${y:-nan}') - $XOR) < 0.01 else 1)"
ok $? "damc verify -c netlist.lua --solver rk4: exit 0, PASS, ngspice's y = ${y:-?} within 0.01 of $XOR"

"$DAMC" verify examples/xor.dam -c "$tmp/netlist.lua" --solver rk4 --json >"$tmp/rk4.json" 2>/dev/null
"$DAMC" verify examples/xor.dam -c "$tmp/netlist.lua" --json >"$tmp/euler.json" 2>/dev/null
python3 - "$tmp/euler.json" "$tmp/rk4.json" <<'PY'
import json, sys
e, r = (json.loads(open(p).read()) for p in sys.argv[1:3])
he, hr = e["layers"]["h"]["max_dev"], r["layers"]["h"]["max_dev"]
print(f"# layer h: largest deviation with the JIT on Euler {he:.3g}, on RK4 {hr:.3g} (tolerance {r['tol']:.3g})")
sys.exit(0 if he > 5e-4 and hr < 2e-4 and he > 5 * hr else 1)
PY
ok $? "the JIT's own error counts: Euler dt 1e-3 is off by more than 5e-4 on h, RK4 by less than 2e-4"

# ---- the device profile ------------------------------------------------------------
"$DAMC" netlist examples/xor.dam -c "$tmp/netlist.lua" --level amplifier --device "$tmp/device.lua" \
  -o "$tmp/amp.cir" 2>"$tmp/e"
st=$?
[ $st = 0 ] && grep -qx '\.subckt damc_amp inp inn out' "$tmp/amp.cir" && grep -q "^\* amplifiers: device '$DEV'" "$tmp/amp.cir" &&
  grep -q '^XU_v_2 v_2_u_t v_2_u_f v_2_u damc_amp$' "$tmp/amp.cir"
ok $? "the profile loads by path: --level amplifier deck has .subckt damc_amp, device '$DEV', op-amp stages"
python3 - "$tmp/amp.cir" "$GAIN" "$GBW" "$SLEW" "$VMAX" "$VMIN" <<'PY'
import math, re, sys
deck = open(sys.argv[1]).read()
A0, gbw, sr, vmax, vmin = map(float, sys.argv[2:7])
cp = 1e-12
gm, isr = 2 * math.pi * gbw * cp, sr * cp
b1 = re.search(r"^B1 0 n1 I=([^*]+)\*tanh\(([^*]+)\*", deck, re.M)
r1 = re.search(r"^R1 n1 0 (\S+)$", deck, re.M)
b2 = re.search(r"^B2 out 0 V=max\(([^,]+), min\(([^,]+), V\(n1\)\)\)$", deck, re.M)
close = lambda a, b: abs(a - b) <= 1e-12 * abs(b)
good = bool(b1 and r1 and b2) and close(float(b1.group(1)), isr) and close(float(b1.group(2)), gm / isr) \
    and abs(float(r1.group(1)) - A0 / gm) <= 1e-9 * A0 / gm and float(b2.group(1)) == vmin and float(b2.group(2)) == vmax
print(f"# damc_amp: isr {b1.group(1) if b1 else '?'} A, ro {r1.group(1) if r1 else '?'} Ohm, swing {vmin}..{vmax} V")
sys.exit(0 if good else 1)
PY
ok $? "the profile's gain, gbw, slew and swing reach the macromodel (isr = SR cp, ro = A0/(2 pi GBW cp), clip)"
mkdir -p "$tmp/devs" && cp "$tmp/device.lua" "$tmp/devs/$DEV.lua"
DAMC_DEVICES=$tmp/devs "$DAMC" netlist examples/xor.dam -c "$tmp/netlist.lua" --level amplifier --device "$DEV" \
  -o "$tmp/amp2.cir" 2>/dev/null && cmp -s "$tmp/amp.cir" "$tmp/amp2.cir"
ok $? "--device $DEV finds $DEV.lua in \$DAMC_DEVICES (the same deck)"

"$DAMC" verify examples/xor.dam -c "$tmp/netlist.lua" --solver rk4 --level amplifier --device "$tmp/device.lua" \
  --tol 1e-2 --json >"$tmp/amp.json" 2>"$tmp/amp.err"
st=$?
python3 - "$tmp/amp.json" "$XOR" <<'PY'; pst=$?
import json, sys
r = json.loads(open(sys.argv[1]).read())
y = r["outputs_spice"]["y"]
print(f"# amplifier level: largest deviation {r['max_dev']:.3g} (v {r['layers']['v']['max_dev']:.3g}, h {r['layers']['h']['max_dev']:.3g}), y_spice {y:.6f}, y_jit {r['outputs_jit']['y']:.6f}")
sys.exit(0 if r["pass"] and r["max_dev"] <= 1e-2 and abs(y - int(sys.argv[2])) < 0.01 else 1)
PY
[ $pst = 0 ] && [ $st = 0 ] && ! grep -q 'beyond the output swing' "$tmp/amp.err"
ok $? "verify --level amplifier --device device.lua --tol 1e-2: exit 0, PASS, y close to $XOR, no swing warning"

"$DAMC" report examples/xor.dam -c "$tmp/netlist.lua" --device "$tmp/device.lua" >"$tmp/r.txt" 2>/dev/null
st=$?
range=$(python3 -c "print('(device %.3g .. %.3g S)' % ($GMIN, $GMAX))")
[ $st = 0 ] && grep -q "device '$DEV'" "$tmp/r.txt" && grep -qF "$range" "$tmp/r.txt" &&
  grep -q 'limited by            gain-bandwidth' "$tmp/r.txt"
ok $? "damc report reads the profile's crossbar range $range; XOR on it is gain-bandwidth limited"
sed -n '/speed/,$p' "$tmp/r.txt" | sed 's/^/# /'
echo "1..$n"
