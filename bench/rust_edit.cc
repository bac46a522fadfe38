// Issue 18's numbers: examples/karatos-rs (4 cells: cargo -Zbuild-std builds + QEMU boots) after a
// one-line edit of the application crate, through a local farm of 2 workers x 1 slot with the
// default executor and warm step caches, against the same 4 builds and 4 boots run one after another
// by hand with warm target/ folders (the example's scripts/by-hand.sh). Also the farm cold (no cache)
// against warm, and the bytes a warm build moves (restored from the host's cache, fetched, uploaded).
// Interleaved repetitions, medians.
//   build/bench/bench_rust_edit [REPS]
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "tests/integration/farm.h"

namespace {
namespace fs = std::filesystem;
using assay::testing::Farm;
using assay::testing::RunCommand;
using assay::testing::RunResult;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Sets the blink task's ticks in the application crate: a one-line edit.
void Edit(const fs::path& tree, int limit) {
  const fs::path main_rs = tree / "app/src/main.rs";
  std::ifstream in(main_rs);
  std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  static const std::regex kLine(R"(Blink \{ counter: 0, limit: [0-9]+ \})");
  std::ofstream(main_rs) << std::regex_replace(source, kLine, absl::StrCat("Blink { counter: 0, limit: ", limit, " }"));
}

double Seconds(const std::vector<std::string>& argv, const std::string& what, absl::Duration timeout) {
  const absl::Time start = absl::Now();
  RunResult r = RunCommand(argv, timeout);
  const double s = absl::ToDoubleSeconds(absl::Now() - start);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "%s failed (%d):\n%s\n%s\n", what.c_str(), r.exit_code, r.out.c_str(), r.err.c_str());
    std::exit(1);
  }
  return s;
}

// "96.3 MiB" or "0 bytes" (FormatBytes) in bytes.
double Bytes(const std::string& number, const std::string& unit) {
  double n = 0;
  (void)absl::SimpleAtod(number, &n);
  if (unit == "byte" || unit == "bytes") return n;
  const std::vector<std::string> units = {"B", "KiB", "MiB", "GiB"};
  for (size_t i = 0; i < units.size(); ++i) {
    if (unit == units[i]) return n * static_cast<double>(int64_t{1} << (10 * i));
  }
  return n;
}

// Sums the cache lines of a job's build logs: restored, from this host's cache, fetched, uploaded.
void PrintBytesMoved(Farm& farm, const std::string& job) {
  static const std::regex kRestored(
      R"(restored[^,]*, [0-9]+ files, ([0-9.]+) (bytes?|KiB|MiB|GiB) \(([0-9.]+) (bytes?|KiB|MiB|GiB) from this host's cache, ([0-9.]+) (bytes?|KiB|MiB|GiB) fetched)");
  static const std::regex kSaved(R"(saved, [0-9]+ files, ([0-9.]+) (bytes?|KiB|MiB|GiB) \(([0-9.]+) (bytes?|KiB|MiB|GiB) uploaded)");
  double restored = 0, local = 0, fetched = 0, saved = 0, uploaded = 0;
  for (const char* cell : {"cortex-m3/debug", "cortex-m3/release", "rv32imac/debug", "rv32imac/release"}) {
    const std::string log = farm.Log(job, absl::StrCat(cell, "/build"));
    std::smatch m;
    if (std::regex_search(log, m, kRestored)) {
      restored += Bytes(m[1], m[2]);
      local += Bytes(m[3], m[4]);
      fetched += Bytes(m[5], m[6]);
    }
    if (std::regex_search(log, m, kSaved)) {
      saved += Bytes(m[1], m[2]);
      uploaded += Bytes(m[3], m[4]);
    }
  }
  // Where the farm's time went, per step kind: from the coordinator's task times and the worker's
  // execution metadata (one host, one clock).
  auto job_proto = farm.GetJob(job);
  auto ms = [](const google::protobuf::Timestamp& t) { return t.seconds() * 1000 + t.nanos() / 1'000'000; };
  if (job_proto.ok()) {
    for (const auto& t : job_proto->tasks()) {
      const auto& m = t.result().execution_metadata();
      std::printf("  %-26s queued->started %4lld ms, caches+inputs %4lld ms, run %5lld ms, outputs %4lld ms, "
                  "result->done %3lld ms\n",
                  t.id().c_str(), static_cast<long long>(t.started_at_ms() - t.queued_at_ms()),
                  static_cast<long long>(ms(m.input_fetch_completed_timestamp()) - ms(m.input_fetch_start_timestamp())),
                  static_cast<long long>(ms(m.execution_completed_timestamp()) - ms(m.execution_start_timestamp())),
                  static_cast<long long>(ms(m.output_upload_completed_timestamp()) - ms(m.output_upload_start_timestamp())),
                  static_cast<long long>(t.finished_at_ms() - ms(m.worker_completed_timestamp())));
    }
  }
  std::printf("  job %s, 4 builds: restored %.1f MiB (%.1f MiB from the hosts' caches, %.1f MiB fetched); "
              "saved %.1f MiB (%.1f MiB uploaded)\n",
              job.c_str(), restored / 1048576, local / 1048576, fetched / 1048576, saved / 1048576, uploaded / 1048576);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 3;
  if (argc > 1) (void)absl::SimpleAtoi(argv[1], &reps);
  Farm farm;
  farm.set_executor("auto");  // the worker's default
  const fs::path farm_tree = farm.dir() / "farm-tree", hand_tree = farm.dir() / "hand-tree";
  for (const fs::path& tree : {farm_tree, hand_tree}) {
    fs::copy(assay::testing::SourceDir() + "/examples/karatos-rs", tree, fs::copy_options::recursive);
    for (const char* built : {"target", ".cargo-home", "out"}) fs::remove_all(tree / built);
  }
  const std::string by_hand = (hand_tree / "scripts/by-hand.sh").string();
  std::printf("examples/karatos-rs, 4 cells (build + QEMU boot); farm: 2 workers x 1 slot, executor auto\n");
  const double hand_cold = Seconds({by_hand}, "by hand, cold", absl::Minutes(30));
  farm.StartCoordinator();
  farm.StartWorker("w1", {}, 1);
  farm.StartWorker("w2", {}, 1);
  auto submit = [&](const std::string& what) {  // the CLI as users call it, end to end
    const absl::Time start = absl::Now();
    RunResult r = farm.Cli({"submit", farm_tree.string(), "--wait"}, absl::Minutes(30));
    const double s = absl::ToDoubleSeconds(absl::Now() - start);
    if (r.exit_code != 0) {
      std::fprintf(stderr, "%s failed (%d):\n%s\n%s\n", what.c_str(), r.exit_code, r.out.c_str(), r.err.c_str());
      std::exit(1);
    }
    return s;
  };
  const double farm_cold = submit("farm, cold");
  std::printf("cold (nothing cached): by hand %.1f s, farm %.1f s\n", hand_cold, farm_cold);
  PrintBytesMoved(farm, "1");

  std::vector<double> farm_warm, hand_warm;
  int job = 1;
  for (int rep = 0; rep < reps; ++rep) {
    const int limit = 4 + rep;
    Edit(farm_tree, limit);
    Edit(hand_tree, limit);
    if (rep % 2 == 0) {
      farm_warm.push_back(submit("farm, warm"));
      hand_warm.push_back(Seconds({by_hand}, "by hand, warm", absl::Minutes(10)));
    } else {
      hand_warm.push_back(Seconds({by_hand}, "by hand, warm", absl::Minutes(10)));
      farm_warm.push_back(submit("farm, warm"));
    }
    ++job;
    std::printf("  edit %d: farm %.2f s, by hand %.2f s\n", rep + 1, farm_warm.back(), hand_warm.back());
  }
  PrintBytesMoved(farm, std::to_string(job));
  const double farm_median = Median(farm_warm), hand_median = Median(hand_warm);
  std::printf("after a one-line edit (median of %d): farm %.2f s, by hand %.2f s; farm / by hand = %.2f (goal <= 1.0)\n",
              reps, farm_median, hand_median, farm_median / hand_median);
  std::printf("farm cold / farm warm = %.1f (goal >= 20)\n", farm_cold / farm_median);
  return 0;
}
