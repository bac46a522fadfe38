// The farm's headline number for small firmware (issue: "A coordinator core built for a fleet"):
// 6 cells (cortex-m3 and rv32imac x 3 variants) x (make + QEMU boot test), each step 50-150 ms,
// through a local farm of 2 workers, against the same 12 steps run by hand on this machine, one
// after another and in 2 lanes (what 2 cores can do). Interleaved repetitions, medians.
//   build/bench/bench_firmware_matrix [REPS] [process|sandbox] [script|qemu-step]
// `qemu-step` (the default): the farm's test step is a `qemu:` step judged by the worker's console
// harness, as the example writes it; `script`: the same shell script as by hand.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/farm.h"

namespace {
namespace fs = std::filesystem;
using assay::testing::Farm;
using assay::testing::RunCommand;
using assay::testing::RunResult;

const std::vector<std::string> kTargets = {"cortex-m3", "rv32imac"};
const std::vector<int> kVariants = {1, 2, 3};

// One cell's two steps as a shell script, run in `dir` (a copy of the example).
std::string CellScript(const std::string& target, int variant) {
  return absl::StrCat("make -B TARGET=", target, " PROFILE=release DEFS=-DKARATOS_VARIANT=", variant,
                      " >/dev/null && scripts/qemu-test.sh ", target, " out/", target, "-release/karatos.elf >/dev/null");
}

int64_t Ms(const google::protobuf::Timestamp& t) { return t.seconds() * 1000 + t.nanos() / 1'000'000; }
double Us(const google::protobuf::Timestamp& t) { return static_cast<double>(t.seconds()) * 1e6 + t.nanos() / 1e3; }

// Where a farm job's time went, per step, from the coordinator's task times and the worker's REAPI
// execution metadata (both on this host's clock): averages in ms.
void PrintBreakdown(const assay::v1::Job& job, absl::Time submitted, absl::Time seen_done) {
  int64_t first_start = INT64_MAX, last_end = 0;
  for (const auto& t : job.tasks()) {
    first_start = std::min(first_start, t.started_at_ms());
    last_end = std::max(last_end, t.finished_at_ms());
  }
  std::printf("  job (ms): submit -> accepted %lld, accepted -> first step started %lld, steps %lld, "
              "last step done -> client saw the job done %lld\n",
              static_cast<long long>(job.created_at_ms() - absl::ToUnixMillis(submitted)),
              static_cast<long long>(first_start - job.created_at_ms()), static_cast<long long>(last_end - first_start),
              static_cast<long long>(absl::ToUnixMillis(seen_done) - last_end));
  double queued = 0, fetch = 0, run = 0, upload = 0, to_done = 0;
  int n = 0;
  for (const auto& t : job.tasks()) {
    if (t.cached()) continue;
    const auto& m = t.result().execution_metadata();
    queued += static_cast<double>(t.started_at_ms() - t.queued_at_ms());
    fetch += static_cast<double>(Ms(m.input_fetch_completed_timestamp()) - Ms(m.input_fetch_start_timestamp()));
    run += static_cast<double>(Ms(m.execution_completed_timestamp()) - Ms(m.execution_start_timestamp()));
    upload += static_cast<double>(Ms(m.output_upload_completed_timestamp()) - Ms(m.output_upload_start_timestamp()));
    to_done += static_cast<double>(t.finished_at_ms() - Ms(m.worker_completed_timestamp()));
    ++n;
  }
  if (n == 0) return;
  std::printf("  per step (ms, mean of %d): ready -> started on its worker %.1f, inputs %.1f, run %.1f, outputs %.1f, "
              "worker done -> task final %.1f\n",
              n, queued / n, fetch / n, run / n, upload / n, to_done / n);
  // Each worker's runs in order: the time between two of them (the farm's cost on that lane), and
  // how long it stood idle at the end while the other lane finished.
  std::map<std::string, std::vector<std::pair<double, double>>> lanes;  // worker -> (run start, run end)
  for (const auto& t : job.tasks()) {
    const auto& m = t.result().execution_metadata();
    lanes[m.worker()].emplace_back(Us(m.execution_start_timestamp()), Us(m.execution_completed_timestamp()));
  }
  double last = 0;
  for (auto& [w, runs] : lanes) {
    std::sort(runs.begin(), runs.end());
    last = std::max(last, runs.back().second);
  }
  for (const auto& [w, runs] : lanes) {
    double between = 0;
    for (size_t i = 1; i < runs.size(); ++i) between += runs[i].first - runs[i - 1].second;
    std::printf("  lane %s: %zu runs, %.1f ms between runs in all (%.1f each), idle %.1f ms at the end\n", w.c_str(),
                runs.size(), between / 1e3, runs.size() > 1 ? between / 1e3 / static_cast<double>(runs.size() - 1) : 0,
                (last - runs.back().second) / 1e3);
  }
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs the 6 cells in `lanes` parallel lanes (each lane its own copy of the example, cells in turn).
double ByHand(const std::vector<fs::path>& copies, int lanes) {
  std::vector<std::string> lane_scripts(static_cast<size_t>(lanes));
  int i = 0;
  for (const auto& t : kTargets) {
    for (int v : kVariants) {
      std::string& s = lane_scripts[static_cast<size_t>(i++ % lanes)];
      absl::StrAppend(&s, s.empty() ? "" : " && ", CellScript(t, v));
    }
  }
  std::string script;
  for (int l = 0; l < lanes; ++l) {
    absl::StrAppend(&script, "(cd '", copies[static_cast<size_t>(l)].string(), "' && ", lane_scripts[static_cast<size_t>(l)],
                    ") & ");
  }
  absl::StrAppend(&script, "fail=0; for j in $(jobs -p); do wait $j || fail=1; done; exit $fail");
  const absl::Time t0 = absl::Now();
  RunResult r = RunCommand({"/bin/bash", "-c", script}, absl::Minutes(5));
  const double s = absl::ToDoubleSeconds(absl::Now() - t0);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "by hand failed: %s\n", r.err.c_str());
    std::exit(1);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  if (argc > 1 && !absl::SimpleAtoi(argv[1], &reps)) return 2;
  const std::string executor = argc > 2 ? argv[2] : "process";
  const std::string test_kind = argc > 3 ? argv[3] : "qemu-step";
  if (test_kind != "script" && test_kind != "qemu-step") return 2;
  const fs::path example = fs::path(assay::testing::SourceDir()) / "examples/karatos-mini";
  const std::string pipeline = absl::StrCat(R"(name: firmware-matrix-bench
matrix:
  target: [cortex-m3, rv32imac]
  variant: [1, 2, 3]
  include:
    - {target: cortex-m3, emulator: qemu-system-arm, machine: lm3s6965evb}
    - {target: rv32imac, emulator: qemu-system-riscv32, machine: virt}
steps:
  - id: build
    run: make -B TARGET=${{ matrix.target }} PROFILE=release DEFS=-DKARATOS_VARIANT=${{ matrix.variant }}
    outputs: ["out/${{ matrix.target }}-release/"]
    cache: false
  - id: test
    needs: [build]
    cache: false
)", test_kind == "script" ? R"(    run: scripts/qemu-test.sh ${{ matrix.target }} out/${{ matrix.target }}-release/karatos.elf
)"
                                                   : R"(    qemu:
      system: ${{ matrix.emulator }}
      machine: ${{ matrix.machine }}
      kernel: out/${{ matrix.target }}-release/karatos.elf
      args: [-bios, none]
      expect: ["KARATOS OK: all tasks done"]
)");

  std::printf("6 cells x (make + QEMU test), executor %s, farm test step: %s, %d repetitions, medians\n",
              executor.c_str(), test_kind.c_str(), reps);
  std::vector<double> serial, two_lanes, farm1, farm2;
  for (int slots : {1, 2}) {
    Farm farm;
    farm.StartCoordinator();
    farm.set_executor(executor);
    farm.StartWorker("w1", {}, slots);
    farm.StartWorker("w2", {}, slots);
    std::vector<fs::path> copies;
    for (int l = 0; l < 2; ++l) {
      copies.push_back(farm.dir() / absl::StrCat("by-hand-", l));
      fs::copy(example, copies.back(), fs::copy_options::recursive);
      fs::remove_all(copies.back() / "out");
    }
    const fs::path tree = farm.dir() / "tree";
    fs::copy(example, tree, fs::copy_options::recursive);
    fs::remove_all(tree / "out");
    if (!assay::WriteFile(tree / "assay.yaml", pipeline).ok()) return 1;
    // Warm-up: caches, page cache, toolchains.
    auto warm = farm.Submit(tree);
    if (!warm.ok() || !farm.WaitJob(*warm).ok()) return 1;
    ByHand(copies, 1);
    for (int r = 0; r < reps; ++r) {
      if (slots == 1) {
        serial.push_back(ByHand(copies, 1));
        two_lanes.push_back(ByHand(copies, 2));
      }
      const absl::Time t0 = absl::Now();
      auto id = farm.Submit(tree);
      auto job = id.ok() ? farm.WaitJob(*id) : id.status();
      const absl::Time t1 = absl::Now();
      const double s = absl::ToDoubleSeconds(t1 - t0);
      if (!job.ok() || job->state() != assay::v1::JOB_SUCCEEDED) {
        std::fprintf(stderr, "farm job failed: %s\n", job.ok() ? job->message().c_str() : job.status().ToString().c_str());
        return 1;
      }
      (slots == 1 ? farm1 : farm2).push_back(s);
      if (r == reps - 1) {
        std::printf("farm, %d slot(s) per worker, last run:\n", slots);
        PrintBreakdown(*job, t0, t1);
      }
    }
  }
  const double by_hand = Median(serial), lanes = Median(two_lanes);
  std::printf("by hand, one after another   %6.3f s\n", by_hand);
  std::printf("by hand, 2 lanes             %6.3f s   (%.2f of one after another)\n", lanes, lanes / by_hand);
  std::printf("farm, 2 workers x 1 slot     %6.3f s   farm / by hand = %.2f   farm / 2 lanes = %.2f\n", Median(farm1),
              Median(farm1) / by_hand, Median(farm1) / lanes);
  std::printf("farm, 2 workers x 2 slots    %6.3f s   farm / by hand = %.2f   farm / 2 lanes = %.2f\n", Median(farm2),
              Median(farm2) / by_hand, Median(farm2) / lanes);
  return 0;
}
