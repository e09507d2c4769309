/// @file tests/distributed/test_nccl.cpp @brief The NCCL group as a world of one on a real GPU (ember_gpu_tests); reports itself skipped where the NCCL backend is not linked (ember_tests) or no GPU exists.
#include <catch2/catch.hpp>
#include <algorithm>

#include "distributed/data_parallel.h"
#include "tests/harness/backends.h"

using namespace ember;
using namespace ember::distributed;

namespace {
bool nccl_available() {
  const auto names = available_backends();
  return std::find(names.begin(), names.end(), "nccl") != names.end() && ember::test::has_cuda();
}
}  // namespace

TEST_CASE("NCCL world of one: collectives on CUDA tensors", "[distributed][nccl]") {
  if (!nccl_available()) {
    WARN("skipped: the NCCL backend is only linked into the real-GPU suite (ember_gpu_tests)");
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
  Tensor host = zeros(Shape{2});
  CHECK_THROWS_WITH(pg->all_reduce(host), Catch::Contains("tensors on cpu are not supported"));
}

TEST_CASE("NCCL world of one: DataParallel buckets on the GPU", "[distributed][nccl]") {
  if (!nccl_available()) {
    WARN("skipped: the NCCL backend is only linked into the real-GPU suite (ember_gpu_tests)");
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
