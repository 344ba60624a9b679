#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time (default 10s).
set -euo pipefail
fuzztime=${1:-10s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz $pkg $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$out" 2>&1; then
			cat "$out"
			exit 1
		fi
	done
done
