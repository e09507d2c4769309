/// @file tests/core/test_memory.cpp @brief Allocator stats around forward/backward: saved tensors freed per node, memory back to baseline + grads, peak independent of the number of micro-steps.
#include <catch2/catch.hpp>

#include "tests/harness/backends.h"

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
