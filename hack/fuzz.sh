#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a while each ($1, default 10s;
# FUZZ_PARALLEL workers, default 1; FUZZ_MINIMIZE bounds the minimization of
# each new input, default 500x: a count, not a time, because a time-limited
# minimization that runs out can end the run with a bare "context deadline
# exceeded" failure, and the default 60 s made short runs look stuck). Every
# target runs even when one fails; the summary names each failing target and
# prints the input it found, which go test has written under
# testdata/fuzz/<target>/ (commit it with the fix: it then runs as a
# regression test in `make test`). Kept corpora are also run on
# their own by `make test`, so this exploration is the only random part of CI.
set -euo pipefail
fuzztime=${1:-10s}
parallel=${FUZZ_PARALLEL:-1}
minimize=${FUZZ_MINIMIZE:-500x}
cd "$(dirname "$0")/.."
found=0
failed=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
while IFS= read -r file; do
  dir=$(dirname "$file")
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    found=$((found + 1))
    echo "fuzz: ./$dir $target for $fuzztime ($parallel worker(s), load $(cut -d' ' -f1 /proc/loadavg))"
    if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime="$minimize" -parallel="$parallel" "./$dir" >"$log" 2>&1; then
      # The last progress line carries the execs and the rate.
      grep -E '^fuzz: elapsed' "$log" | tail -1 | sed 's/^/  /'
      continue
    fi
    # Go before 1.27 can end a duration-bounded run with a bare "context deadline
    # exceeded" and no input (golang/go#75804, a race in its fuzz coordinator).
    # A real finding always writes its input, so only a run that wrote none and
    # failed with just that message is the toolchain's, not the target's.
    if ! grep -q 'Failing input written to' "$log" && grep -q '^    context deadline exceeded$' "$log" \
       && [ "$(grep -c -- '--- FAIL' "$log")" = 1 ]; then
      echo "  fuzz: $target stopped by Go's fuzztime race (golang/go#75804); no input failed"
      continue
    fi
    cat "$log"
    failed+=("./$dir $target")
    input=$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | tail -1)
    if [ -n "$input" ] && [ -f "$dir/$input" ]; then
      echo "fuzz: FAILED $target in ./$dir; input $dir/$input:"
      sed 's/^/  | /' "$dir/$input"
      echo "fuzz: reproduce with: go test -run='^${target}/$(basename "$input")\$' ./$dir"
    else
      echo "fuzz: FAILED $target in ./$dir (no input file written: see the output above)"
    fi
  done
done < <(grep -rlE '^func Fuzz[A-Za-z0-9_]+\(' --include='*_test.go' . | sed 's#^\./##' | sort)
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of $found target(s) failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: $found target(s) passed"
