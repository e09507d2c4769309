/// @file tests/kernels/test_cuda_elementwise.cpp @brief CUDA elementwise kernels (fill, copy, unary, unary backward, binary) against the CPU backend.
//
// Tolerances: arithmetic (+ - * /, neg, relu, scalar ops, copy, fill) must equal the CPU bitwise: both
// backends round each operation once in f32 (a product feeding a sum goes through M::mul_rn in
// kernels/op_traits.h, so the CUDA side's FMA contraction does not change it). Transcendental ops are
// bitwise equal in the emulator (same libm), so every op of kernels::UnaryOpList is checked at 0 ulp
// there, except those whose contiguous CPU loop calls glibc's vector erff/expf (libmvec, <= 4 ulp;
// kernels/cpu/elementwise.cpp) where the emulated kernel calls the scalar libm: they get the GPU's
// bounds. On a GPU they may differ by CUDA's documented maximum error (expf 2 ulp, logf 1, tanhf 2,
// powf 4; sigmoid = expf then an add and a divide: 3) plus 1 ulp for glibc's own error on the CPU side;
// see allowed_ulp for the activations.
#include <catch2/catch.hpp>

#include "kernels/elementwise.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;
using Catch::Matchers::Contains;
using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {

namespace op = kernels::op;
using kernels::unary_op_v;

/// Largest ulp distance accepted on a GPU (0 in the emulator) for op's forward and backward.
struct GpuUlp {
  int64_t forward, backward;
};
GpuUlp allowed_ulp(UnaryOp op) {
  const std::string name = kernels::unary_op_name(op);
  const bool vector_math = name == "exp" || name == "sigmoid" || name == "silu" || name == "softplus" ||
                           name == "gelu";  // their forward or backward calls erf or exp
  if (test::cuda_emulated() && !vector_math) return {0, 0};
  // Backwards that read only y (exp, sigmoid, tanh) or x in arithmetic are exact; pow's calls powf.
  if (name == "neg" || name == "relu" || name == "mul_scalar" || name == "add_scalar") return {0, 0};
  if (name == "log") return {2, 0};
  if (name == "exp" || name == "tanh") return {3, 0};
  if (name == "sigmoid") return {4, 0};
  if (name == "pow") return {5, 5};
  // expf/log1pf (2 ulp each) then +, /, *; silu's gradient sig (1 + x (1 - sig)) also cancels in 1 - sig
  // for x > 0 (a 2-ulp sig at x = 3 is ~40 ulp of 1 - sig = 0.047): measured 46 ulp against libmvec's expf.
  if (name == "softplus") return {8, 8};
  if (name == "silu") return {8, 64};
  // gelu (both forms) and ops without a measured bound: 1 + erf(x/sqrt2) (or 1 + tanh) cancels for
  // x < 0, so erff's 2 ulp at |erf| ~ 1 (1.2e-7 absolute) is up to 1.2e-7 / erfc(3/sqrt2) = 4.4e-5
  // relative at x = -3, about 400 ulp; the f64 op harness bounds their absolute error on a GPU.
  return {512, 512};
}

/// Every op of kernels::UnaryOpList / BinaryOpList, so a new op is compared on CUDA without an edit here.
std::vector<UnaryOp> all_unary_ops() {
  std::vector<UnaryOp> ops;
  kernels::for_each_op(kernels::UnaryOpList{}, [&](auto tag) { ops.push_back(unary_op_v<typename decltype(tag)::type>); });
  return ops;
}
std::vector<BinaryOp> all_binary_ops() {
  std::vector<BinaryOp> ops;
  kernels::for_each_op(kernels::BinaryOpList{},
                       [&](auto tag) { ops.push_back(kernels::binary_op_v<typename decltype(tag)::type>); });
  return ops;
}

Tensor unary_on(UnaryOp op, const Tensor& x, double s) {
  Tensor out = empty(x.shape(), TensorOptions{x.dtype(), x.device()});
  kernels::unary(op, x, out, s);
  return out;
}

Tensor binary_on(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = empty(broadcast_shapes(a.shape(), b.shape(), "test"), TensorOptions{a.dtype(), a.device()});
  kernels::binary(op, a, b, out);
  return out;
}

const std::vector<UnaryOp> kUnaryOps = all_unary_ops();
const std::vector<BinaryOp> kBinaryOps = all_binary_ops();

}  // namespace

TEST_CASE("cuda fill: f32 and i64 values land in every element", "[cuda][elementwise]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    for (int64_t n : test::kElementwiseSizes) {
      Tensor f = full({n}, -2.5, test::kOnCuda);
      const auto v = f.to_vector<float>();
      CHECK(std::all_of(v.begin(), v.end(), [](float x) { return x == -2.5f; }));
    }
    Tensor i = full({33}, 7.0, TensorOptions{DType::i64, test::kCuda});
    const auto vi = i.to_vector<int64_t>();
    CHECK(std::all_of(vi.begin(), vi.end(), [](int64_t x) { return x == 7; }));
  }
}

TEST_CASE("cuda copy: strided sources and destinations, i64 <-> f32 conversion", "[cuda][elementwise]") {
  if (!test::cuda_or_warn()) return;
  // Every section once per grid cap (the strided copies are 1023 elements: 2 steps per thread under cap 2).
  const test::GridCap grid(GENERATE(from_range(std::begin(test::kGridCaps), std::end(test::kGridCaps))));
  INFO(grid.str());
  for (int64_t n : test::kElementwiseSizes) {  // contiguous
    const Tensor x = test::random_input({n}, 11);
    Tensor d = empty({n}, test::kOnCuda);
    kernels::copy(x.to(test::kCuda), d);
    CHECK(d.to_vector<float>() == x.to_vector<float>());
  }
  const Tensor x = test::random_input({33, 31}, 12);
  const Tensor xd = x.to(test::kCuda);
  SECTION("transposed source") { CHECK(xd.t().contiguous().to_vector<float>() == x.t().contiguous().to_vector<float>()); }
  SECTION("sliced source with step") {
    CHECK(xd.slice(0, 1, 33, 2).slice(1, 3, 30, 3).contiguous().to_vector<float>() ==
          x.slice(0, 1, 33, 2).slice(1, 3, 30, 3).contiguous().to_vector<float>());
  }
  SECTION("expanded source (stride 0)") {
    const Tensor row = test::random_input({1, 31}, 13);
    CHECK(row.to(test::kCuda).expand({33, 31}).contiguous().to_vector<float>() ==
          row.expand({33, 31}).contiguous().to_vector<float>());
  }
  SECTION("strided destination") {
    Tensor dst = zeros({31, 33}, test::kOnCuda);
    Tensor view = dst.t();  // [33, 31] with strides (1, 33)
    kernels::copy(xd, view);
    CHECK(dst.to_vector<float>() == x.t().contiguous().to_vector<float>());
  }
  SECTION("i64 -> f32 -> i64") {
    const Tensor ids = from_vector(std::vector<int64_t>{-5, 0, 3, 1 << 20, 42}, {5}, TensorOptions{DType::i64, test::kCuda});
    Tensor f = empty({5}, test::kOnCuda);
    kernels::copy(ids, f);
    CHECK(f.to_vector<float>() == std::vector<float>{-5.f, 0.f, 3.f, 1048576.f, 42.f});
    const Tensor fx = from_vector(std::vector<float>{-2.75f, 0.5f, 9.99f}, {3}, test::kOnCuda);
    Tensor back = empty({3}, TensorOptions{DType::i64, test::kCuda});
    kernels::copy(fx, back);
    CHECK(back.to_vector<int64_t>() == std::vector<int64_t>{-2, 0, 9});  // truncation, as on the CPU
  }
}

TEST_CASE("cuda f64 is an error naming the dtype", "[cuda][elementwise]") {
  if (!test::cuda_or_warn()) return;
  CHECK_THROWS_WITH(zeros({4}, TensorOptions{DType::f64, test::kCuda}), Contains("f64"));
  Tensor src = empty({4}, TensorOptions{DType::f64, test::kCuda});  // allocation itself is dtype-agnostic
  Tensor dst = empty({4}, test::kOnCuda);
  CHECK_THROWS_WITH(kernels::copy(src, dst), Contains("f64"));
  CHECK_THROWS_WITH(unary_on(unary_op_v<op::Exp>, src, 0.0), Contains("f64"));
}

TEST_CASE("cuda unary ops match the CPU (contiguous and strided inputs)", "[cuda][elementwise]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    for (UnaryOp op : kUnaryOps) {
      const bool positive = op == unary_op_v<op::Log> || op == unary_op_v<op::Pow>;  // keep log/pow real-valued
      const double s = op == unary_op_v<op::Pow> ? 2.5 : -1.75;
      INFO("op " << kernels::unary_op_name(op));
      for (int64_t n : {int64_t{1}, int64_t{31}, int64_t{33}}) {
        const Tensor x = test::random_input({n}, 20 + static_cast<uint64_t>(n), positive ? 0.1 : -3.0, 3.0);
        std::string where;
        const int64_t ulp = test::max_ulp(unary_on(op, x.to(test::kCuda), s), unary_on(op, x, s), &where);
        INFO(where);
        CHECK(ulp <= allowed_ulp(op).forward);
      }
      const Tensor x = test::random_input({31, 33}, 21, positive ? 0.1 : -3.0, 3.0);
      CHECK(test::max_ulp(unary_on(op, x.to(test::kCuda).t(), s), unary_on(op, x.t(), s)) <= allowed_ulp(op).forward);
    }
    const Tensor big = test::random_input({1000003}, 22, -1.0, 1.0);
    CHECK(test::max_ulp(unary_on(unary_op_v<op::Relu>, big.to(test::kCuda), 0.0), unary_on(unary_op_v<op::Relu>, big, 0.0)) == 0);
  }
}

TEST_CASE("cuda unary backward matches the CPU for every op", "[cuda][elementwise]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    for (UnaryOp op : kUnaryOps) {
      INFO("op " << kernels::unary_op_name(op));
      const bool positive = op == unary_op_v<op::Log> || op == unary_op_v<op::Pow>;
      const double s = op == unary_op_v<op::Pow> ? 2.5 : -1.75;
      const Tensor x = test::random_input({33, 31}, 30, positive ? 0.1 : -3.0, 3.0);
      const Tensor y = unary_on(op, x, s);
      const Tensor g0 = test::random_input({31, 33}, 31);
      const Tensor gy = g0.t(), gyd = g0.to(test::kCuda).t();  // strided gradients
      Tensor gx = empty({33, 31});
      kernels::unary_backward(op, x, y, gy, gx, s);
      Tensor gxd = empty({33, 31}, test::kOnCuda);
      kernels::unary_backward(op, x.to(test::kCuda), y.to(test::kCuda), gyd, gxd, s);
      CHECK(test::max_ulp(gxd, gx) <= allowed_ulp(op).backward);
    }
  }
}

TEST_CASE("cuda binary ops match the CPU bitwise: vectorized, misaligned, strided and broadcast operands",
          "[cuda][elementwise]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    for (BinaryOp op : kBinaryOps) {
      INFO("op " << kernels::binary_op_name(op));
      for (int64_t n : test::kElementwiseSizes) {
        if (n > 1000 && op != kernels::binary_op_v<op::Add>) continue;  // one large size is enough for the float4 path
        const Tensor a = test::random_input({n}, 40, -2.0, 2.0), b = test::random_input({n}, 41, 0.5, 2.0);
        CHECK(test::max_ulp(binary_on(op, a.to(test::kCuda), b.to(test::kCuda)), binary_on(op, a, b)) == 0);
      }
      // Offset by one element: the pointers are 4 mod 16, so the scalar path runs.
      const Tensor a = test::random_input({34}, 42), b = test::random_input({34}, 43, 0.5, 2.0);
      const Tensor am = a.to(test::kCuda).slice(0, 1, 34), bm = b.to(test::kCuda).slice(0, 1, 34);
      CHECK(test::max_ulp(binary_on(op, am, bm), binary_on(op, a.slice(0, 1, 34), b.slice(0, 1, 34))) == 0);
      // Transposed operand and a broadcast row / column.
      const Tensor m = test::random_input({31, 33}, 44), row = test::random_input({33}, 45, 0.5, 2.0),
                   col = test::random_input({33, 1}, 46, 0.5, 2.0);
      CHECK(test::max_ulp(binary_on(op, m.to(test::kCuda).t(), col.to(test::kCuda)), binary_on(op, m.t(), col)) == 0);
      CHECK(test::max_ulp(binary_on(op, m.to(test::kCuda), row.to(test::kCuda)), binary_on(op, m, row)) == 0);
    }
  }
}
