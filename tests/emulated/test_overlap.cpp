/// @file tests/emulated/test_overlap.cpp @brief DataParallel over NCCL overlaps communication with the backward: each bucket's all-reduce is queued on the communication stream as soon as its gradients are ready, before the backward of earlier layers (the emulator's trace), and the compute stream waits for it before the optimizer.
#include <catch2/catch.hpp>

#include <algorithm>

#include "distributed/data_parallel.h"
#include "kernels/cuda/device_context.h"
#include "kernels/cuda/emulator/runtime.h"
#include "nn/functional.h"
#include "optim/grad_accumulator.h"
#include "optim/sgd.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/optim/fixtures.h"

using namespace ember;
namespace fx = ember::test::optim_fixtures;

TEST_CASE("DataParallel queues each bucket's all-reduce on the communication stream during the backward",
          "[emulated][distributed][nccl][cuda]") {
  auto pg = distributed::init_process_group("nccl", test::kCuda);
  fx::CoreMLP m(64, 256, 10, 1, test::kCuda);  // w1 [64, 256], w2 [256, 256], w3 [256, 10]
  optim::SGD opt(m.parameters(), optim::SGDOptions{.lr = 0.1});
  optim::GradAccumulator acc(m, opt, {.accum_steps = 2});
  // 16 KiB buckets, in backward order: [b3, w3, b2], [w2], [b1], [w1] (a large weight gets its own).
  distributed::DataParallel dp(pg, m, distributed::DataParallelOptions{.bucket_bytes = 16 << 10});
  const size_t buckets = dp.buckets().size();
  REQUIRE(buckets == 4);
  acc.set_comm_hook(&dp);
  const fx::Data d = fx::make_data(8, 64, 10, 3, test::kCuda);
  auto micro = [&](int64_t begin) {
    return fx::mean_cross_entropy(m.forward(d.rows(d.x, begin, begin + 4)), d.rows(d.onehot, begin, begin + 4));
  };
  acc.backward(micro(0), 4);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  emu::set_trace(true);
  acc.backward(micro(4), 4);  // the last micro-batch of the window: backward, all-reduces, optimizer
  const auto trace = emu::trace();
  emu::set_trace(false);

  const std::uint64_t compute = emu::stream_id(cuda::stream()), comm = emu::stream_id(cuda::comm_stream());
  std::vector<size_t> reduces, gemms;
  for (size_t i = 0; i < trace.size(); ++i) {
    if (trace[i].name == "ncclAllReduce") {
      CHECK(trace[i].stream == comm);
      reduces.push_back(i);
    }
    if (trace[i].name == "cublasSgemmStridedBatched" && trace[i].stream == compute) gemms.push_back(i);
  }
  REQUIRE(reduces.size() == buckets);
  REQUIRE(!gemms.empty());
  // Bucket 0 (the last layer) is queued while the earlier layers' gradient GEMMs are still to come.
  CHECK(reduces[0] < gemms.back());
  CHECK(reduces[1] < gemms.back());
  CHECK(dp.stats().launched_in_backward == static_cast<int64_t>(buckets));  // the count travelled with bucket 0
  // Each all-reduce waits for the compute stream's work (an event), and the compute stream waits for
  // each all-reduce before the optimizer: a cudaStreamWaitEvent on each side.
  const auto waits = std::count_if(trace.begin(), trace.end(), [&](const emu::TraceEntry& e) {
    return e.name == "cudaStreamWaitEvent";
  });
  CHECK(waits >= static_cast<std::ptrdiff_t>(2 * buckets));
  CHECK(acc.optimizer_steps() == 1);
}
