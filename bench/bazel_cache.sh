#!/usr/bin/env bash
# Bazel on a generated 200-file C++ workspace: a warm remote cache through Assay against a warm
# --disk_cache (the local limit), same machine, same run. Each warm build follows `bazel clean`.
#   bench/bazel_cache.sh [BUILD_DIR]       (default build; needs assay-coordinator built there)
# Prints the median of 3 warm builds for each and their ratio.
# ASSAY_BENCH_BASELINE=PATH also runs the top-level builds against a second coordinator, that binary
# (an older build, say), interleaved with the others: a regression shows as a ratio in one run.
# ASSAY_BENCH_RUNS=N warm builds of each kind (default 3).
# ASSAY_BENCH_PIN=1 pins the coordinator to CPU 1 and Bazel to CPU 0 (both sides), so that the
# server's CPU does not compete with Bazel's: it shows how much of the gap is contention.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build_dir=${1:-build}
coordinator="$build_dir/coordinator/assay-coordinator"
[[ -x $coordinator ]] || { echo "build $coordinator first" >&2; exit 1; }
work=$(mktemp -d /tmp/assay-bazel-bench.XXXXXX)
coordinator_pid=""
baseline_pid=""
cleanup() {
  [[ -n $baseline_pid ]] && kill "$baseline_pid" 2>/dev/null && wait "$baseline_pid" 2>/dev/null || true
  (cd "$work/ws" 2>/dev/null && bazel --output_user_root="$work/root" shutdown 2>/dev/null) || true
  [[ -n $coordinator_pid ]] && kill "$coordinator_pid" 2>/dev/null && wait "$coordinator_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The generated workspace (and the offline @rules_cc) under $work.
source bench/bazel_workspace.sh
make_workspace "$work"

pin_server=() pin_client=()
if [[ ${ASSAY_BENCH_PIN:-0} == 1 ]]; then pin_server=(taskset -c 1); pin_client=(taskset -c 0); fi
"${pin_server[@]}" "$coordinator" --listen 127.0.0.1:0 --port-file "$work/port" --data "$work/assay-data" >"$work/coordinator.log" 2>&1 &
coordinator_pid=$!
for _ in $(seq 1 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
port=$(cat "$work/port")
baseline=${ASSAY_BENCH_BASELINE:-}
if [[ -n $baseline ]]; then
  "${pin_server[@]}" "$baseline" --listen 127.0.0.1:0 --port-file "$work/baseline-port" --data "$work/baseline-data" \
    >"$work/baseline.log" 2>&1 &
  baseline_pid=$!
  for _ in $(seq 1 100); do [[ -s "$work/baseline-port" ]] && break; sleep 0.1; done
  baseline_port=$(cat "$work/baseline-port")
fi
runs=${ASSAY_BENCH_RUNS:-3}

cd "$work/ws"
B=("${pin_client[@]}" bazel --output_user_root="$work/root")
common=(--override_repository=rules_java=/usr/share/bazel/rules/java --override_repository=rules_cc="$work/rules_cc"
        --nosandbox_debug)
timed_build() {  # prints seconds
  local start end
  start=$(date +%s.%N)
  "${B[@]}" build "${common[@]}" "${extra[@]}" "$@" //:app >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/${1:-$coordinator_pid}/stat"; }
blob_reads() { "$root/$build_dir/cli/assay" --coordinator "127.0.0.1:$port" cache stats | awk '/blob reads/ {print $3}'; }
extra=(${ASSAY_BENCH_BAZEL_FLAGS:-})

echo "== cold builds (populate the caches)"
cold_remote=$(timed_build --remote_cache="grpc://127.0.0.1:$port")
echo "cold build, remote cache through Assay:  ${cold_remote}s"
"${B[@]}" clean >/dev/null 2>&1
cold_disk=$(timed_build --disk_cache="$work/disk-cache")
echo "cold build, --disk_cache:                ${cold_disk}s"
if [[ -n $baseline ]]; then
  "${B[@]}" clean >/dev/null 2>&1
  echo "cold build, baseline coordinator:        $(timed_build --remote_cache="grpc://127.0.0.1:$baseline_port")s"
fi

# Three warm builds of each, interleaved so that drift in the machine's speed hits all alike:
# remote downloading every output (Bazel 4's default), remote downloading only the top-level
# outputs (--remote_download_toplevel, the default since Bazel 7), and the local disk cache.
remote=() toplevel=() disk=() basetop=()
bazel_pid=$("${B[@]}" info server_pid 2>/dev/null)
declare -A bazel_ticks=([remote]=0 [toplevel]=0 [disk]=0 [basetop]=0)
measure() {  # MODE FLAGS...: one timed warm build, counting the Bazel server's CPU
  local mode=$1 before
  shift
  before=$(cpu_ticks "$bazel_pid")
  timed_build "$@"
  bazel_ticks[$mode]=$((bazel_ticks[$mode] + $(cpu_ticks "$bazel_pid") - before))
}
ticks=0
reads=0
top_reads=0
for ((i = 0; i < runs; i++)); do
  "${B[@]}" clean >/dev/null 2>&1
  before=$(cpu_ticks)
  reads_before=$(blob_reads)
  measure remote --remote_cache="grpc://127.0.0.1:$port" >"$work/t"
  remote+=("$(cat "$work/t")")
  ticks=$((ticks + $(cpu_ticks) - before))
  reads=$((reads + $(blob_reads) - reads_before))
  grep -o "[0-9]* remote cache hit" "$work/last.log" | head -1 >"$work/hits"
  "${B[@]}" clean >/dev/null 2>&1
  reads_before=$(blob_reads)
  measure toplevel --remote_cache="grpc://127.0.0.1:$port" --remote_download_toplevel >"$work/t"
  toplevel+=("$(cat "$work/t")")
  top_reads=$((top_reads + $(blob_reads) - reads_before))
  grep -o "[0-9]* remote cache hit" "$work/last.log" | head -1 >"$work/top-hits"
  [[ -x bazel-bin/app ]] || { echo "toplevel build left no bazel-bin/app" >&2; exit 1; }
  "${B[@]}" clean >/dev/null 2>&1
  measure disk --disk_cache="$work/disk-cache" >"$work/t"
  disk+=("$(cat "$work/t")")
  if [[ -n $baseline ]]; then
    "${B[@]}" clean >/dev/null 2>&1
    measure basetop --remote_cache="grpc://127.0.0.1:$baseline_port" --remote_download_toplevel >"$work/t"
    basetop+=("$(cat "$work/t")")
  fi
done
r=$(median "${remote[@]}")
t=$(median "${toplevel[@]}")
d=$(median "${disk[@]}")
echo "== warm builds after bazel clean (median of $runs)"
echo "warm, remote cache through Assay:           ${r}s   (${remote[*]}; $(cat "$work/hits"))"
echo "warm, remote, --remote_download_toplevel:   ${t}s   (${toplevel[*]}; $(cat "$work/top-hits"))"
echo "warm, --disk_cache:                         ${d}s   (${disk[*]})"
echo "ratio remote / disk:                        $(echo "scale=2; $r / $d" | bc)"
echo "ratio remote toplevel / disk:               $(echo "scale=2; $t / $d" | bc)"
if [[ -n $baseline ]]; then
  b=$(median "${basetop[@]}")
  echo "warm, toplevel, baseline coordinator:       ${b}s   (${basetop[*]}; $baseline)"
  echo "ratio baseline toplevel / disk:             $(echo "scale=2; $b / $d" | bc)"
  echo "ratio toplevel, this / baseline:            $(echo "scale=2; $t / $b" | bc)"
fi
echo "coordinator CPU per warm build (remote):    $(echo "scale=3; $ticks / $runs / $(getconf CLK_TCK)" | bc)s"
hz=$(getconf CLK_TCK)
per_build() { echo "scale=2; ${bazel_ticks[$1]} / $runs / $hz" | bc; }
echo "Bazel server CPU per warm build:            remote $(per_build remote)s, toplevel $(per_build toplevel)s, disk $(per_build disk)s${baseline:+, baseline toplevel $(per_build basetop)s}"
echo "blob reads per warm build:                  $((reads / runs)) (toplevel: $((top_reads / runs)))"
[[ ${#extra[@]} -gt 0 ]] && echo "extra Bazel flags (both sides):    ${extra[*]}"
[[ ${ASSAY_BENCH_PIN:-0} == 1 ]] && echo "pinned: coordinator on CPU 1, Bazel on CPU 0"
true
