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
count=0
start=$(date +%s)
while read -r dir pkg files; do
  [ -n "$files" ] || continue
  targets=$(cd "$dir" && sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' $files | sort -u)
  for f in $targets; do
    count=$((count + 1))
    echo "== fuzz $pkg $f ($fuzztime)"
    if ! $go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" "$pkg"; then
      failed+=("$pkg $f")
    fi
  done
done < <($go list -f '{{.Dir}} {{.ImportPath}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./...)

echo "fuzz: $count targets in $(( $(date +%s) - start ))s, $fuzztime each"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
  exit 1
fi
[ "$count" -gt 0 ] || { echo "fuzz: no targets found" >&2; exit 1; }
