/// @file tests/core/test_memory.cpp @brief Allocator stats around forward/backward: saved tensors freed per node, memory back to baseline + grads, peak independent of the number of micro-steps; the CPU allocator's cache of same-size blocks.
#include <catch2/catch.hpp>

#include "tests/harness/backends.h"

#if defined(__SANITIZE_ADDRESS__)
#define EMBER_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_TEST_ASAN 1
#endif
#endif
#ifdef EMBER_TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

using namespace ember;

namespace {

/// Bytes the CPU allocator charges for a tensor: nbytes rounded up to its 64-byte granule.
int64_t charged(const Tensor& t) { return static_cast<int64_t>((t.nbytes() + 63) / 64 * 64); }

struct Mlp {
  Tensor w1, b1, w2, b2;
  explicit Mlp(Device d) {
    Generator g(11);
    const TensorOptions o = TensorOptions{}.set_device(d);
    w1 = randn({16, 32}, o, &g).set_requires_grad(true);
    b1 = randn({32}, o, &g).set_requires_grad(true);
    w2 = randn({32, 8}, o, &g).set_requires_grad(true);
    b2 = randn({8}, o, &g).set_requires_grad(true);
  }
  std::vector<Tensor> params() const { return {w1, b1, w2, b2}; }
  Tensor loss(const Tensor& x) const { return mean(relu(matmul(relu(matmul(x, w1) + b1), w2) + b2)); }
};

int64_t current(Device d = Device::cpu()) { return allocator_stats(d).current_bytes; }

}  // namespace

TEST_CASE("backward frees saved tensors: memory returns to baseline plus the gradients", "[core][memory]") {
  const Mlp m(Device::cpu());
  const Tensor x = randn({4, 16});
  const int64_t baseline = current();

  SECTION("forward only: the graph holds activations until the output is dropped") {
    {
      Tensor loss = m.loss(x);
      CHECK(current() > baseline + charged(loss));  // saved activations are alive
    }
    CHECK(current() == baseline);  // dropping the output freed the whole graph
  }
  SECTION("forward + backward: activations freed by backward itself, .grad allocated once") {
    int64_t grads = 0;
    for (const Tensor& p : m.params()) grads += charged(p);
    {
      Tensor loss = m.loss(x);
      loss.backward();
      // The output is still held here, so only backward can have released the saved tensors.
      CHECK(current() == baseline + grads + charged(loss));
    }
    CHECK(current() == baseline + grads);
    for (const Tensor& p : m.params()) REQUIRE(p.grad().defined());
  }
  SECTION("retain_graph keeps the saved tensors until the output is dropped") {
    int64_t grads = 0;
    for (const Tensor& p : m.params()) grads += charged(p);
    {
      Tensor loss = m.loss(x);
      loss.backward(Tensor(), /*retain_graph=*/true);
      CHECK(current() > baseline + grads + charged(loss));
    }
    CHECK(current() == baseline + grads);
  }
}

TEST_CASE("peak memory does not grow with the number of accumulated micro-steps", "[core][memory]") {
  const Mlp m(Device::cpu());
  const Tensor x = randn({4, 16});
  auto step = [&] { m.loss(x).backward(); };
  step();  // allocates the .grad buffers once
  const int64_t base = current();
  reset_peak_stats();
  step();
  const int64_t peak_one = allocator_stats().peak_bytes;
  CHECK(current() == base);
  reset_peak_stats();
  for (int i = 0; i < 8; ++i) step();
  CHECK(allocator_stats().peak_bytes == peak_one);
  CHECK(current() == base);
}

TEST_CASE("the CPU allocator hands a freed large block out again to the same size, within its ceiling",
          "[core][memory]") {
  Allocator& alloc = allocator_for(Device::cpu());
  alloc.empty_cache();
  const AllocatorStats s0 = alloc.stats();
  CHECK(s0.cached_bytes == 0);
  CHECK(s0.reserved_bytes == s0.current_bytes);
  constexpr size_t kMiB = size_t{1} << 20;

  void* p = alloc.allocate(kMiB - 5);  // rounded to 64 bytes: 1 MiB
  alloc.deallocate(p, kMiB - 5);
  CHECK(alloc.stats().cached_bytes == static_cast<int64_t>(kMiB));
  CHECK(alloc.stats().reserved_bytes == s0.reserved_bytes + static_cast<int64_t>(kMiB));
  CHECK(alloc.stats().current_bytes == s0.current_bytes);
  void* q = alloc.allocate(kMiB);  // the same rounded size: the same block, no system call
  CHECK(q == p);
  CHECK(alloc.stats().cached_bytes == 0);
  CHECK(alloc.stats().allocations == s0.allocations + 2);
  void* other = alloc.allocate(kMiB + 64);  // another size is not served from the cache
  CHECK(other != q);
  alloc.deallocate(other, kMiB + 64);
  alloc.deallocate(q, kMiB);
  CHECK(alloc.stats().cached_bytes == static_cast<int64_t>(2 * kMiB + 64));

  void* small = alloc.allocate(1000);  // under 64 KiB: straight back to the C library
  alloc.deallocate(small, 1000);
  CHECK(alloc.stats().cached_bytes == static_cast<int64_t>(2 * kMiB + 64));

  // Reserved bytes stay within max(256 MiB, the most ever in use): a cached 768 MiB block is released
  // when a request of another size would otherwise hold both (its pages are never touched).
  const size_t big = 768 * kMiB;
  void* a = alloc.allocate(big);
  alloc.deallocate(a, big);
  CHECK(alloc.stats().cached_bytes >= static_cast<int64_t>(big));
  void* b = alloc.allocate(big + 64);
  CHECK(alloc.stats().cached_bytes < static_cast<int64_t>(big));
  CHECK(alloc.stats().reserved_bytes <= alloc.stats().current_bytes + static_cast<int64_t>(2 * kMiB + 64));
  alloc.deallocate(b, big + 64);
#ifdef EMBER_TEST_ASAN
  void* c = alloc.allocate(kMiB);
  alloc.deallocate(c, kMiB);
  CHECK(__asan_address_is_poisoned(c));  // a use after free of a cached block is still reported
#endif
  alloc.empty_cache();
  CHECK(alloc.stats().cached_bytes == 0);
  CHECK(alloc.stats().reserved_bytes == s0.reserved_bytes);
}

TEST_CASE("a training loop's steady state takes no new memory from the system", "[core][memory]") {
  const Tensor x = randn({64, 256}), w1 = randn({256, 512}).set_requires_grad(true),
               w2 = randn({512, 10}).set_requires_grad(true);
  auto step = [&] { mean(relu(matmul(relu(matmul(x, w1)), w2))).backward(); };  // 128 KiB activations
  step();  // creates the .grad buffers from the first gradients
  step();  // the first accumulation into them: its gradient temporaries enter the cache
  const AllocatorStats warm = allocator_stats();
  for (int i = 0; i < 4; ++i) step();
  const AllocatorStats after = allocator_stats();
  CHECK(after.cached_bytes >= 64 * 512 * 4);  // the activations went back to the cache ...
  CHECK(after.reserved_bytes == warm.reserved_bytes);  // ... and every block since came from it
  CHECK(after.allocations > warm.allocations);
}

TEST_CASE("matmul passes transposed views to BLAS without copying them", "[core][memory]") {
  const Tensor a = randn({5, 3}), b = randn({4, 5});
  const int64_t before = allocator_stats().allocations;
  Tensor c = matmul(a.t(), b.t());  // [3,5] @ [5,4], both as transpose flags
  CHECK(allocator_stats().allocations == before + 1);  // the output only
  const Tensor ref = matmul(a.t().contiguous(), b.t().contiguous());
  std::string why;
  CHECK(test::allclose(c, ref, 1e-6, 1e-6, &why));
}

TEST_CASE("backward on CUDA returns the device allocator to baseline plus the gradients", "[core][memory][cuda]") {
  if (!test::has_cuda()) {
    WARN("no CUDA device: CUDA memory accounting not run");
    return;
  }
  const Device dev = Device::cuda(0);
  const Mlp m(dev);
  const Tensor x = randn({4, 16}, TensorOptions{}.set_device(dev));
  // What the CUDA allocator charges for the four .grad buffers, whatever its rounding.
  int64_t grads = 0;
  {
    const int64_t before = current(dev);
    std::vector<Tensor> probe;
    for (const Tensor& p : m.params()) probe.push_back(zeros(p.shape(), TensorOptions{}.set_device(dev)));
    grads = current(dev) - before;
  }
  const int64_t baseline = current(dev);
  m.loss(x).backward();
  CHECK(current(dev) == baseline + grads);
  reset_peak_stats(dev);
  m.loss(x).backward();
  const int64_t peak_one = allocator_stats(dev).peak_bytes;
  reset_peak_stats(dev);
  for (int i = 0; i < 4; ++i) m.loss(x).backward();
  CHECK(allocator_stats(dev).peak_bytes == peak_one);
  CHECK(current(dev) == baseline + grads);
}
