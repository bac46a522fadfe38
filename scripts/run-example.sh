#!/usr/bin/env bash
# The main job: builds Assay, starts a local farm (a coordinator and two workers, with the RocksDB
# store under .assay-local/), runs an example matrix with live progress, downloads the artifacts and
# says where everything is.
#
#   scripts/run-example.sh                        karatos-mini (C), then stop the farm
#   scripts/run-example.sh --example karatos-rs   the Rust no_std firmware (cargo, step caches)
#   scripts/run-example.sh --keep                 leave the farm running (stop it: kill $(cat .assay-local/*.pid))
#   ASSAY_EXAMPLE_PIPELINE=assay-broken.yaml scripts/run-example.sh    the failing variant
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
keep=0
example=karatos-mini
while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) keep=1; shift ;;
    --example) [[ $# -ge 2 ]] || { echo "error: --example needs a name (karatos-mini or karatos-rs)" >&2; exit 2; }
               example=$2; shift 2 ;;
    *) echo "usage: $0 [--keep] [--example karatos-mini|karatos-rs]" >&2; exit 2 ;;
  esac
done
[[ -f "examples/$example/assay.yaml" ]] || { echo "error: no example examples/$example (karatos-mini or karatos-rs)" >&2; exit 2; }
pipeline=${ASSAY_EXAMPLE_PIPELINE:-assay.yaml}

ASSAY_WITH_BAZEL=0 scripts/install-deps.sh
echo "== building (build/release)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DASSAY_BUILD_TESTS=OFF -DASSAY_BUILD_BENCH=OFF >/dev/null
cmake --build build/release --target assay assay-coordinator assay-worker

state="$root/.assay-local"
mkdir -p "$state/logs" "$state/results"
bin="$root/build/release"
assay() { "$bin/cli/assay" --coordinator "$address" "$@"; }

pids=()
stop_farm() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "$state"/*.pid
}
if [[ $keep == 0 ]]; then trap stop_farm EXIT; fi

for f in "$state"/*.pid; do
  [[ -e "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null && { echo "error: a farm from an earlier --keep run is still running (pid $(cat "$f")); stop it with: kill \$(cat $state/*.pid)" >&2; exit 1; }
done

echo "== starting the coordinator (data in $state/data)"
rm -f "$state/port"
"$bin/coordinator/assay-coordinator" --listen 127.0.0.1:0 --port-file "$state/port" --data "$state/data" \
  >"$state/logs/coordinator.log" 2>&1 &
pids+=($!); echo $! >"$state/coordinator.pid"
for _ in $(seq 1 100); do [[ -s "$state/port" ]] && break; sleep 0.1; done
[[ -s "$state/port" ]] || { echo "error: the coordinator did not start; see $state/logs/coordinator.log" >&2; exit 1; }
address="127.0.0.1:$(cat "$state/port")"

for n in 1 2; do
  "$bin/worker/assay-worker" --coordinator "$address" --id "local-$n" --slots 2 --work-dir "$state/work-$n" \
    >"$state/logs/worker-$n.log" 2>&1 &
  pids+=($!); echo $! >"$state/worker-$n.pid"
done
for _ in $(seq 1 100); do
  [[ $(assay workers | grep -c connected) -ge 2 ]] && break
  sleep 0.1
done
assay workers
# The web dashboard (docs/dashboard.md) at the default --http-listen, 127.0.0.1:7180 (when another
# coordinator holds that port, this one serves none and `assay web` says so).
dashboard=$(assay web 2>/dev/null || true)
[[ -n "$dashboard" ]] && echo "== dashboard: $dashboard (live matrix and logs while the farm runs)"

echo "== running examples/$example/$pipeline"
job=$(assay submit "examples/$example" -f "$pipeline" --label source=run-example)
status=0
assay wait "$job" --junit "$state/results/job-$job-junit.xml" --markdown "$state/results/job-$job.md" || status=$?
assay logs "$job" >"$state/results/job-$job.log" || true
assay artifacts "$job" --out "$state/results/job-$job" || true
assay report "$job" --json "$state/results/job-$job.json" >"$state/results/job-$job-report.txt" || true

cat <<SUMMARY

== results of job $job
  artifacts and checksums: $state/results/job-$job/ (SHA256SUMS)
  all logs:                $state/results/job-$job.log
  reports:                 $state/results/job-$job-junit.xml (JUnit), job-$job.md (Markdown), job-$job.json (JSON)
  farm store (RocksDB):    $state/data
  farm logs:               $state/logs/
  a release of it:         assay release $job --out DIR
  dashboard:               ${dashboard:-none (port 7180 was taken)}${dashboard:+#/jobs/$job (while the farm runs: --keep)}

== report
SUMMARY
cat "$state/results/job-$job-report.txt"
if [[ $keep == 1 ]]; then
  echo "  the farm is still running: export ASSAY_COORDINATOR=$address; $bin/cli/assay jobs"
  echo "  stop it with: kill \$(cat $state/*.pid)"
else
  echo "  run it again: unchanged steps come back from the cache"
fi
exit $status
