#!/usr/bin/env bash
# Builds everything with warnings as errors and runs the whole test suite: unit and integration
# tests, then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer (clang, with a
# bounded run of every libFuzzer target plus the inputs that once crashed them), and the unit tests
# under ThreadSanitizer.
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
  # AddressSanitizer + UndefinedBehaviorSanitizer, built with clang, which also checks every
  # ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED annotation (-Wthread-safety -Werror) and builds
  # the libFuzzer targets beside the tests: pipeline parser, resource names and digests, trees, each
  # run for ASSAY_FUZZ_SECONDS plus the inputs that once crashed them (label fuzz).
  # Left out, as they are the same with or without sanitizers and ran once above: Bazel's
  # interoperability, the containers, the set-up script, the dashboard in a browser (its C++ side, the
  # HTTP API, runs here in http_api_test) and the Rust example (cargo compiling core four times; the step caches' code runs under ASan in step_cache_test). And the tests of scale,
  # whose code paths smaller tests here cover: a hundred tasks from ten submitters, the soak, a
  # 64 MiB blob through every process, the fifty-cell matrix and the cut links between hosts. The
  # REAPI and cache tests run on the embedded store here; their runs on a bucket (Stores/.../bucket)
  # ran above, and the bucket's own code runs here in bucket_*_test.
  label="" exclude="bazel|containers|setup|rust|browser" targets="" \
    skip="^(FleetTest\.TenSubmitters.*|SoakTest\..*|Stores/CacheTest\.LargeBlobs.*|Stores/.*/bucket .*|NetnsTest\.ThreeWorkers.*|NetnsTest\.ACutLink.*)$" \
    run_suite build/asan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DASSAY_SANITIZE=address,undefined \
    -DASSAY_FUZZ=ON -DASSAY_FUZZ_SECONDS="${ASSAY_FUZZ_SECONDS:-60}"
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
fi
echo "== all tests passed ($(date +%T), ${SECONDS}s in all)"
