/// @file tests/distributed/nccl_rank/main.cpp @brief One rank of the NCCL process-group tests as its own process (ember_nccl_rank, emulated CUDA build), started N times by tests/distributed/test_nccl.cpp; bootstraps through files; prints its results.
//
// Usage: ember_nccl_rank SCENARIO NRANKS RANK DIR TIMEOUT_MS
//   SCENARIO  collectives: all_reduce sum/avg (f32, f64, i64; blocking and async; a CPU tensor),
//                          broadcast from the last rank and from rank 1, barrier, then one
//                          DataParallel window
//             stall:       all_reduce sum, except the last rank, which skips it and leaves
//   DIR       an empty directory shared by the ranks (rank 0's ncclUniqueId travels through it)
// The process uses device RANK (one emulated device per rank: EMBER_EMU_DEVICES). Prints
// "v KEY N V1 ... VN" per result and "error MESSAGE" when the scenario threw; exits 0 once it ran.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ops/ops.h"
#include "distributed/data_parallel.h"
#include "distributed/nccl/nccl_process_group.h"

using namespace ember;
using namespace ember::distributed;

namespace {

/// A CPU group that only broadcasts (all the NCCL group's bootstrap needs): the root writes the bytes
/// to a file in the shared directory, the others wait for it (at most the timeout). Every rank is on
/// this machine, so the NCCL group puts rank r on GPU r.
class FileBootstrap final : public ProcessGroup {
 public:
  FileBootstrap(int rank, int size, std::filesystem::path dir, ProcessGroupOptions o)
      : ProcessGroup(o), rank_(rank), size_(size), dir_(std::move(dir)) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return rank_; }
  int local_size() const override { return size_; }
  std::string backend() const override { return "file"; }
  bool supports(DeviceType t) const override { return t == DeviceType::CPU; }

 protected:
  std::unique_ptr<Work> do_all_reduce(Tensor&, ReduceOp) override { EMBER_FAIL("FileBootstrap: broadcast only"); }
  void do_barrier() override { EMBER_FAIL("FileBootstrap: broadcast only"); }
  void do_broadcast(Tensor& t, int root) override {
    const std::filesystem::path file = dir_ / ("broadcast-" + std::to_string(count_++));
    if (rank_ == root) {
      const std::filesystem::path tmp = file.string() + ".tmp";
      std::ofstream(tmp, std::ios::binary).write(static_cast<const char*>(t.data_ptr()), std::streamsize(t.nbytes()));
      std::filesystem::rename(tmp, file);  // appears whole
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    while (!std::filesystem::exists(file)) {
      EMBER_CHECK(std::chrono::steady_clock::now() - start < options().timeout, "FileBootstrap: rank ", root,
                  " did not broadcast within ", options().timeout.count(), " ms");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::ifstream(file, std::ios::binary).read(static_cast<char*>(t.data_ptr()), std::streamsize(t.nbytes()));
  }

 private:
  int rank_, size_;
  std::filesystem::path dir_;
  int count_ = 0;
};

void print(const std::string& key, const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  std::printf("v %s %zu", key.c_str(), v.size());
  for (double x : v) std::printf(" %.17g", x);
  std::printf("\n");
}

/// Every collective of the group, with inputs that depend on the rank (a wrong op or root shows).
void collectives(ProcessGroup& pg, Device dev) {
  const TensorOptions cuda = TensorOptions{}.set_device(dev);
  const TensorOptions cuda_f64 = TensorOptions{cuda}.set_dtype(DType::f64);
  const TensorOptions cuda_i64 = TensorOptions{cuda}.set_dtype(DType::i64);
  const double r = pg.rank() + 1;
  Tensor sum = from_vector(std::vector<float>{float(r), float(-2 * r), float(0.25 * r)}, Shape{3}, cuda);
  pg.all_reduce(sum, ReduceOp::Sum);
  print("sum_f32", sum);
  std::vector<double> ramp(1000);
  for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = r * double(i) * 0.5;
  Tensor avg = from_vector(ramp, Shape{1000}, cuda_f64);
  pg.all_reduce(avg, ReduceOp::Avg);
  print("avg_f64", avg);
  Tensor ints = from_vector(std::vector<int64_t>{int64_t(pg.rank()) * 1000 + 7}, Shape{1}, cuda_i64);
  pg.all_reduce(ints, ReduceOp::Sum);
  print("sum_i64", ints);
  Tensor a = full(Shape{4}, r, cuda), b = full(Shape{4}, 10 * r, cuda);
  auto wa = pg.all_reduce_async(a, ReduceOp::Sum);
  auto wb = pg.all_reduce_async(b, ReduceOp::Avg);
  wb->wait();
  wa->wait();
  print("async_sum", a);
  print("async_avg", b);
  Tensor from_last = full(Shape{5}, 100 * r, cuda);
  pg.broadcast(from_last, pg.size() - 1);
  print("broadcast_last", from_last);
  Tensor from_one = from_vector(std::vector<float>{float(r), float(2 * r), float(3 * r)}, Shape{3}, cuda);
  pg.broadcast(from_one, 1 % pg.size());
  print("broadcast_one", from_one);
  Tensor table =
      from_vector(std::vector<int64_t>{int64_t(pg.rank()) + 1, 7}, Shape{2}, TensorOptions{}.set_dtype(DType::i64));
  pg.all_reduce(table, ReduceOp::Sum);  // a CPU tensor, as DataParallel's layout check sends
  print("cpu_sum_i64", table);
  pg.barrier();
  std::printf("v all_reduce_calls 1 %lld\n", static_cast<long long>(pg.stats().all_reduce));
}

/// DataParallel over the group: rank 0's parameters everywhere after construction, gradients summed
/// over the ranks after one window (inputs differ per rank).
void data_parallel(const std::shared_ptr<ProcessGroup>& pg, Device dev) {
  const TensorOptions cuda = TensorOptions{}.set_device(dev);
  const TensorOptions param = TensorOptions{cuda}.set_requires_grad(true);
  const double r = pg->rank() + 1;
  Tensor w = full(Shape{4, 3}, r, param), b = full(Shape{3}, -r, param);
  DataParallel dp(pg, {{"w", w}, {"b", b}}, {}, DataParallelOptions{.bucket_bytes = 16});
  print("dp_w", w);
  print("dp_b", b);
  Tensor x = full(Shape{5, 4}, r, cuda);
  dp.before_backward(true);
  sum(matmul(x, w) + b).backward();
  std::vector<Tensor> grads{w.grad(), b.grad()};
  std::printf("v dp_count 1 %lld\n", static_cast<long long>(dp.reduce(grads, 5)));
  print("dp_w_grad", w.grad());
  print("dp_b_grad", b.grad());
}

/// One all-reduce that the last rank skips: the others must fail after the timeout.
void stall(ProcessGroup& pg, Device dev) {
  if (pg.rank() == pg.size() - 1) return;
  Tensor t = full(Shape{8}, 1.0, TensorOptions{}.set_device(dev));
  pg.all_reduce(t, ReduceOp::Sum);
  print("stall_sum", t);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s SCENARIO NRANKS RANK DIR TIMEOUT_MS\n", argv[0]);
    return 2;
  }
  const std::string scenario = argv[1];
  const int nranks = std::atoi(argv[2]), rank = std::atoi(argv[3]);
  const ProcessGroupOptions options{.timeout = std::chrono::milliseconds(std::atoi(argv[5]))};
  try {
    auto boot = std::make_shared<FileBootstrap>(rank, nranks, argv[4], options);
    auto pg = std::make_shared<NcclProcessGroup>(boot, options);
    EMBER_CHECK(pg->device() == Device::cuda(rank), "rank ", rank, " got ", pg->device().str());
    if (scenario == "collectives") {
      collectives(*pg, pg->device());
      data_parallel(pg, pg->device());
    } else if (scenario == "stall") {
      stall(*pg, pg->device());
    }
    else EMBER_FAIL("unknown scenario ", scenario);
  } catch (const std::exception& e) {
    std::string message = e.what();
    for (char& c : message)
      if (c == '\n') c = ' ';
    std::printf("error %s\n", message.c_str());
  }
  return 0;
}
