/// @file tests/kernels/test_cuda_runtime.cpp @brief The CUDA runtime layer: caching allocator (stats, reuse, simulated OOM), transfers, device count.
#include <catch2/catch.hpp>

#include "core/allocator.h"
#include "kernels/transfer.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;
using Catch::Matchers::Contains;

namespace {
/// Restores the CUDA allocator's limit when a test ends (also on failure).
struct LimitGuard {
  ~LimitGuard() { allocator_for(test::kCuda).set_limit(0); }
};
}  // namespace

TEST_CASE("cuda allocator: stats follow allocations; size classes round to 512 B and 2 MiB", "[cuda][allocator]") {
  if (!test::has_cuda()) {
    SUCCEED("no CUDA device");
    return;
  }
  Allocator& alloc = allocator_for(test::kCuda);
  alloc.empty_cache();
  const AllocatorStats before = alloc.stats();
  {
    Tensor small = empty({100}, test::kOnCuda);  // 400 B -> one 512 B block
    AllocatorStats s = alloc.stats();
    CHECK(s.current_bytes - before.current_bytes == 512);
    CHECK(s.allocations - before.allocations == 1);
    Tensor large = empty({(1 << 20) / 4 + 1}, test::kOnCuda);  // 1 MiB + 4 B -> one 2 MiB block
    s = alloc.stats();
    CHECK(s.current_bytes - before.current_bytes == 512 + (2 << 20));
    CHECK(s.peak_bytes >= s.current_bytes);
    CHECK(s.allocations - before.allocations == 2);
  }
  const AllocatorStats after = alloc.stats();
  CHECK(after.current_bytes == before.current_bytes);             // both blocks returned ...
  CHECK(after.cached_bytes - before.cached_bytes == 512 + (2 << 20));  // ... into the cache
  alloc.reset_peak();
  CHECK(alloc.stats().peak_bytes == after.current_bytes);
  alloc.empty_cache();
  CHECK(alloc.stats().cached_bytes == 0);
}

TEST_CASE("cuda allocator: a freed block is reused from the cache without a new cudaMalloc", "[cuda][allocator]") {
  if (!test::has_cuda()) {
    SUCCEED("no CUDA device");
    return;
  }
  Allocator& alloc = allocator_for(test::kCuda);
  alloc.empty_cache();
  void* first = nullptr;
  {
    Tensor t = empty({1000}, test::kOnCuda);
    first = t.data_ptr();
  }
  const AllocatorStats cached = alloc.stats();
  REQUIRE(cached.cached_bytes == 4096);
  // Same size class (3996 B also rounds to 4096 B): served from the free list. The cached block was never
  // released to the device, so a fresh cudaMalloc could not have returned its address: getting the very
  // same pointer back (and the cache emptied, in-use bytes unchanged) shows no device allocation happened.
  Tensor again = empty({999}, test::kOnCuda);
  CHECK(again.data_ptr() == first);
  CHECK(alloc.stats().cached_bytes == 0);
  CHECK(alloc.stats().allocations == cached.allocations + 1);
}

TEST_CASE("cuda allocator: set_limit makes an over-limit request fail with requested / in-use / cached bytes",
          "[cuda][allocator]") {
  if (!test::has_cuda()) {
    SUCCEED("no CUDA device");
    return;
  }
  Allocator& alloc = allocator_for(test::kCuda);
  LimitGuard guard;
  alloc.empty_cache();
  { Tensor cached = empty({2048}, test::kOnCuda); }  // leaves 8 KiB in the cache
  Tensor held = empty({1024}, test::kOnCuda);     // 4 KiB in use
  const int64_t in_use = alloc.stats().current_bytes;
  alloc.set_limit(in_use + (64 << 10));
  // Fits only once the cache is released: the allocator must empty the cache and retry.
  {
    Tensor fits = empty({(64 << 10) / 4 - 1024}, test::kOnCuda);
    CHECK(alloc.stats().cached_bytes == 0);
  }
  try {
    Tensor too_big = empty({1 << 20}, test::kOnCuda);  // 4 MiB
    FAIL("expected an out-of-memory error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Contains("out of memory"));
    CHECK_THAT(msg, Contains("requested 4194304 bytes"));
    CHECK_THAT(msg, Contains(std::to_string(in_use) + " bytes in use"));
    CHECK_THAT(msg, Contains(" bytes cached"));
  }
  alloc.set_limit(0);
  Tensor ok = empty({1 << 20}, test::kOnCuda);  // and memory is usable again without the limit
  CHECK(ok.numel() == 1 << 20);
}

TEST_CASE("cuda transfers: host -> device -> host round trip keeps every value; device_count is 1", "[cuda][transfer]") {
  if (!test::has_cuda()) {
    SUCCEED("no CUDA device");
    return;
  }
  CHECK(kernels::device_count(DeviceType::CUDA) >= 1);
  for (int64_t n : {int64_t{1}, int64_t{33}, int64_t{100003}}) {
    const Tensor host = test::random_input({n}, 7);
    const Tensor dev = host.to(test::kCuda);
    CHECK(dev.device() == test::kCuda);
    CHECK(host.to_vector<float>() == dev.to_vector<float>());
  }
  const Tensor ids = from_vector(std::vector<int64_t>{-3, 0, 1LL << 40}, {3}, TensorOptions{DType::i64, test::kCuda});
  CHECK(ids.to_vector<int64_t>() == std::vector<int64_t>{-3, 0, 1LL << 40});
  kernels::synchronize(test::kCuda);
}
