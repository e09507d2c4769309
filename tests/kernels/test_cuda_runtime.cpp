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

TEST_CASE("cuda allocator: requests round to 512 B and are cut from shared segments; stats follow", "[cuda][allocator]") {
  if (!test::cuda_or_warn()) return;
  Allocator& alloc = allocator_for(test::kCuda);
  alloc.empty_cache();
  const AllocatorStats before = alloc.stats();
  {
    Tensor small = empty({100}, test::kOnCuda);  // 400 B -> 512 B, from a new 2 MiB small segment
    AllocatorStats s = alloc.stats();
    CHECK(s.current_bytes - before.current_bytes == 512);
    CHECK(s.reserved_bytes - before.reserved_bytes == (2 << 20));
    CHECK(s.allocations - before.allocations == 1);
    Tensor next = empty({128}, test::kOnCuda);  // 512 B: the same segment, right after the first block
    CHECK(static_cast<char*>(next.data_ptr()) == static_cast<char*>(small.data_ptr()) + 512);
    CHECK(alloc.stats().reserved_bytes == s.reserved_bytes);
    Tensor large = empty({(1 << 20) / 4 + 1}, test::kOnCuda);  // 1 MiB + 4 B -> 1 MiB + 512 B, a 20 MiB segment
    s = alloc.stats();
    CHECK(s.current_bytes - before.current_bytes == 512 + 512 + (1 << 20) + 512);
    CHECK(s.reserved_bytes - before.reserved_bytes == (2 << 20) + (20 << 20));
    CHECK(s.peak_bytes >= s.current_bytes);
    CHECK(s.peak_reserved_bytes >= s.reserved_bytes);
    CHECK(s.cached_bytes == s.reserved_bytes - s.current_bytes);
  }
  const AllocatorStats after = alloc.stats();
  CHECK(after.current_bytes == before.current_bytes);             // every block returned ...
  CHECK(after.reserved_bytes - before.reserved_bytes == (22 << 20));  // ... into the cache
  alloc.reset_peak();
  CHECK(alloc.stats().peak_bytes == after.current_bytes);
  CHECK(alloc.stats().peak_reserved_bytes == after.reserved_bytes);
  alloc.empty_cache();  // both segments are whole again (coalesced): released
  CHECK(alloc.stats().reserved_bytes == before.reserved_bytes);
  CHECK(alloc.stats().cached_bytes == 0);
}

TEST_CASE("cuda allocator: a freed block is reused from the cache without a new cudaMalloc", "[cuda][allocator]") {
  if (!test::cuda_or_warn()) return;
  Allocator& alloc = allocator_for(test::kCuda);
  alloc.empty_cache();
  void* first = nullptr;
  {
    Tensor t = empty({1000}, test::kOnCuda);
    first = t.data_ptr();
  }
  const AllocatorStats cached = alloc.stats();
  REQUIRE(cached.current_bytes == 0);
  // 3996 B also rounds to 4096 B: the best fit is the block just returned (the cache was never released
  // to the device, so a fresh cudaMalloc could not have returned its address), reserved unchanged.
  Tensor again = empty({999}, test::kOnCuda);
  CHECK(again.data_ptr() == first);
  CHECK(alloc.stats().reserved_bytes == cached.reserved_bytes);
  CHECK(alloc.stats().allocations == cached.allocations + 1);
}

TEST_CASE("cuda allocator: freed neighbours coalesce, so any mix of sizes returns whole segments", "[cuda][allocator]") {
  if (!test::cuda_or_warn()) return;
  Allocator& alloc = allocator_for(test::kCuda);
  alloc.empty_cache();
  const int64_t base = alloc.stats().reserved_bytes;
  {
    std::vector<Tensor> held;
    for (int64_t n : {100, 3000, 50, 70000, 128, 9000, 1, 200000}) held.push_back(empty({n}, test::kOnCuda));
    Tensor a = empty({256}, test::kOnCuda), b = empty({256}, test::kOnCuda), c = empty({256}, test::kOnCuda);
    char* pa = static_cast<char*>(a.data_ptr());
    REQUIRE(static_cast<char*>(b.data_ptr()) == pa + 1024);
    a = Tensor();
    b = Tensor();  // a and b merge into one free 2 KiB block at a's address ...
    Tensor ab = empty({512}, test::kOnCuda);
    CHECK(static_cast<char*>(ab.data_ptr()) == pa);  // ... which a 2 KiB request fits exactly
    for (size_t i = 0; i < held.size(); i += 2) held[i] = Tensor();  // free every other block
  }
  alloc.empty_cache();  // everything returned: fully coalesced segments are released
  CHECK(alloc.stats().reserved_bytes == base);
}

TEST_CASE("cuda allocator: set_limit makes an over-limit request fail with requested / in-use / cached bytes",
          "[cuda][allocator]") {
  if (!test::cuda_or_warn()) return;
  Allocator& alloc = allocator_for(test::kCuda);
  LimitGuard guard;
  alloc.empty_cache();
  { Tensor cached = empty({(4 << 20) / 4}, test::kOnCuda); }  // leaves a 20 MiB segment in the cache
  Tensor held = empty({1024}, test::kOnCuda);                    // 4 KiB in use, in a 2 MiB segment
  const int64_t in_use = alloc.stats().current_bytes;
  alloc.set_limit((2 << 20) + (20 << 20) + (2 << 20));  // room for one more small segment only
  // A 21 MiB request does not fit the cached 20 MiB block and needs a 22 MiB segment: it fits only once
  // the allocator has released its cache.
  {
    Tensor fits = empty({(21 << 20) / 4}, test::kOnCuda);
    CHECK(alloc.stats().reserved_bytes == (2 << 20) + (22 << 20));
  }
  try {
    Tensor too_big = empty({(23 << 20) / 4}, test::kOnCuda);  // 23 MiB: a 24 MiB segment, over the limit
    FAIL("expected an out-of-memory error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Contains("out of memory"));
    CHECK_THAT(msg, Contains("requested 24117248 bytes"));
    CHECK_THAT(msg, Contains(std::to_string(in_use) + " bytes in use"));
    CHECK_THAT(msg, Contains(" bytes cached"));
  }
  alloc.set_limit(0);
  Tensor ok = empty({1 << 20}, test::kOnCuda);  // and memory is usable again without the limit
  CHECK(ok.numel() == 1 << 20);
}

TEST_CASE("cuda transfers: host -> device -> host round trip keeps every value; device_count is 1", "[cuda][transfer]") {
  if (!test::cuda_or_warn()) return;
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
