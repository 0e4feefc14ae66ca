#!/usr/bin/env bash
# jit_cache.t - the JIT's object cache (src/backends/jit/jit.c, docs/cli.md):
# a second `damc run` of the same model loads both halves' object code from
# DAMC_CACHE_DIR and prints the same bytes as the first (and as a run with
# DAMC_CACHE=0, which writes nothing); another model or another -O level is
# another entry; an entry with corrupted object bytes (its CRC-32) or a
# truncated one is a miss (the run compiles, prints the same bytes and
# replaces the entry); an entry whose key differs in one byte is never used.
set -u
DAMC=${DAMC:-build/damc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
run() { "$DAMC" run examples/xor.dam -c examples/xor.lua --json "$@" 2>/dev/null; }
entries() { find "$tmp/c" -name '*.o' 2>/dev/null | wc -l; }

DAMC_CACHE=0 DAMC_CACHE_DIR="$tmp/c" run >"$tmp/nocache.json"
ok $? "DAMC_CACHE=0: the run succeeds"
[ "$(entries)" = 0 ]; ok $? "DAMC_CACHE=0 writes no cache entry"

DAMC_CACHE_DIR="$tmp/c" run >"$tmp/first.json"
ok $? "first run with an empty cache"
[ "$(entries)" = 2 ]; ok $? "the first run stores two entries (the cold and the hot half): $(entries)"
cmp -s "$tmp/first.json" "$tmp/nocache.json"; ok $? "and prints what the uncached run prints"

stamp=$(ls -l --time-style=+%s.%N "$tmp"/c/*.o | md5sum)
DAMC_CACHE_DIR="$tmp/c" run >"$tmp/second.json"
cmp -s "$tmp/second.json" "$tmp/first.json"; ok $? "the second run (from the cache) prints the same bytes"
[ "$(ls -l --time-style=+%s.%N "$tmp"/c/*.o | md5sum)" = "$stamp" ]; ok $? "a hit rewrites no entry"

DAMC_CACHE_DIR="$tmp/c" run -O1 >"$tmp/o1.json"
[ "$(entries)" = 4 ]; ok $? "-O1 is another key: 4 entries"
DAMC_CACHE_DIR="$tmp/c" "$DAMC" run examples/hamming74.dam -c examples/hamming74.lua --json >/dev/null 2>&1
[ "$(entries)" = 6 ]; ok $? "another model is another key: 6 entries"

# Corrupt every entry's object bytes (the end of the file; key intact): its
# CRC-32 no longer matches, so it is a miss.
for f in "$tmp"/c/*.o; do printf 'garbage' | dd of="$f" bs=1 seek=$(( $(stat -c %s "$f") - 7 )) conv=notrunc status=none; done
DAMC_CACHE_DIR="$tmp/c" run >"$tmp/crc.json"
ok $? "a run over entries with corrupted object bytes succeeds"
cmp -s "$tmp/crc.json" "$tmp/first.json"; ok $? "and prints the same bytes (the entries were misses)"
# Then truncate every entry.
for f in "$tmp"/c/*.o; do head -c 100 "$f" >"$f.t" && mv "$f.t" "$f"; done
DAMC_CACHE_DIR="$tmp/c" run >"$tmp/trunc.json"
ok $? "a run over truncated entries succeeds"
cmp -s "$tmp/trunc.json" "$tmp/first.json"; ok $? "and prints the same bytes (the entries were misses)"
big=$(find "$tmp/c" -name '*.o' -size +1k | wc -l)
[ "$big" -ge 2 ]; ok $? "the misses were stored again ($big whole entries)"

# An entry whose key differs in one byte (the LLVM version line) must not be
# used, even under the right file name.
for f in "$tmp"/c/*.o; do
  python3 - "$f" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b"llvm ")
if i >= 0:
    b[i + 5] = ord("9") if b[i + 5] != ord("9") else ord("8")
    # and make the object bytes garbage: if the entry were used, the run would fail
    b[-64:] = b"\xcc" * 64 if len(b) > 64 else b[-64:]
open(p, "wb").write(bytes(b))
PY
done
DAMC_CACHE_DIR="$tmp/c" run >"$tmp/key.json"
ok $? "a run over entries with a different key succeeds"
cmp -s "$tmp/key.json" "$tmp/first.json"; ok $? "and prints the same bytes"
echo "1..$n"
