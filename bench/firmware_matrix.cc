// The farm's headline number for small firmware (issue: "A coordinator core built for a fleet"):
// 6 cells (cortex-m3 and rv32imac x 3 variants) x (make + QEMU boot test), each step 50-150 ms,
// through a local farm of 2 workers, against the same 12 steps run by hand on this machine, one
// after another and in as many lanes as the farm has slots (2 for 2 workers x 1 slot, 4 for 2 x 2;
// this machine's 2 cores are what either can use). Interleaved repetitions, medians.
//   build/bench/bench_firmware_matrix [REPS] [process|sandbox|auto] [script|qemu-step|make-run] [copy-inputs] [WORKER FLAGS]
// `qemu-step` (the default): the farm's test step is a `qemu:` step judged by the worker's console
// harness, as the example writes it; `script`: the same shell script as by hand. `make-run` (issue:
// real steps as fast on the farm as by hand): a make-based firmware that compiles one object per
// source (~20 input files, the whole build folder of ~11 files as the output) and tests with
// `make run` in a `run:` step; the farm's job is run as users run it, `assay submit --wait`, and the
// bench prints a CPU account per process (coordinator, workers, the steps under them, the CLI)
// and per thread of the daemons (by name, from schedstat; "exited" for threads that ended within a
// job, such as the workers' per-task threads) against the steps' CPU by hand, and how many input
// files per task the workers linked rather than wrote (from each task's "[assay] inputs" line, read
// after the job). `copy-inputs`: the workers write every input file (--copy-inputs) instead of
// linking sandboxed steps' inputs to their checked copies. Further arguments are the
// workers' flags (`--sandbox bubblewrap`: the sandbox made by bubblewrap instead of the worker).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/firmware_make_tree.h"
#include "bench/process_cpu.h"
#include "tests/integration/farm.h"

namespace {
namespace fs = std::filesystem;
using assay::testing::Farm;
using assay::testing::RunCommand;
using assay::testing::RunResult;

const std::vector<std::string> kTargets = {"cortex-m3", "rv32imac"};
const std::vector<int> kVariants = {1, 2, 3};

bool make_run = false;  // the kind of matrix: `make-run`, or karatos-mini's own Makefile

// One cell's two steps as a shell script, run in `dir` (a copy of the example).
std::string CellScript(const std::string& target, int variant) {
  if (make_run) {
    return absl::StrCat("make -B TARGET=", target, " VARIANT=", variant, " >/dev/null && make run TARGET=", target,
                        " VARIANT=", variant, " >/dev/null");
  }
  return absl::StrCat("make -B TARGET=", target, " PROFILE=release DEFS=-DKARATOS_VARIANT=", variant,
                      " >/dev/null && scripts/qemu-test.sh ", target, " out/", target, "-release/karatos.elf >/dev/null");
}

using assay::bench::Cpu;
using assay::bench::CpuOf;
using assay::bench::ThreadCpuOf;

// CPU seconds of this process's waited-for children (the CLI, the by-hand shells).
double ChildrenCpu() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The CPU a farm's processes used over the measured jobs, in seconds.
struct CpuAccount {
  double coordinator = 0, workers = 0, steps = 0, cli = 0;
  // By thread name ("exited" for threads that ended within the job: the workers' per-task ones).
  std::map<std::string, double> coordinator_threads, worker_threads;
  int tasks = 0;
  int64_t input_files = 0, input_links = 0, input_kept = 0;  // from the tasks' "[assay] inputs" lines
  int with_needs = 0, needs_elsewhere = 0;  // tasks that need another, and those run on another worker than it
};

// Counts the tasks that need another task and those that ran on another worker than it (their
// inputs fetched from the coordinator, not found on the worker's disk).
void CountPlacement(const assay::v1::Job& job, CpuAccount* cpu) {
  std::map<std::string, std::string> worker_of;
  for (const auto& task : job.tasks()) worker_of[task.id()] = task.worker();
  for (const auto& task : job.tasks()) {
    if (task.needs().empty()) continue;
    ++cpu->with_needs;
    for (const std::string& need : task.needs()) {
      if (worker_of[need] != task.worker()) {
        ++cpu->needs_elsewhere;
        break;
      }
    }
  }
}

// Adds what one task's "[assay] inputs: N files, ...; M linked to this host's copies (K already in
// place in a kept folder)" line says.
void CountInputs(absl::string_view log, CpuAccount* cpu) {
  const absl::string_view head = "[assay] inputs: ";
  const size_t at = log.find(head);
  if (at == absl::string_view::npos) return;
  absl::string_view line = log.substr(at + head.size());
  line = line.substr(0, line.find('\n'));
  int64_t files = 0, linked = 0;
  if (absl::SimpleAtoi(line.substr(0, line.find(' ')), &files)) cpu->input_files += files;
  const size_t link = line.find(" linked to this host");
  if (link == absl::string_view::npos) return;
  const size_t start = line.rfind(' ', link - 1);
  if (start != absl::string_view::npos && absl::SimpleAtoi(line.substr(start + 1, link - start - 1), &linked)) {
    cpu->input_links += linked;
  }
  int64_t kept = 0;
  const size_t open = line.find(" (", link);
  if (open != absl::string_view::npos && absl::StrContains(line.substr(open), "in place in a kept folder") &&
      absl::SimpleAtoi(line.substr(open + 2, line.find(' ', open + 2) - open - 2), &kept)) {
    cpu->input_kept += kept;
  }
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
// Adds the CPU its processes used to `*cpu`.
double ByHand(const std::vector<fs::path>& copies, int lanes, double* cpu = nullptr) {
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
  const double cpu0 = ChildrenCpu();
  const absl::Time t0 = absl::Now();
  RunResult r = RunCommand({"/bin/bash", "-c", script}, absl::Minutes(5));
  const double s = absl::ToDoubleSeconds(absl::Now() - t0);
  if (cpu != nullptr) *cpu += ChildrenCpu() - cpu0;
  if (r.exit_code != 0) {
    std::fprintf(stderr, "by hand failed: %s\n", r.err.c_str());
    std::exit(1);
  }
  return s;
}

std::string Pipeline(const std::string& test_kind) {
  if (test_kind == "make-run") {
    return R"(name: firmware-matrix-bench
matrix:
  target: [cortex-m3, rv32imac]
  variant: [1, 2, 3]
steps:
  - id: build
    run: make TARGET=${{ matrix.target }} VARIANT=${{ matrix.variant }}
    outputs: ["out/${{ matrix.target }}-v${{ matrix.variant }}/"]
    cache: false
  - id: test
    needs: [build]
    run: make run TARGET=${{ matrix.target }} VARIANT=${{ matrix.variant }}
    cache: false
)";
  }
  return absl::StrCat(R"(name: firmware-matrix-bench
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
)",
                      test_kind == "script" ? R"(    run: scripts/qemu-test.sh ${{ matrix.target }} out/${{ matrix.target }}-release/karatos.elf
)"
                                            : R"(    qemu:
      system: ${{ matrix.emulator }}
      machine: ${{ matrix.machine }}
      kernel: out/${{ matrix.target }}-release/karatos.elf
      args: [-bios, none]
      expect: ["KARATOS OK: all tasks done"]
)");
}

// A copy of the example, as the kind of matrix wants it, without build outputs.
void CopyExample(const fs::path& to) {
  fs::copy(fs::path(assay::testing::SourceDir()) / "examples/karatos-mini", to, fs::copy_options::recursive);
  fs::remove_all(to / "out");
  if (make_run && !assay::bench::WriteMakeRunTree(to).ok()) std::exit(1);
}

// Adds each thread name's CPU between two snapshots to `*sum`, and what the process used beyond its
// live threads (`total`) as "exited": not clamped per job, so that the total's clock-tick rounding
// (either way) evens out over the jobs instead of adding up.
void AddThreads(const std::map<std::string, double>& before, const std::map<std::string, double>& after,
                double total, std::map<std::string, double>* sum) {
  double live = 0;
  for (const auto& [name, seconds] : after) {
    auto was = before.find(name);
    const double used = seconds - (was == before.end() ? 0 : was->second);
    (*sum)[name] += used;
    live += used;
  }
  (*sum)["exited"] += total - live;
}

std::string ThreadList(const std::map<std::string, double>& threads, double per) {
  std::vector<std::pair<double, std::string>> ranked;
  for (const auto& [name, seconds] : threads) {
    if (seconds * per >= 0.05) ranked.emplace_back(seconds * per, name);
  }
  std::sort(ranked.rbegin(), ranked.rend());
  std::vector<std::string> parts;
  for (const auto& [ms, name] : ranked) parts.push_back(absl::StrFormat("%s %.2f", name, ms));
  return absl::StrJoin(parts, ", ");
}

// One farm job, timed from the submit to the job's end as the client saw it, its CPU added to
// `*cpu`. `make-run` submits as users do (`assay submit --wait`); the other kinds submit, then wait
// on the job's WatchJob push as `--wait` does, without the CLI's drawing.
double FarmJob(Farm& farm, const fs::path& tree, CpuAccount* cpu, assay::v1::Job* job, absl::Time* t0, absl::Time* t1) {
  const std::vector<std::string> workers = {"w1", "w2"};
  const Cpu c0 = CpuOf(farm.coordinator_pid());
  const auto ct0 = ThreadCpuOf(farm.coordinator_pid());
  std::vector<Cpu> w0;
  std::vector<std::map<std::string, double>> wt0;
  for (const auto& w : workers) {
    w0.push_back(CpuOf(farm.worker_pid(w)));
    wt0.push_back(ThreadCpuOf(farm.worker_pid(w)));
  }
  const double cli0 = ChildrenCpu();
  *t0 = absl::Now();
  absl::StatusOr<std::string> id;
  if (make_run) {
    RunResult r = farm.Cli({"submit", tree.string(), "--wait"});
    *t1 = absl::Now();
    const std::string logs = "logs:      assay logs ";  // the line it ends with names the job
    const size_t at = r.out.find(logs);
    if (r.exit_code == 0 && at != std::string::npos) {
      id = r.out.substr(at + logs.size(), r.out.find(' ', at + logs.size()) - at - logs.size());
    } else {
      id = absl::InternalError(absl::StrCat("assay submit --wait: ", r.exit_code, " ", r.err));
    }
  } else {
    id = farm.Submit(tree);
    auto waited = id.ok() ? farm.WaitJob(*id) : id.status();
    *t1 = absl::Now();
    if (!waited.ok()) id = waited.status();
  }
  cpu->cli += ChildrenCpu() - cli0;
  const Cpu c1 = CpuOf(farm.coordinator_pid());
  cpu->coordinator += c1.self - c0.self;
  AddThreads(ct0, ThreadCpuOf(farm.coordinator_pid()), c1.self - c0.self, &cpu->coordinator_threads);
  for (size_t i = 0; i < workers.size(); ++i) {
    const Cpu w1 = CpuOf(farm.worker_pid(workers[i]));
    cpu->workers += w1.self - w0[i].self;
    cpu->steps += w1.children - w0[i].children;
    AddThreads(wt0[i], ThreadCpuOf(farm.worker_pid(workers[i])), w1.self - w0[i].self, &cpu->worker_threads);
  }
  auto got = id.ok() ? farm.GetJob(*id) : id.status();
  if (!got.ok() || got->state() != assay::v1::JOB_SUCCEEDED) {
    std::fprintf(stderr, "farm job failed: %s\n", got.ok() ? got->message().c_str() : got.status().ToString().c_str());
    std::exit(1);
  }
  cpu->tasks += got->tasks_size();
  CountPlacement(*got, cpu);
  for (const auto& task : got->tasks()) CountInputs(farm.Cli({"logs", *id, task.id()}).out, cpu);
  *job = *got;
  return absl::ToDoubleSeconds(*t1 - *t0);
}

void PrintCpu(const char* what, const CpuAccount& farm, double by_hand_steps, int by_hand_tasks) {
  const double per = 1e3 / std::max(1, farm.tasks);
  std::printf("CPU per task (ms), %s: coordinator %.1f, workers %.1f (daemons %.1f), steps under the workers %.1f, "
              "the CLI %.1f; steps by hand (2 lanes) %.1f; input files per task %.1f, linked %.1f (in place %.1f)\n",
              what, farm.coordinator * per, farm.workers * per, (farm.coordinator + farm.workers) * per,
              farm.steps * per, farm.cli * per, by_hand_steps * 1e3 / std::max(1, by_hand_tasks),
              static_cast<double>(farm.input_files) / std::max(1, farm.tasks),
              static_cast<double>(farm.input_links) / std::max(1, farm.tasks),
              static_cast<double>(farm.input_kept) / std::max(1, farm.tasks));
  std::printf("  steps on another worker than the step they need: %d of %d\n", farm.needs_elsewhere, farm.with_needs);
  std::printf("  by thread (ms per task): coordinator: %s\n  workers: %s\n",
              ThreadList(farm.coordinator_threads, per).c_str(), ThreadList(farm.worker_threads, per).c_str());
  // This VM's speed drifts by half within an hour (its neighbours); the steps by hand, measured in
  // the same run, are the yardstick that drifts with it.
  const double hand_per_task = by_hand_steps * 1e3 / std::max(1, by_hand_tasks);
  if (hand_per_task > 0) {
    std::printf("  daemons per ms of the steps' CPU by hand: %.1f us\n",
                1e3 * (farm.coordinator + farm.workers) * per / hand_per_task);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  if (argc > 1 && !absl::SimpleAtoi(argv[1], &reps)) return 2;
  const std::string executor = argc > 2 ? argv[2] : "process";
  const std::string test_kind = argc > 3 ? argv[3] : "qemu-step";
  if (test_kind != "script" && test_kind != "qemu-step" && test_kind != "make-run") return 2;
  make_run = test_kind == "make-run";
  // Then worker flags: `copy-inputs` (--copy-inputs), or any flag as the worker takes it.
  std::vector<std::string> worker_args;
  for (int i = 4; i < argc; ++i) worker_args.push_back(std::string(argv[i]) == "copy-inputs" ? "--copy-inputs" : argv[i]);
  const std::string pipeline = Pipeline(test_kind);
  std::printf("6 cells x (make + QEMU test), executor %s, farm test step: %s, %d repetitions, medians%s%s\n",
              executor.c_str(), test_kind.c_str(), reps, worker_args.empty() ? "" : ", workers with ",
              absl::StrJoin(worker_args, " ").c_str());
  std::vector<double> serial, two_lanes, four_lanes, farm1, farm2;
  CpuAccount cpu1, cpu2;
  double lanes_cpu = 0;
  for (int slots : {1, 2}) {
    Farm farm;
    farm.use_default_timings();
    farm.StartCoordinator();
    farm.set_executor(executor);
    farm.StartWorker("w1", {}, slots, worker_args);
    farm.StartWorker("w2", {}, slots, worker_args);
    std::vector<fs::path> copies;  // one per lane by hand: as many as the farm's slots
    for (int l = 0; l < 2 * slots; ++l) {
      copies.push_back(farm.dir() / absl::StrCat("by-hand-", l));
      CopyExample(copies.back());
    }
    const fs::path tree = farm.dir() / "tree";
    CopyExample(tree);
    if (!assay::WriteFile(tree / "assay.yaml", pipeline).ok()) return 1;
    // Warm-up: caches, page cache, toolchains.
    CpuAccount warm_cpu;
    assay::v1::Job job;
    absl::Time t0, t1;
    FarmJob(farm, tree, &warm_cpu, &job, &t0, &t1);
    ByHand(copies, static_cast<int>(copies.size()));  // every lane's copy
    for (int r = 0; r < reps; ++r) {
      if (slots == 1) {
        serial.push_back(ByHand(copies, 1));
        two_lanes.push_back(ByHand(copies, 2, &lanes_cpu));
      } else {
        four_lanes.push_back(ByHand(copies, 4));
      }
      (slots == 1 ? farm1 : farm2).push_back(FarmJob(farm, tree, slots == 1 ? &cpu1 : &cpu2, &job, &t0, &t1));
      if (r == reps - 1) {
        std::printf("farm, %d slot(s) per worker, last run:\n", slots);
        PrintBreakdown(job, t0, t1);
      }
    }
  }
  const double by_hand = Median(serial), lanes = Median(two_lanes);
  std::printf("by hand, one after another   %6.3f s\n", by_hand);
  std::printf("by hand, 2 lanes             %6.3f s   (%.2f of one after another)\n", lanes, lanes / by_hand);
  std::printf("farm, 2 workers x 1 slot     %6.3f s   farm / by hand = %.2f   farm / 2 lanes = %.2f\n", Median(farm1),
              Median(farm1) / by_hand, Median(farm1) / lanes);
  std::printf("by hand, 4 lanes             %6.3f s   (%.2f of one after another)\n", Median(four_lanes),
              Median(four_lanes) / by_hand);
  std::printf("farm, 2 workers x 2 slots    %6.3f s   farm / by hand = %.2f   farm / 2 lanes = %.2f   farm / 4 lanes = %.2f\n",
              Median(farm2), Median(farm2) / by_hand, Median(farm2) / lanes, Median(farm2) / Median(four_lanes));
  const int hand_tasks = 12 * static_cast<int>(two_lanes.size());
  PrintCpu("2 workers x 1 slot", cpu1, lanes_cpu, hand_tasks);
  PrintCpu("2 workers x 2 slots", cpu2, lanes_cpu, hand_tasks);
  return 0;
}
