#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time (default 10s).
# Targets are found in the packages' test files (func FuzzX(f *testing.F))
# rather than with go test -list, which would build every package's test
# binary once more.
set -euo pipefail
fuzztime=${1:-10s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# run fuzzes target $2 of package $1, its output in $out.
run() {
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" >"$out" 2>&1 </dev/null
}

# fuzz runs one target. A run that ends with "context deadline exceeded"
# and no failing input is the fuzzing engine missing its own deadline on a
# loaded machine, not a finding: it is run once more.
fuzz() {
	run "$1" "$2" && return 0
	grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out" || return 1
	echo "fuzz $1 $2: the engine missed its deadline; once more"
	run "$1" "$2"
}

go list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./... |
while read -r pkg dir files; do
	[ -n "$files" ] || continue
	targets=$(cd "$dir" && sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' $files)
	for target in $targets; do
		echo "fuzz $pkg $target ($fuzztime)"
		if ! fuzz "$pkg" "$target"; then
			cat "$out"
			exit 1
		fi
	done
done
