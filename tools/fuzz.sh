#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time (default 10s).
# Targets are found in the packages' test files (func FuzzX(f *testing.F))
# rather than with go test -list, which would build every package's test
# binary once more.
set -euo pipefail
fuzztime=${1:-10s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./... |
while read -r pkg dir files; do
	[ -n "$files" ] || continue
	targets=$(cd "$dir" && sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' $files)
	for target in $targets; do
		echo "fuzz $pkg $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$out" 2>&1 </dev/null; then
			cat "$out"
			exit 1
		fi
	done
done
