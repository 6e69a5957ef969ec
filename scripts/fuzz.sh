#!/usr/bin/env bash
# fuzz.sh - run every fuzz target of the module for a bounded time each.
#
#   scripts/fuzz.sh [FUZZTIME]      (default 10s; any `go test -fuzztime`)
#
# Targets are found in each package's test files (func FuzzName(f
# *testing.F)); `go test -fuzz` takes one target at a time, so each runs
# alone with -run '^$' (no unit tests) and -fuzz '^Name$'. A failing
# target stops the script with its status, after the others ran, and
# the inputs that failed land in the package's testdata/fuzz as usual.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
go=${GO:-go}

failed=()
flaked=()
count=0
start=$(date +%s)
while read -r dir pkg files; do
  [ -n "$files" ] || continue
  targets=$(cd "$dir" && sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' $files | sort -u)
  for f in $targets; do
    count=$((count + 1))
    echo "== fuzz $pkg $f ($fuzztime)"
    corpus="$dir/testdata/fuzz/$f"
    before=$(ls "$corpus" 2>/dev/null | wc -l)
    out=$($go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" "$pkg" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    if [ "$rc" -ne 0 ]; then
      after=$(ls "$corpus" 2>/dev/null | wc -l)
      # Go's fuzzing coordinator (go1.26) may report its own -fuzztime
      # deadline as a failure, with no failing input (go.dev/issue/75804):
      # only a run that wrote an input, or failed otherwise, fails.
      if [ "$after" -eq "$before" ] && grep -q '^    context deadline exceeded$' <<<"$out" &&
        ! grep -q 'Failing input written' <<<"$out"; then
        echo "fuzz: $f stopped on the coordinator's own deadline, no failing input: not a failure"
        flaked+=("$pkg $f")
      else
        failed+=("$pkg $f")
      fi
    fi
  done
done < <($go list -f '{{.Dir}} {{.ImportPath}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./...)

echo "fuzz: $count targets in $(( $(date +%s) - start ))s, $fuzztime each; ${#flaked[@]} stopped on the coordinator's deadline"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
  exit 1
fi
[ "$count" -gt 0 ] || { echo "fuzz: no targets found" >&2; exit 1; }
