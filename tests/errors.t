#!/usr/bin/env bash
# errors.t - malformed models give exactly the expected diagnostics.
#
# For each top-level tests/errors/NAME.dam (helper files in subdirectories,
# such as the halves of an import cycle, are not models of their own), run
#   $DAMC check tests/errors/NAME.dam $(cat tests/errors/NAME.dam.args)
# from the repository root, with relative paths so that the messages are
# stable, and compare standard error byte for byte with NAME.dam.err.  Files
# named warn_*.dam only warn and must exit 0; all others must exit 1.  No run
# may crash: exit status < 128 and no sanitizer report on standard error.
#
# Regenerate an expectation (then READ it) with
#   DAMC_STDLIB=stdlib build/damc check tests/errors/NAME.dam > /dev/null 2> tests/errors/NAME.dam.err
set -u
DAMC=${DAMC:-build/damc}
# Notes that point into the stdlib print its path: make it relative.
export DAMC_STDLIB=stdlib
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
files=(tests/errors/*.dam)
echo "1..$((3 * ${#files[@]}))"
n=0
for f in "${files[@]}"; do
  args=()
  [ -f "$f.args" ] && read -r -a args < "$f.args"
  "$DAMC" check "$f" "${args[@]}" >"$tmp/out" 2>"$tmp/err"
  st=$?
  case $(basename "$f") in warn_*) want=0 ;; *) want=1 ;; esac
  n=$((n+1))
  if [ -f "$f.err" ] && cmp -s "$tmp/err" "$f.err"; then
    echo "ok $n - $f: diagnostics"
  else
    echo "not ok $n - $f: diagnostics"
    if [ -f "$f.err" ]; then diff "$f.err" "$tmp/err" | sed 's/^/#   /'
    else echo "#   missing $f.err; stderr was:"; sed 's/^/#   /' "$tmp/err"; fi
  fi
  n=$((n+1))
  if [ $st = $want ]; then echo "ok $n - $f: exit $want"
  else echo "not ok $n - $f: exit $want (got $st)"; fi
  n=$((n+1))
  if [ $st -lt 128 ] && ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$tmp/err"; then
    echo "ok $n - $f: no crash"
  else
    echo "not ok $n - $f: no crash (exit $st)"; sed 's/^/#   /' "$tmp/err" | head -20
  fi
done
