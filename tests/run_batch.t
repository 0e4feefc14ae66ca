#!/usr/bin/env bash
# run_batch.t - a batch gives the same bytes as one-by-one runs and the same
# bytes run to run: Hamming(7,4) 112 rows on 2 threads vs 1 thread vs again;
# XOR's 4 rows and a few Hamming rows one at a time with --input (the JSON
# line compared byte for byte after the index).
set -u
DAMC=${DAMC:-build/damc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..8"
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
