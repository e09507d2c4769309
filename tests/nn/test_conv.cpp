/// @file tests/nn/test_conv.cpp @brief functional::conv2d and the im2col/col2im kernels: direct-convolution reference, finite differences, fused weight-gradient accumulation, CUDA vs CPU, errors.
#include <catch2/catch.hpp>
#include <omp.h>

#include "ops/autograd/node.h"
#include "kernels/conv.h"
#include "nn/functional.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/nn/conv_reference.h"

using namespace ember;
using ember::test::random_input;
using ember::test::nnconv::check_close;
using ember::test::nnconv::kF64;
using ember::test::nnconv::naive_conv2d;
using Catch::Matchers::Contains;

namespace {

struct ConvCase {
  Shape x, w;
  int64_t stride, pad;
  bool bias;
};

const std::vector<ConvCase> kCases{
    {{3, 2, 7, 6}, {4, 2, 3, 3}, 1, 0, true},   // batch > 1, odd sizes
    {{2, 3, 7, 7}, {5, 3, 3, 3}, 2, 1, true},   // stride 2, padding 1
    {{2, 3, 5, 6}, {2, 3, 1, 1}, 1, 0, false},  // 1x1 kernel, no bias
    {{1, 2, 6, 5}, {3, 2, 2, 3}, 2, 1, true},   // non-square kernel
};

std::string name_of(const ConvCase& c) {
  return "x " + shape_str(c.x) + " w " + shape_str(c.w) + " stride " + std::to_string(c.stride) + " pad " +
         std::to_string(c.pad) + (c.bias ? " bias" : " no bias");
}

}  // namespace

TEST_CASE("conv2d forward equals a direct convolution (f64 and f32 on every device)", "[nn][conv][cuda]") {
  for (const ConvCase& c : kCases) {
    INFO(name_of(c));
    const Tensor x = random_input(c.x, 1, -1.0, 1.0, kF64), w = random_input(c.w, 2, -1.0, 1.0, kF64);
    const Tensor b = c.bias ? random_input({c.w[0]}, 3, -1.0, 1.0, kF64) : Tensor();
    const Tensor ref = naive_conv2d(x, w, b, c.stride, c.pad);
    // f64: the GEMM and the direct loops sum the same K products in different orders (~K ulps).
    check_close(nn::functional::conv2d(x, w, b, c.stride, c.pad), ref, 1e-12, 1e-12);
    const int64_t k = c.w[1] * c.w[2] * c.w[3] + 1;
    for (Device d : test::devices()) {
      INFO("device " << d);
      const TensorOptions f32{DType::f32, d};
      const Tensor y = nn::functional::conv2d(x.to(f32.dtype).to(d), w.to(DType::f32).to(d),
                                              c.bias ? b.to(DType::f32).to(d) : Tensor(), c.stride, c.pad);
      check_close(y, ref, test::sum_tolerance(k));  // f32 sums of K + 1 O(1) products
    }
  }
}

TEST_CASE("conv2d gradients for input, weight and bias match finite differences (f64)", "[nn][conv]") {
  for (const ConvCase& c : kCases) {
    INFO(name_of(c));
    const Tensor x = random_input(c.x, 4, -1.0, 1.0, kF64), w = random_input(c.w, 5, -1.0, 1.0, kF64);
    const Tensor b = random_input({c.w[0]}, 6, -1.0, 1.0, kF64);
    const Shape ys = naive_conv2d(x, w, Tensor(), c.stride, c.pad).shape();
    const Tensor r = random_input(ys, 7, -1.0, 1.0, kF64);  // a generic upstream gradient
    const double err = test::gradcheck(
        [&](const std::vector<Tensor>& in) {
          return sum(nn::functional::conv2d(in[0], in[1], c.bias ? in[2] : Tensor(), c.stride, c.pad) * r);
        },
        c.bias ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w});
    CHECK(err < 1e-7);  // central differences, eps 1e-6, of a bilinear function: rounding only (~1e-9)
  }
}

TEST_CASE("conv2d accumulates the weight and bias gradients into .grad in place (beta = 1) on every device",
          "[nn][conv][cuda]") {
  for (Device d : test::devices()) {
    INFO("device " << d);  // CPU: per-image GEMMs, group partials; CUDA: cuDNN's filter and bias with beta = 1
    const TensorOptions rg = TensorOptions{}.set_device(d).set_requires_grad(true);
    Tensor w = random_input({4, 3, 3, 3}, 8, -0.5, 0.5, rg), b = random_input({4}, 9, -0.5, 0.5, rg);
    // The reference goes through a non-leaf view of the weights (w * 1, b * 1), so nothing can write
    // into .grad and the engine's AccumulateGrad adds a fresh gradient per micro-batch: the unfused path.
    Tensor wr = w.detach().clone().set_requires_grad(true), br = b.detach().clone().set_requires_grad(true);
    int hook_calls = 0;
    add_post_accumulate_grad_hook(w, [&](const Tensor&) { ++hook_calls; });
    const void* grad_storage = nullptr;
    const int64_t micro = 3;
    for (int64_t m = 0; m < micro; ++m) {
      const Tensor x = random_input({2, 3, 6, 5}, 10 + static_cast<uint64_t>(m), -1.0, 1.0, rg);
      const Tensor xr = x.detach().clone().set_requires_grad(true);
      const Tensor r = random_input({2, 4, 3, 3}, 20 + static_cast<uint64_t>(m), -1.0, 1.0, TensorOptions{}.set_device(d));
      sum(nn::functional::conv2d(x, w, b, 2, 1) * r).backward();
      sum(nn::functional::conv2d(xr, wr * 1.0, br * 1.0, 2, 1) * r).backward();
      REQUIRE(w.grad().defined());
      REQUIRE(b.grad().defined());
      if (m == 0) grad_storage = w.grad().data_ptr();
      CHECK(w.grad().data_ptr() == grad_storage);  // allocated once, then written in place
      // The fused and unfused sums differ only in rounding order: f32 sums of <= 3 * 2 * 9 products.
      check_close(w.grad(), wr.grad(), test::sum_tolerance(3 * 2 * 9));
      check_close(b.grad(), br.grad(), test::sum_tolerance(3 * 2 * 9));
      check_close(x.grad(), xr.grad(), 0.0, 0.0);  // the input gradient takes the same path in both
    }
    CHECK(hook_calls == micro);  // post-accumulate hooks (DataParallel) see every fused write
  }
}

TEST_CASE("CPU conv2d: 21 images in 16 weight-gradient groups equal direct loops, with the same bits at 1 and 2 threads",
          "[nn][conv]") {
  // 21 x 27 x 256 column entries: above the threshold at which the images are spread over the threads.
  const Tensor x = random_input({21, 3, 16, 16}, 60, -1.0, 1.0), w = random_input({5, 3, 3, 3}, 61, -1.0, 1.0);
  const Tensor b = random_input({5}, 62, -1.0, 1.0), r = random_input({21, 5, 16, 16}, 63, -1.0, 1.0);
  const auto ref = ember::test::nnconv::naive_conv2d_backward(x, w, r, 1, 1);
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor xg = x.clone().set_requires_grad(true), wg = w.clone().set_requires_grad(true),
           bg = b.clone().set_requires_grad(true);
    const Tensor y = nn::functional::conv2d(xg, wg, bg, 1, 1);
    sum(y * r).backward();
    omp_set_num_threads(saved);
    return std::vector<Tensor>{y, xg.grad(), wg.grad(), bg.grad()};
  };
  const auto one = run(1), two = run(2);
  check_close(one[0], naive_conv2d(x, w, b, 1, 1), test::sum_tolerance(3 * 9 + 1));
  check_close(one[1], ref[0], test::sum_tolerance(5 * 9));     // dx: <= Cout * kh * kw products
  check_close(one[2], ref[1], test::sum_tolerance(21 * 256));  // dw: images x positions
  check_close(one[3], ref[2], test::sum_tolerance(21 * 256));  // db: the same count
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("output " << i << " (y, dx, dw, db)");
    CHECK(one[i].to_vector<float>() == two[i].to_vector<float>());  // images and groups do not depend on threads
  }
}

TEST_CASE("conv2d returns ordinary gradients when the weight is not a leaf", "[nn][conv]") {
  const Tensor x = random_input({2, 2, 5, 5}, 30, -1.0, 1.0, kF64);
  const Tensor w = random_input({3, 2, 3, 3}, 31, -1.0, 1.0, kF64);
  const Tensor r = random_input({2, 3, 5, 5}, 32, -1.0, 1.0, kF64);
  const double err = test::gradcheck(
      [&](const std::vector<Tensor>& in) { return sum(nn::functional::conv2d(in[0], in[1] * 2.0, Tensor(), 1, 1) * r); },
      {x, w});
  CHECK(err < 1e-7);
}

TEST_CASE("im2col and col2im are adjoint (f64) and equal on CUDA and CPU bitwise", "[nn][conv][cuda]") {
  for (const ConvCase& c : kCases) {
    INFO(name_of(c));
    const kernels::Conv2dGeometry g =
        kernels::conv2d_geometry(c.x, c.w[2], c.w[3], c.stride, c.stride, c.pad, c.pad);
    const Shape cs{g.batch, g.col_rows(), g.col_cols()};
    const Tensor x = random_input(c.x, 40, -1.0, 1.0, kF64), cv = random_input(cs, 41, -1.0, 1.0, kF64);
    Tensor col = empty(cs, kF64), back = empty(c.x, kF64);
    kernels::im2col(x, col, g);
    kernels::col2im(cv, back, g);
    // <im2col(x), c> == <x, col2im(c)>: both are the same sum of products, reordered.
    CHECK(sum(col * cv).item() == Approx(sum(x * back).item()).epsilon(1e-12));
    if (!test::has_cuda()) continue;
    const Tensor xf = x.to(DType::f32), cf = cv.to(DType::f32);
    Tensor col_cpu = empty(cs), col_gpu = empty(cs, test::kOnCuda);
    kernels::im2col(xf, col_cpu, g);
    kernels::im2col(xf.to(test::kCuda), col_gpu, g);
    CHECK(test::max_ulp(col_gpu, col_cpu) == 0);  // copies and zeros only
    Tensor im_cpu = empty(c.x), im_gpu = empty(c.x, test::kOnCuda);
    kernels::col2im(cf, im_cpu, g);
    kernels::col2im(cf.to(test::kCuda), im_gpu, g);
    CHECK(test::max_ulp(im_gpu, im_cpu) == 0);  // the same additions in the same (ki, kj) order
  }
}

TEST_CASE("conv2d forward and backward on CUDA match the CPU backend", "[nn][conv][cuda]") {
  if (!test::cuda_or_warn()) return;
  const TensorOptions rg = TensorOptions{}.set_requires_grad(true);
  for (const ConvCase& c : kCases) {
    INFO(name_of(c));
    Tensor x = random_input(c.x, 50, -1.0, 1.0, rg), w = random_input(c.w, 51, -1.0, 1.0, rg);
    Tensor b = random_input({c.w[0]}, 52, -1.0, 1.0, rg);
    Tensor xg = x.detach().to(test::kCuda).set_requires_grad(true), wg = w.detach().to(test::kCuda).set_requires_grad(true);
    Tensor bg = b.detach().to(test::kCuda).set_requires_grad(true);
    const Tensor y = nn::functional::conv2d(x, w, c.bias ? b : Tensor(), c.stride, c.pad);
    const Tensor yg = nn::functional::conv2d(xg, wg, c.bias ? bg : Tensor(), c.stride, c.pad);
    const Tensor r = random_input(y.shape(), 53);
    const int64_t k = c.w[1] * c.w[2] * c.w[3];
    check_close(yg, y, test::sum_tolerance(k + 1));
    sum(y * r).backward();
    sum(yg * r.to(test::kCuda)).backward();
    const int64_t per_weight = y.size(0) * y.size(2) * y.size(3);  // dW sums over images and positions
    check_close(xg.grad(), x.grad(), test::sum_tolerance(c.w[0] * c.w[2] * c.w[3]));
    check_close(wg.grad(), w.grad(), test::sum_tolerance(per_weight));
    if (c.bias) check_close(bg.grad(), b.grad(), test::sum_tolerance(per_weight));
  }
}

TEST_CASE("conv2d rejects bad shapes, naming them", "[nn][conv]") {
  const Tensor x = zeros({2, 3, 5, 5}), w = zeros({4, 3, 3, 3});
  CHECK_THROWS_WITH(nn::functional::conv2d(x, zeros({4, 2, 3, 3})), Contains("3 channels") && Contains("expects 2"));
  CHECK_THROWS_WITH(nn::functional::conv2d(zeros({3, 5, 5}), w), Contains("[N, C, H, W]") && Contains("[3, 5, 5]"));
  CHECK_THROWS_WITH(nn::functional::conv2d(x, w, zeros({3})), Contains("bias must be [4]"));
  CHECK_THROWS_WITH(nn::functional::conv2d(x, zeros({4, 3, 7, 7})), Contains("larger than the padded input 5x5"));
  CHECK_THROWS_WITH(nn::functional::conv2d(x, w, Tensor(), 0), Contains("stride must be >= 1"));
  CHECK_THROWS_WITH(nn::functional::conv2d(x, w, Tensor(), 1, -1), Contains("padding must be >= 0"));
  CHECK_THROWS_WITH(nn::functional::conv2d(x, zeros({4, 3, 3, 3}, kF64)), Contains("f64"));
}
