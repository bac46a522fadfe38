#!/bin/sh
# The "by hand" baseline: what a developer does on a laptop with a warm target/, one cell after
# the other: build (scripts/build.sh), then boot in QEMU under a timeout and look for the success
# line (scripts/qemu-test.sh). Prints each cell's time and exits non-zero if any cell failed.
#   scripts/by-hand.sh [TARGET...]      (default: cortex-m3 rv32imac; both profiles each)
set -u
cd "$(dirname "$0")/.." || exit 2
targets=${*:-cortex-m3 rv32imac}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
failed=
start=$(now)
for target in $targets; do
  for profile in debug release; do
    cell_start=$(now)
    if scripts/build.sh "$target" "$profile" && scripts/qemu-test.sh "$target" "out/$target-$profile/karatos.elf" 30; then
      verdict=ok
    else
      verdict=FAILED
      failed="$failed $target/$profile"
    fi
    echo "== $target/$profile: $verdict in $(elapsed "$cell_start") s"
  done
done
echo "== all cells in $(elapsed "$start") s"
if [ -n "$failed" ]; then
  echo "failed:$failed" >&2
  exit 1
fi
