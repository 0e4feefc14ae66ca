#!/usr/bin/env bash
# fuzz.t - deterministic random mutation of valid and invalid models.
#
# From each of examples/*.dam, stdlib/*.dam and ten files of tests/errors/,
# a seeded mutator (Python, no third-party modules) makes mutants: random
# bytes flipped to printable or non-printable bytes, lines deleted,
# duplicated or swapped, the file truncated, a keyword or bracket inserted.
# Each mutant is checked with `timeout 10 $DAMC check` and must end with exit
# status 0 or 1 (never a signal, a timeout or a usage error), with no
# sanitizer report, 'internal error' or 'Segmentation' on standard error,
# and with at least one 'error:' line when the status is 1.  A mutant that
# checks clean also goes through `derive`, a short `run` (exit 0, 1 or 3: a
# diverged run is an answer) and `netlist` (exit 0 or 1), under the same
# rules.  One TAP line per source file; the first failing mutants are printed.
set -u
DAMC=${DAMC:-build/damc}
SEED=${FUZZ_SEED:-20240611}
PER_FILE=${FUZZ_PER_FILE:-24}
export DAMC_STDLIB=$PWD/stdlib
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Mutants of the error files load their fixtures relative to themselves.
cp -r tests/errors/data "$tmp/data"
weights=../shared/data/published/analog-denseam-parity/model_best.npz
[ -f "$weights" ] && weights=$(cd "$(dirname "$weights")" && pwd)/model_best.npz || weights=
errs="several_errors shape_tensor npz_wrong_shape warn_unbounded warn_asymmetric
      block_nested_import syntax_unbalanced arity_block conflicting_index_range lagrangian_uses_input"
srcs=(examples/*.dam stdlib/*.dam)
for e in $errs; do srcs+=("tests/errors/$e.dam"); done
python3 - "$DAMC" "$tmp" "$SEED" "$PER_FILE" "$weights" "${srcs[@]}" <<'PY'
import os, random, subprocess, sys

damc, tmp, seed, per_file, weights = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
srcs = sys.argv[6:]
WORDS = [b"import", b"param", b"tensor", b"learn", b"lagrangian", b"layer", b"weights", b"bias",
         b"init", b"clamp", b"input", b"output", b"block", b"use", b"(", b")", b"[", b"]", b"{",
         b"}", b"--", b"=", b":", b";", b",", b"\"", b"#", b"sum(i,", b"load(", b"1e999", b"-0",
         b"index(", b"x[", b"0:", b"\n", b"\\", b"\x00", b"\xff", b"1e12", b"softmax(", b"^"]

def mutate(rng, data):
    lines = data.split(b"\n")
    op = rng.randrange(7)
    if op == 0 and data:                      # flip bytes: printable or not
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.choice([rng.randint(32, 126), rng.randint(0, 255)])
        return bytes(b), "flip bytes"
    if op == 1 and len(lines) > 1:            # delete lines
        i = rng.randrange(len(lines)); k = rng.randint(1, 3)
        return b"\n".join(lines[:i] + lines[i + k:]), "delete lines %d+%d" % (i + 1, k)
    if op == 2:                               # duplicate a line
        i = rng.randrange(len(lines))
        return b"\n".join(lines[:i + 1] + [lines[i]] + lines[i + 1:]), "duplicate line %d" % (i + 1)
    if op == 3:                               # truncate
        n = rng.randrange(len(data) + 1)
        return data[:n], "truncate at %d" % n
    if op == 4 and len(lines) > 1:            # swap two lines
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines), "swap lines %d %d" % (i + 1, j + 1)
    if op == 5:                               # insert a keyword or bracket
        n = rng.randrange(len(data) + 1); w = rng.choice(WORDS)
        return data[:n] + (b" " if rng.random() < 0.5 else b"") + w + data[n:], "insert %r at %d" % (w, n)
    b = bytearray(data)                       # delete a random span
    if b:
        i = rng.randrange(len(b)); del b[i:i + rng.randint(1, 8)]
    return bytes(b), "delete span"

last_status = None

def judge(args, allowed):
    """Run damc with args; return (why it is wrong or None, stderr)."""
    global last_status
    p = subprocess.run(["timeout", "10", damc] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last_status = p.returncode
    err = p.stderr.decode("utf-8", "replace")
    why = None
    if p.returncode not in allowed:
        why = "exit status %d" % p.returncode
    for s in ("AddressSanitizer", "LeakSanitizer", "runtime error", "internal error", "Segmentation"):
        if s in err:
            why = "stderr has '%s'" % s
    if p.returncode == 1 and not any(" error: " in l or l.startswith("damc: error:") or
                                      l.startswith("damc run: ") for l in err.split("\n")):
        why = why or "exit 1 without an 'error:' line"
    return why, err

rng = random.Random(seed)
print("1..%d" % len(srcs))
total = deep = 0
for t, src in enumerate(srcs, 1):
    data = open(src, "rb").read()
    bad = []
    for k in range(per_file):
        m, what = data, []
        for _ in range(rng.choice([1, 1, 2, 3])):
            m, w = mutate(rng, m); what.append(w)
        path = os.path.join(tmp, "m%02d_%02d.dam" % (t, k))
        open(path, "wb").write(m)
        extra = ["-D", "weights=" + weights] if weights and b"param weights" in m else []
        why, err = judge(["check", path] + extra, (0, 1))
        if not why and last_status == 0:
            deep += 1
            for cmd, allowed in ((["derive", path], (0, 1)),
                                 (["run", path, "--t-end", "0.02", "--dt", "0.01"], (0, 1, 3)),
                                 (["netlist", path, "--t-end", "0.02", "--dt", "0.01"], (0, 1))):
                why, err = judge(cmd + extra, allowed)
                if why:
                    why = "damc %s: %s" % (cmd[0], why)
                    break
        if why:
            bad.append((why, what, m, err))
    total += per_file
    if bad:
        print("not ok %d - %s: %d of %d mutants failed" % (t, src, len(bad), per_file))
        for why, what, m, err in bad[:3]:
            print("#   %s (%s); mutant:" % (why, ", ".join(what)))
            for l in m.split(b"\n"):
                print("#   | " + repr(l)[2:-1])
            for l in err.split("\n")[-12:]:
                print("#   ! " + l)
    else:
        print("ok %d - %s: %d mutants" % (t, src, per_file))
print("# %d mutants in all; %d checked clean and also went through derive, run and netlist" % (total, deep))
PY
