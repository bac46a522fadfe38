#!/usr/bin/env bash
# Builds everything with warnings as errors and runs the whole test suite: unit and integration
# tests, then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer, the
# concurrency-heavy unit tests under ThreadSanitizer, and a bounded run of every libFuzzer target
# (clang) plus the inputs that once crashed them.
#   ASSAY_SANITIZERS=0 scripts/test.sh    skip the sanitizer and fuzz builds (faster local runs)
#   ASSAY_FUZZ_SECONDS=60                 how long each fuzz target runs (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
# Line tables only (-g1): sanitizer reports and perf still show files and lines, while objects are a
# fifth of the size, so every stage compiles and links faster on CI's two cores.
debug_info=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_DEBUG="-g1")

run_suite() {  # build dir, cmake args...; $label / $exclude / $names / $skip: which tests; $targets: what to build
  local dir=$1; shift
  echo "== configure $dir ($(date +%T))"
  cmake -S . -B "$dir" -G Ninja -DASSAY_WERROR=ON -DASSAY_BUILD_BENCH=OFF "${debug_info[@]}" "$@" >/dev/null
  echo "== build $dir ($(date +%T))"
  cmake --build "$dir" -j "$jobs" ${targets:+--target $targets}
  echo "== test $dir ($(date +%T))"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$jobs" \
    ${label:+-L "$label"} ${exclude:+-LE "$exclude"} ${names:+-R "$names"} ${skip:+-E "$skip"}
}

label="" targets="" run_suite build/ci -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [[ "${ASSAY_SANITIZERS:-1}" == 1 ]]; then
  # Bazel's interoperability, the containers, the set-up script and the Rust example (cargo compiling
  # core four times; the step caches' code runs under ASan in step_cache_test) are the same with or
  # without sanitizers; they run once, above.
  label="" exclude="bazel|containers|setup|rust" targets="" run_suite build/asan -DCMAKE_BUILD_TYPE=Debug -DASSAY_SANITIZE=address,undefined
  # Every unit test under ThreadSanitizer. Debian's abseil is not built for TSan, so each TSan
  # program carries annotations for absl::Mutex (cmake/tsan/absl_mutex_tsan.cc) and TSan sees every
  # lock; gRPC's own internals are suppressed (tests/tsan.supp). The integration tests (WorkerAgentTest
  # among them: it serves a whole coordinator in-process) stay out of this stage: gRPC's callback
  # machinery hands its call objects between its threads in ways TSan cannot see. The script checks
  # (sizes, includes, the CLI's link line) ran in the first stage.
  export TSAN_OPTIONS="suppressions=$(pwd)/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1"
  label="unit" names="" exclude="" skip="^(cli_link_test|include_deps_test|include_deps_self_test|size_check|size_check_self_test)$" \
    targets="$(sed -n 's/^assay_test(\([a-z_]*\) SOURCES unit.*/\1/p' tests/CMakeLists.txt | tr '\n' ' ')" \
    run_suite build/tsan -DCMAKE_BUILD_TYPE=Debug -DASSAY_SANITIZE=thread
  # libFuzzer (clang, with ASan+UBSan): pipeline parser, resource names and digests, trees. The same
  # clang build compiles the three programs with -Wthread-safety -Werror, so every ABSL_GUARDED_BY and
  # ABSL_EXCLUSIVE_LOCKS_REQUIRED annotation is checked.
  label="fuzz" names="" exclude="" skip="" \
    targets="fuzz_pipeline fuzz_resource_name fuzz_tree assay-coordinator assay-worker assay" \
    run_suite build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASSAY_FUZZ=ON \
    -DASSAY_FUZZ_SECONDS="${ASSAY_FUZZ_SECONDS:-60}"
fi
echo "== all tests passed ($(date +%T), ${SECONDS}s in all)"
