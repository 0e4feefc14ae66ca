#!/usr/bin/env bash
# docs_examples.t - every ```dam example of the documentation is a valid model.
#
# Extracts the fenced blocks marked ```dam from docs/language.md (and
# README.md, if it has any) and checks each with `damc check`: exit status 0
# and no 'error:' on standard error.  Blocks fenced ```dam-error must be
# rejected (exit status 1); when such a block is followed, after a blank line,
# by an indented line holding 'error: ...', standard error must contain that
# text.  One TAP line per block, named by its file and line number.
set -u
DAMC=${DAMC:-build/damc}
export DAMC_STDLIB=$PWD/stdlib
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
docs=(docs/language.md)
[ -f README.md ] && docs+=(README.md)
# Each block becomes $tmp/NNN.dam with a line in $tmp/list:
#   NNN<TAB>kind<TAB>doc:line<TAB>expected error text (or empty)
python3 - "$tmp" "${docs[@]}" <<'PY'
import sys, re
tmp, docs = sys.argv[1], sys.argv[2:]
out = open(tmp + "/list", "w")
k = 0
for doc in docs:
    lines = open(doc, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(dam|dam-error)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, j = i + 1, i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        k += 1
        open("%s/%03d.dam" % (tmp, k), "w", encoding="utf-8").write("\n".join(lines[start:j]) + "\n")
        want = ""
        if m.group(1) == "dam-error" and j + 2 < len(lines) and lines[j + 1].strip() == "":
            e = re.match(r"^(?:    |\t)\s*(.*error: .*)$", lines[j + 2])
            if e:
                want = e.group(1).strip()
        out.write("%03d\t%s\t%s:%d\t%s\n" % (k, m.group(1), doc, start, want))
        i = j + 1
PY
nblocks=$(wc -l < "$tmp/list")
if [ "$nblocks" -eq 0 ]; then echo "1..0 # SKIP no dam blocks"; exit 0; fi
echo "1..$nblocks"
n=0
while IFS=$'\t' read -r k kind where want; do
  n=$((n+1))
  "$DAMC" check "$tmp/$k.dam" >/dev/null 2>"$tmp/err"
  st=$?
  if [ "$kind" = dam ]; then
    if [ $st = 0 ] && ! grep -q 'error:' "$tmp/err"; then ok=1; else ok=0; fi
    desc="$where: damc check accepts the example"
  else
    if [ $st = 1 ] && { [ -z "$want" ] || grep -qF -- "$want" "$tmp/err"; }; then ok=1; else ok=0; fi
    desc="$where: damc check rejects the example${want:+ with '$want'}"
  fi
  if [ $ok = 1 ]; then echo "ok $n - $desc"
  else
    echo "not ok $n - $desc (exit $st)"
    sed 's/^/#   | /' "$tmp/$k.dam"
    sed 's/^/#   ! /' "$tmp/err" | head -20
  fi
done < "$tmp/list"
