/// @file tests/distributed/test_nccl.cpp @brief The NCCL group: a world of one (real GPU: ember_gpu_tests; emulated NCCL: ember_tests), and 2 and 3 ranks as processes over the emulated NCCL (ember_nccl_rank), including a rank that never joins and one that stops calling collectives.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "distributed/data_parallel.h"
#include "kernels/cuda/backend_info.h"
#include "kernels/dispatch.h"
#include "kernels/transfer.h"
#include "tests/harness/backends.h"

extern char** environ;

using namespace ember;
using namespace ember::distributed;

namespace {
bool nccl_available() {
  const auto names = available_backends();
  return std::find(names.begin(), names.end(), "nccl") != names.end() && ember::test::has_cuda();
}

/// Whether `nranks` ranks can run as processes: the emulated backend with its rank program, and one
/// emulated device per rank (EMBER_EMU_DEVICES). Says why not otherwise.
bool multi_rank_available(int nranks) {
#ifndef EMBER_NCCL_RANK_PROGRAM
  (void)nranks;
  WARN("skipped: ember_nccl_rank (ranks over the emulated NCCL) is built with the emulated CUDA backend");
  return false;
#else
  if (!nccl_available() || !kernels::table_for<kernels::CudaBackendInfo>(DeviceType::CUDA).emulated) {
    WARN("skipped: ranks as processes run over the emulated NCCL (on GPUs: ember.gpu.nccl_multi under mpirun)");
    return false;
  }
  const int devices = kernels::device_count(DeviceType::CUDA);
  if (devices >= nranks) return true;
  WARN("skipped: " << nranks << " ranks need " << nranks << " emulated devices (EMBER_EMU_DEVICES), there are "
                   << devices);
  return false;
#endif
}

/// What one rank process printed: results ("v KEY N V...") and the message of an exception ("error ...").
struct RankOutput {
  std::map<std::string, std::vector<double>> values;
  std::string error;
  bool finished = false;  ///< exited normally (status 0) within the deadline
};

[[maybe_unused]] RankOutput parse(std::istream& in) {  // unused without the emulator
  RankOutput out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string tag;
    s >> tag;
    if (tag == "error") {
      std::getline(s >> std::ws, out.error);
    } else if (tag == "v") {
      std::string key;
      std::size_t n = 0;
      s >> key >> n;
      std::vector<double>& v = out.values[key];
      v.resize(n);
      for (double& x : v) s >> x;
    }
  }
  return out;
}

/// Runs `scenario` as ranks 0 .. started-1 of a group of `nranks`, one ember_nccl_rank process each,
/// bootstrapped through a fresh directory; a process still running after 60 s is killed (a hang).
std::vector<RankOutput> run_ranks([[maybe_unused]] const std::string& scenario, [[maybe_unused]] int nranks,
                                  [[maybe_unused]] int started, [[maybe_unused]] int timeout_ms) {
  std::vector<RankOutput> outputs;
#ifdef EMBER_NCCL_RANK_PROGRAM
  char dir_template[] = "/tmp/ember-nccl-pg-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::filesystem::path dir = dir_template;
  std::vector<pid_t> pids;
  for (int r = 0; r < started; ++r) {
    std::vector<std::string> args{EMBER_NCCL_RANK_PROGRAM, scenario, std::to_string(nranks), std::to_string(r),
                                  dir.string(), std::to_string(timeout_ms)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string out = (dir / ("out-" + std::to_string(r))).string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
    pids.push_back(pid);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int r = 0; r < started; ++r) {
    int status = 0;
    while (waitpid(pids[std::size_t(r)], &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pids[std::size_t(r)], SIGKILL);
        waitpid(pids[std::size_t(r)], &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ifstream in(dir / ("out-" + std::to_string(r)));
    outputs.push_back(parse(in));
    outputs.back().finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  std::filesystem::remove_all(dir);
#endif
  return outputs;
}

/// "" when got == want element for element (within `rel` relative), else the first difference.
std::string difference(const std::vector<double>& got, const std::vector<double>& want, double rel = 0) {
  if (got.size() != want.size()) return "size " + std::to_string(got.size()) + ", want " + std::to_string(want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= rel * std::abs(want[i]))) {
      std::ostringstream s;
      s << "element " << i << ": got " << got[i] << ", want " << want[i];
      return s.str();
    }
  return "";
}

const std::vector<double>& value(const RankOutput& out, const std::string& key) {
  static const std::vector<double> none;
  auto it = out.values.find(key);
  return it == out.values.end() ? none : it->second;
}
}  // namespace

TEST_CASE("NCCL world of one: collectives on CUDA tensors", "[distributed][nccl]") {
  if (!nccl_available()) {
    WARN("skipped: the NCCL backend is linked with a CUDA backend (ember_tests: emulated; ember_gpu_tests: real)");
    return;
  }
  auto pg = init_process_group("nccl", Device::cuda(0));
  CHECK(pg->backend() == "nccl");
  CHECK(pg->rank() == 0);
  CHECK(pg->size() == 1);
  const TensorOptions cuda = TensorOptions{}.set_device(Device::cuda(0));
  Tensor t = from_vector(std::vector<float>{1.f, -2.f, 3.5f}, Shape{3}, cuda);
  pg->all_reduce(t, ReduceOp::Sum);
  pg->all_reduce(t, ReduceOp::Avg);
  auto w = pg->all_reduce_async(t);
  w->wait();
  CHECK(w->test());
  pg->broadcast(t, 0);
  pg->barrier();
  CHECK(t.to_vector<float>() == std::vector<float>{1.f, -2.f, 3.5f});
  CHECK(pg->stats().all_reduce == 3);
  // CPU tensors (DataParallel's layout check) go through a device copy.
  Tensor host = from_vector(std::vector<int64_t>{4, -9}, Shape{2}, TensorOptions{}.set_dtype(DType::i64));
  pg->all_reduce(host);
  pg->broadcast(host, 0);
  CHECK(host.device() == Device::cpu());
  CHECK(host.to_vector<int64_t>() == std::vector<int64_t>{4, -9});
}

TEST_CASE("NCCL world of one: DataParallel buckets on the GPU", "[distributed][nccl]") {
  if (!nccl_available()) {
    WARN("skipped: the NCCL backend is linked with a CUDA backend (ember_tests: emulated; ember_gpu_tests: real)");
    return;
  }
  auto pg = init_process_group("auto", Device::cuda(0));
  REQUIRE(pg->backend() == "nccl");
  const TensorOptions o = TensorOptions{}.set_device(Device::cuda(0)).set_requires_grad(true);
  Tensor w = ember::test::random_input(Shape{4, 3}, 1, -1.0, 1.0, o), b = ember::test::random_input(Shape{3}, 2, -1.0, 1.0, o);
  DataParallel dp(pg, {{"w", w}, {"b", b}}, {}, DataParallelOptions{.bucket_bytes = 16});
  REQUIRE(dp.buckets().size() == 2);
  Tensor x = ember::test::random_input(Shape{5, 4}, 3, -1.0, 1.0, TensorOptions{}.set_device(Device::cuda(0)));
  dp.before_backward(true);
  sum(matmul(x, w) + b).backward();
  std::vector<Tensor> g{w.grad(), b.grad()};
  CHECK(dp.reduce(g, 5) == 5);
  CHECK(dp.stats().allreduce_calls == 2);
  CHECK(dp.stats().launched_in_backward == 1);
  // d/db of sum(xW + b) is the batch size in every column.
  CHECK(b.grad().to_vector<float>() == std::vector<float>{5.f, 5.f, 5.f});
}

TEST_CASE("NCCL group of 2 and 3 ranks as processes: sum, avg, broadcast roots, DataParallel (emulated NCCL)",
          "[distributed][nccl]") {
  for (int n : {2, 3}) {
    if (!multi_rank_available(n)) return;
    const std::vector<RankOutput> ranks = run_ranks("collectives", n, n, 20000);
    const double s = n * (n + 1) / 2.0;  // inputs are rank + 1: their sum
    std::vector<double> avg(1000);
    for (std::size_t i = 0; i < avg.size(); ++i) avg[i] = s / n * double(i) * 0.5;
    for (int r = 0; r < n; ++r) {
      const RankOutput& got = ranks[std::size_t(r)];
      INFO("rank " << r << " of " << n);
      CHECK(got.finished);
      CHECK(got.error == "");
      CHECK(difference(value(got, "sum_f32"), {s, -2 * s, 0.25 * s}) == "");  // avg would give s / n
      CHECK(difference(value(got, "avg_f64"), avg, 1e-12) == "");            // sum would give n times more
      CHECK(difference(value(got, "sum_i64"), {1000.0 * n * (n - 1) / 2 + 7.0 * n}) == "");
      CHECK(difference(value(got, "async_sum"), std::vector<double>(4, s)) == "");
      CHECK(difference(value(got, "async_avg"), std::vector<double>(4, 10 * s / n), 1e-6) == "");
      CHECK(difference(value(got, "broadcast_last"), std::vector<double>(5, 100.0 * n)) == "");  // root n-1's
      CHECK(difference(value(got, "broadcast_one"), {2, 4, 6}) == "");                            // root 1's
      CHECK(difference(value(got, "cpu_sum_i64"), {s, 7.0 * n}) == "");
      CHECK(difference(value(got, "all_reduce_calls"), {6}) == "");
      // DataParallel: rank 0's parameters everywhere; gradients summed over ranks (x = rank + 1).
      CHECK(difference(value(got, "dp_w"), std::vector<double>(12, 1.0)) == "");
      CHECK(difference(value(got, "dp_b"), std::vector<double>(3, -1.0)) == "");
      CHECK(difference(value(got, "dp_count"), {5.0 * n}) == "");
      CHECK(difference(value(got, "dp_w_grad"), std::vector<double>(12, 5 * s)) == "");
      CHECK(difference(value(got, "dp_b_grad"), std::vector<double>(3, 5.0 * n)) == "");
    }
  }
}

TEST_CASE("NCCL group: a rank that never joins, or stops calling collectives, gives errors, not hangs (emulated NCCL)",
          "[distributed][nccl]") {
  SECTION("a rank that never joins: init throws after the group's timeout") {
    for (int n : {2, 3}) {
      if (!multi_rank_available(n - 1)) return;
      const auto start = std::chrono::steady_clock::now();
      const std::vector<RankOutput> ranks = run_ranks("collectives", n, n - 1, 500);  // rank n-1 never starts
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
      // The first rank to time out aborts; the others may fail through its abort first.
      int timed_out = 0;
      for (const RankOutput& got : ranks) {
        CHECK(got.finished);
        CHECK_THAT(got.error, Catch::Contains("NCCL init (every rank joins)") &&
                                  Catch::Contains("the communicator was aborted"));
        timed_out += got.error.find("did not complete within 500 ms") != std::string::npos;
      }
      CHECK(timed_out >= 1);
    }
  }
  SECTION("a rank that stops calling collectives: the others' all_reduce throws") {
    if (!multi_rank_available(3)) return;
    const char* old = std::getenv("EMBER_EMU_NCCL_TIMEOUT_MS");
    const std::string saved = old ? old : "";
    setenv("EMBER_EMU_NCCL_TIMEOUT_MS", "500", 1);  // the emulator's wait for a peer, inherited by the ranks
    const std::vector<RankOutput> ranks = run_ranks("stall", 3, 3, 1000);
    if (old) setenv("EMBER_EMU_NCCL_TIMEOUT_MS", saved.c_str(), 1);
    else unsetenv("EMBER_EMU_NCCL_TIMEOUT_MS");
    for (int r = 0; r < 2; ++r) {
      const RankOutput& got = ranks[std::size_t(r)];
      INFO("rank " << r);
      CHECK(got.finished);
      CHECK(value(got, "stall_sum").empty());
      CHECK_THAT(got.error, Catch::Contains("all_reduce of f32[8]") && Catch::Contains("the communicator was aborted"));
    }
    CHECK(ranks[2].error == "");
  }
}
