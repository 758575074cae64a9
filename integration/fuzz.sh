#!/usr/bin/env bash
# Run every fuzz target of the module in turn.
#
#   integration/fuzz.sh [duration] [target-regexp]
#
# duration is per target, in go test's -fuzztime syntax (default 10m; 20s,
# 1h, or 5000x for a number of executions). target-regexp picks targets by
# name (default: all). Targets are found by their `func FuzzXxx(f *testing.F)`
# in *_test.go files, so new ones are included without editing this script.
#
# Go keeps the inputs that widen coverage in its cache ($GOCACHE/fuzz), not
# in the repository. After each target, up to FUZZ_KEEP (default 10) of the
# entries that this run added there, of at most FUZZ_KEEP_BYTES (default
# 2048) each, smallest first, are copied into the package's
# testdata/fuzz/<target>, where `go test` runs them as seeds. Review them
# before committing; keep the corpus small.
#
# The first failure stops the run: the failing input (which go test writes
# to testdata/fuzz/<target>/) and the command that reproduces it are
# printed, and the script exits 1. At the end it prints the executions per
# target. FUZZ_PARALLEL sets go test -parallel (default: GOMAXPROCS).
set -euo pipefail

duration=${1:-10m}
only=${2:-.}
keep=${FUZZ_KEEP:-10}
keep_bytes=${FUZZ_KEEP_BYTES:-2048}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cache="$(go env GOCACHE)/fuzz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# dir<TAB>target for every fuzz target, sorted.
targets=$(grep -rE --include='*_test.go' --exclude-dir=.git --exclude-dir=.tools --exclude-dir=vendor \
	'^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1\t\2|; s|^\./[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|.\t\1|' |
	grep -E "	.*${only}" | sort -u || true)
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz target matches '$only'" >&2
	exit 2
fi
echo "fuzz.sh: $(echo "$targets" | wc -l) targets, $duration each"

summary="$work/summary"
: >"$summary"
print_summary() {
	printf '\n%-24s %-22s %12s %8s %5s  %s\n' package target executions "new cov" kept result
	cat "$summary"
}

while IFS=$'\t' read -r dir target; do
	pkg=$(go list "./$dir")
	corpus="$cache/$pkg/$target"
	mkdir -p "$corpus"
	ls -1 "$corpus" | sort >"$work/before"
	log="$work/$target.log"
	echo "== $pkg $target ($duration)"
	args=(test "./$dir" -run '^$' -fuzz "^${target}\$" -fuzztime "$duration")
	[ -n "${FUZZ_PARALLEL:-}" ] && args+=(-parallel "$FUZZ_PARALLEL")
	set +e
	go "${args[@]}" 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	set -e

	# "fuzz: elapsed: 20s, execs: 123456 (6172/sec), new interesting: 3 (total: 40)"
	last=$(grep -E '^fuzz: elapsed: .*, execs: [0-9]+' "$log" | tail -n 1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	newcov=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")

	kept=0
	if [ "$status" -eq 0 ]; then
		dest="$dir/testdata/fuzz/$target"
		ls -1 "$corpus" | sort >"$work/after"
		while read -r size name; do
			[ "$kept" -ge "$keep" ] && break
			[ "$size" -gt "$keep_bytes" ] && break
			[ -e "$dest/$name" ] && continue
			mkdir -p "$dest"
			cp "$corpus/$name" "$dest/$name"
			kept=$((kept + 1))
		done < <(comm -13 "$work/before" "$work/after" | while read -r name; do
			printf '%d %s\n' "$(wc -c <"$corpus/$name")" "$name"
		done | sort -n)
	fi
	printf '%-24s %-22s %12s %8s %5s  %s\n' "$dir" "$target" "${execs:-?}" "${newcov:-?}" "$kept" \
		"$([ "$status" -eq 0 ] && echo ok || echo FAIL)" >>"$summary"

	if [ "$status" -ne 0 ]; then
		print_summary
		input=$(sed -nE 's/^[[:space:]]*Failing input written to (.*)$/\1/p' "$log" | tail -n 1)
		echo
		if [ -n "$input" ]; then
			name=$(basename "$input")
			echo "fuzz.sh: $target failed; reproducer: $dir/$input"
			echo "fuzz.sh: re-run it with: go test ./$dir -run '^$target\$/^$name\$' -v"
		else
			echo "fuzz.sh: $target failed without writing an input (build error or crashed worker); see the output above"
		fi
		exit 1
	fi
done <<<"$targets"

print_summary
