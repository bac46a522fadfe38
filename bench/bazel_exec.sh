#!/usr/bin/env bash
# Bazel remote execution on this host: the generated 200-file C++ workspace (bench/bazel_workspace.sh)
# built cold with --remote_executor on a local farm of N worker slots (the workers' default executor,
# the sandbox), against `bazel build --jobs=N` locally (Bazel's linux-sandbox), N = 1 and
# 2, in the same run; then the warm remote rebuild against a warm --disk_cache.
#   bench/bazel_exec.sh [BUILD_DIR] [RUNS]   (defaults: build, 3; needs assay-coordinator and assay-worker)
# Each cold remote build uses a fresh --remote_instance_name, so every action runs again (the CAS,
# shared across instances, already holds the inputs: what a developer's second build of a branch sees).
# Prints medians, the ratio farm / local and the per-action overhead derived from N = 1:
# (remote - local) / actions.
# Then the overhead alone, without a compiler's run time and its noise: 200 trivial genrules
# (`echo N > $@`) at --jobs=1, locally in linux-sandbox against one remote slot, interleaved.
#   ASSAY_BENCH_PARTS="cold tiny warm" (the default) picks the parts to run.
#   ASSAY_BENCH_WORKER_FLAGS="--sandbox bubblewrap" gives the worker more flags.
#   ASSAY_BENCH_PIN=CPU runs everything (Bazel's server, the coordinator, the worker and so every
#   step) on that one CPU, and the cold part at N = 1 only: on a VM whose two CPUs run at different
#   speeds from minute to minute, a compile's time then depends on the work, not on where it landed,
#   and the daemons' CPU counts against the farm.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build_dir=${1:-build}
runs=${2:-3}
coordinator="$build_dir/coordinator/assay-coordinator"
worker="$build_dir/worker/assay-worker"
[[ -x $coordinator && -x $worker ]] || { echo "build $coordinator and $worker first" >&2; exit 1; }
coordinator=$(realpath "$coordinator") worker=$(realpath "$worker")
work=$(mktemp -d /tmp/assay-bazel-exec.XXXXXX)
coordinator_pid="" worker_pid=""
stop_worker() { [[ -n $worker_pid ]] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true; worker_pid=""; }
cleanup() {
  (cd "$work/ws" 2>/dev/null && bazel --output_user_root="$work/root" shutdown 2>/dev/null) || true
  stop_worker
  [[ -n $coordinator_pid ]] && kill "$coordinator_pid" 2>/dev/null && wait "$coordinator_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source bench/bazel_workspace.sh
make_workspace "$work"

pin=()
[[ -n ${ASSAY_BENCH_PIN:-} ]] && pin=(taskset -c "$ASSAY_BENCH_PIN")
"${pin[@]}" "$coordinator" --listen 127.0.0.1:0 --port-file "$work/port" --data "$work/assay-data" >"$work/coordinator.log" 2>&1 &
coordinator_pid=$!
for _ in $(seq 1 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
port=$(cat "$work/port")
start_worker() {  # SLOTS
  stop_worker
  # shellcheck disable=SC2086  # ASSAY_BENCH_WORKER_FLAGS: more worker flags (--sandbox bubblewrap), split on spaces
  "${pin[@]}" "$worker" --coordinator "127.0.0.1:$port" --work-dir "$work/worker" --slots "$1" ${ASSAY_BENCH_WORKER_FLAGS:-} >"$work/worker.log" 2>&1 &
  worker_pid=$!
  for _ in $(seq 1 100); do grep -q "connected to" "$work/worker.log" && return; sleep 0.1; done
  cat "$work/worker.log" >&2
  echo "the worker did not connect" >&2; exit 1
}

cd "$work/ws"
B=("${pin[@]}" bazel --output_user_root="$work/root")
common=(--override_repository=rules_java=/usr/share/bazel/rules/java --override_repository=rules_cc="$work/rules_cc"
        --nosandbox_debug)
timed_build() {  # prints seconds; the build's log is left in $work/last.log
  local start end
  "${B[@]}" clean >/dev/null 2>&1
  start=$(date +%s.%N)
  "${B[@]}" build "${common[@]}" "$@" //:app >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }
"${B[@]}" info >/dev/null 2>&1  # the Bazel server starts once, outside the timings

parts=${ASSAY_BENCH_PARTS:-cold tiny warm}
declare -A med
actions=0
instance=0
last_cold=
for n in 1 2; do
  [[ " $parts " == *" cold "* ]] || break
  [[ $n == 2 && -n ${pin[*]} ]] && break  # one CPU: N = 1 only
  start_worker "$n"
  local_times=() remote_times=()
  for i in $(seq 1 "$runs"); do  # interleaved, so drift in the machine's speed hits both alike
    local_times+=("$(timed_build --jobs="$n")")
    instance=$((instance + 1))
    remote_times+=("$(timed_build --jobs="$n" --remote_executor="grpc://127.0.0.1:$port" --remote_instance_name="cold$instance")")
    last_cold=cold$instance
    remote_actions=$(grep -E "^INFO: [0-9]+ processes:" "$work/last.log" | sed -nE 's/.*[:,] ([0-9]+) remote[,.].*/\1/p' | head -1)
    [[ ${remote_actions:-0} -gt 0 ]] || { echo "the remote build ran no action remotely" >&2; cat "$work/last.log" >&2; exit 1; }
    actions=$remote_actions
  done
  med[local$n]=$(median "${local_times[@]}")
  med[remote$n]=$(median "${remote_times[@]}")
  echo "== N=$n: cold build, median of $runs"
  echo "local  bazel build --jobs=$n:                 ${med[local$n]}s   (${local_times[*]})"
  echo "remote --remote_executor, $n worker slot(s):  ${med[remote$n]}s   (${remote_times[*]}; $actions actions remote)"
  echo "ratio remote / local:                        $(ratio "${med[remote$n]}" "${med[local$n]}")"
done
if [[ " $parts " == *" cold "* ]]; then
  overhead=$(echo "scale=1; (${med[remote1]} - ${med[local1]}) * 1000 / $actions" | bc)
  echo "per-action overhead (N=1, (remote - local) / $actions actions): ${overhead} ms"
fi

# Trivial actions: what a remote action costs beyond a local sandboxed one, the run itself ~1 ms.
if [[ " $parts " == *" tiny "* ]]; then
  mkdir -p "$work/ws/tiny"
  for i in $(seq 0 199); do echo "genrule(name = \"t$i\", outs = [\"t$i.txt\"], cmd = \"echo $i > \$@\")"; done >"$work/ws/tiny/BUILD"
  echo "filegroup(name = \"all\", srcs = [$(for i in $(seq 0 199); do printf '":t%s", ' "$i"; done)])" >>"$work/ws/tiny/BUILD"
  start_worker 1
  tiny_build() {  # prints seconds
    local start end
    "${B[@]}" clean >/dev/null 2>&1
    start=$(date +%s.%N)
    "${B[@]}" build "${common[@]}" --jobs=1 "$@" //tiny:all >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc
  }
  tiny_local=() tiny_remote=()
  tiny_build --spawn_strategy=linux-sandbox >/dev/null  # the analysis, once
  for i in $(seq 1 "$runs"); do
    tiny_local+=("$(tiny_build --spawn_strategy=linux-sandbox)")
    instance=$((instance + 1))
    tiny_remote+=("$(tiny_build --remote_executor="grpc://127.0.0.1:$port" --remote_instance_name="tiny$instance")")
    grep -qE "^INFO: 201 processes: 1 internal, 200 remote" "$work/last.log" || { echo "not every trivial action ran remotely" >&2; cat "$work/last.log" >&2; exit 1; }
  done
  tl=$(median "${tiny_local[@]}") tr=$(median "${tiny_remote[@]}")
  echo "== 200 trivial actions, --jobs=1, median of $runs"
  echo "local linux-sandbox:                         ${tl}s   (${tiny_local[*]})"
  echo "remote, 1 worker slot:                       ${tr}s   (${tiny_remote[*]})"
  echo "per-action overhead ((remote - local) / 200): $(echo "scale=1; ($tr - $tl) * 1000 / 200" | bc) ms"
fi
[[ " $parts " == *" warm "* ]] || exit 0

# Warm: the last remote instance holds every result; against a warm local disk cache.
if [[ -z $last_cold ]]; then  # the cold part did not run: fill an instance once
  start_worker 2
  instance=$((instance + 1)) last_cold=cold$instance
  timed_build --remote_executor="grpc://127.0.0.1:$port" --remote_instance_name="$last_cold" >/dev/null
fi
timed_build --disk_cache="$work/disk-cache" >/dev/null
warm_remote=() warm_disk=()
for i in $(seq 1 "$runs"); do
  warm_remote+=("$(timed_build --remote_executor="grpc://127.0.0.1:$port" --remote_instance_name="$last_cold")")
  warm_disk+=("$(timed_build --disk_cache="$work/disk-cache")")
done
wr=$(median "${warm_remote[@]}") wd=$(median "${warm_disk[@]}")
echo "== warm rebuild after bazel clean, median of $runs"
echo "remote executor (all action-cache hits):     ${wr}s   (${warm_remote[*]})"
echo "--disk_cache:                                ${wd}s   (${warm_disk[*]})"
echo "ratio remote / disk cache:                   $(ratio "$wr" "$wd")"
