/// @file tests/nn/test_embedding.cpp @brief embedding / nn::Embedding: gather and row-sum references written as loops, finite differences, in-place .grad accumulation, tied weights, initialization, errors.
//
// Tolerances: the forward copies rows (exact). The backward sums each row's output-gradient rows in
// double, in position order, and rounds once; the references below do the same sum in their own loop,
// so the results are compared exactly (==), on the CPU in f32 and f64 and on CUDA (equal to the CPU's
// bits by construction, tests/kernels/test_cuda_embedding.cpp).
#include <catch2/catch.hpp>

#include <cmath>

#include "nn/nn.h"
#include "tests/harness/backends.h"

using namespace ember;
namespace F = ember::nn::functional;

namespace {

const TensorOptions kI64 = TensorOptions{}.set_dtype(DType::i64);

/// out[i, :] = w[idx[i], :], as a loop over host vectors.
std::vector<double> naive_gather(const std::vector<int64_t>& idx, const std::vector<double>& w, int64_t dim) {
  std::vector<double> out;
  for (int64_t r : idx)
    for (int64_t d = 0; d < dim; ++d) out.push_back(w[static_cast<size_t>(r * dim + d)]);
  return out;
}

/// The weight gradient: row r = sum over positions i (in order, in double) with idx[i] == r of g[i, :].
std::vector<double> naive_scatter_add(const std::vector<int64_t>& idx, const std::vector<double>& g, int64_t num,
                                      int64_t dim) {
  std::vector<double> gw(static_cast<size_t>(num * dim), 0.0);
  for (size_t i = 0; i < idx.size(); ++i)
    for (int64_t d = 0; d < dim; ++d) gw[static_cast<size_t>(idx[i] * dim + d)] += g[i * static_cast<size_t>(dim) + static_cast<size_t>(d)];
  return gw;
}

std::vector<double> as_doubles(const Tensor& t) { return t.to(Device::cpu()).to(DType::f64).to_vector<double>(); }

/// The doubles rounded to f32 and back (what an f32 result holding the double sum rounded once reads as).
std::vector<double> rounded_f32(std::vector<double> v) {
  for (double& x : v) x = static_cast<double>(static_cast<float>(x));
  return v;
}

}  // namespace

TEST_CASE("embedding gathers rows and sums repeated indices' gradients, on every device", "[nn][cuda]") {
  const int64_t num = 7, dim = 5;
  // [2, 6] indices: row 3 four times, row 0 twice, row 6 once, rows 1, 2, 4, 5 never.
  const std::vector<int64_t> idx{3, 0, 3, 6, 3, 0, 5, 3, 1, 1, 0, 3};
  const Tensor w0 = test::random_input({num, dim}, 1, -2, 2);
  const Tensor g = test::random_input({2, 6, dim}, 2, -1, 1);
  const std::vector<double> want_y = naive_gather(idx, as_doubles(w0), dim);
  const std::vector<double> want_gw = rounded_f32(naive_scatter_add(idx, as_doubles(g), num, dim));
  for (Device d : test::devices()) {
    INFO(d.str());
    Tensor w = w0.to(d).detach();
    w.set_requires_grad(true);
    Tensor y = F::embedding(from_vector(idx, {2, 6}, TensorOptions{DType::i64, d}), w);
    CHECK(y.shape() == Shape{2, 6, dim});
    CHECK(as_doubles(y) == want_y);
    y.backward(g.to(d));
    CHECK(as_doubles(w.grad()) == want_gw);
  }
}

TEST_CASE("embedding in f64 matches the loops exactly and finite differences", "[nn]") {
  const TensorOptions f64 = TensorOptions{}.set_dtype(DType::f64);
  const std::vector<int64_t> idx{4, 4, 1, 0, 4, 2, 1};
  const Tensor w = test::random_input({5, 3}, 3, -1, 1, TensorOptions{DType::f64, Device::cpu(), true});
  const Tensor g = test::random_input({7, 3}, 4, -1, 1, f64);
  F::embedding(from_vector(idx, {7}, kI64), w).backward(g);
  CHECK(w.grad().to_vector<double>() == naive_scatter_add(idx, g.to_vector<double>(), 5, 3));
  // A loss that is not linear in the rows (tanh, squares): the repeated rows' terms interact.
  const Tensor indices = from_vector(idx, {7}, kI64);
  auto f = [&](const std::vector<Tensor>& in) { return sum(tanh(F::embedding(indices, in[0])) * in[1]); };
  // Central differences with eps 1e-6 in f64: truncation ~eps^2, rounding ~1e-16/eps = 1e-10.
  CHECK(test::gradcheck(f, {test::random_input({5, 3}, 5, -1, 1, f64), test::random_input({7, 3}, 6, -1, 1, f64)}) <
        1e-6);
}

TEST_CASE("embedding's backward adds into an existing .grad in place, and tied weights sum", "[nn]") {
  manual_seed(11);
  nn::Embedding emb(6, 4);
  const Tensor idx = from_vector(std::vector<int64_t>{5, 2, 5}, {3}, kI64);
  sum(emb(idx)).backward();
  const void* ptr = emb.weight.grad().data_ptr();
  const Tensor g1 = emb.weight.grad().clone();
  // A second backward adds into the same buffer (fused into .grad, no reallocation).
  sum(emb(idx) * 2.0).backward();
  CHECK(emb.weight.grad().data_ptr() == ptr);
  CHECK(emb.weight.grad().to_vector<float>() == (g1 * 3.0).to_vector<float>());
  CHECK(g1.to_vector<float>()[5 * 4] == 2.0f);  // row 5 twice
  CHECK(g1.to_vector<float>()[0] == 0.0f);      // row 0 never
  // Tied weights (a GPT's wte and lm_head): the embedding and a linear both add into .grad.
  emb.zero_grad();
  Tensor h = emb(idx);                       // [3, 4]
  Tensor logits = F::linear(h, emb.weight);  // [3, 6]
  sum(logits).backward();
  Tensor w = emb.weight.detach().clone();
  w.set_requires_grad(true);
  Tensor onehot = zeros({3, 6});
  for (int64_t i = 0; i < 3; ++i) onehot.data<float>()[i * 6 + std::vector<int64_t>{5, 2, 5}[static_cast<size_t>(i)]] = 1;
  sum(matmul(matmul(onehot, w), w.t())).backward();  // the same function without embedding
  std::string why;
  CHECK(test::allclose(emb.weight.grad(), w.grad(), 1e-6, 1e-6, &why));  // sums of <= 4 products in f32
  INFO(why);
}

TEST_CASE("a non-leaf weight view gets its embedding gradient through the engine", "[nn]") {
  const Tensor base = test::random_input({3, 4}, 8, -1, 1, TensorOptions{}.set_requires_grad(true));
  const Tensor wt = base.t();  // [4, 3], not contiguous, not a leaf
  const std::vector<int64_t> idx{1, 3, 1};
  const Tensor g = test::random_input({3, 3}, 9);
  F::embedding(from_vector(idx, {3}, kI64), wt).backward(g);
  const std::vector<double> gw = rounded_f32(naive_scatter_add(idx, as_doubles(g), 4, 3));  // [4, 3]
  const std::vector<double> got = as_doubles(base.grad());                                 // [3, 4] = gw^T
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 3; ++c) CHECK(got[static_cast<size_t>(c * 4 + r)] == gw[static_cast<size_t>(r * 3 + c)]);
}

TEST_CASE("nn::Embedding has PyTorch's parameter and an N(0, 1) initial weight from the generator", "[nn]") {
  nn::Embedding emb(nn::EmbeddingOptions{.num_embeddings = 200, .embedding_dim = 50});
  const auto params = emb.named_parameters();
  REQUIRE(params.size() == 1);
  CHECK(params[0].first == "weight");
  CHECK(emb.weight.shape() == Shape{200, 50});
  CHECK(emb.str() == "Embedding(200, 50)");
  // 10000 N(0, 1) draws: the mean's sd is 0.01, the variance's ~0.014: 5 sd bounds.
  const auto v = emb.weight.to_vector<float>();
  double s = 0, s2 = 0;
  for (float x : v) s += x, s2 += static_cast<double>(x) * x;
  const double mean = s / static_cast<double>(v.size());
  CHECK(std::abs(mean) < 0.05);
  CHECK(std::abs(s2 / static_cast<double>(v.size()) - mean * mean - 1.0) < 0.07);
  // The same generator state gives the same weight; the draw advances the default generator.
  Generator g1(42), g2(42);
  nn::Embedding a(nn::EmbeddingOptions{.num_embeddings = 3, .embedding_dim = 2, .generator = &g1});
  nn::Embedding b(nn::EmbeddingOptions{.num_embeddings = 3, .embedding_dim = 2, .generator = &g2});
  CHECK(a.weight.to_vector<float>() == b.weight.to_vector<float>());
  manual_seed(1);
  nn::Embedding c(3, 2), d(3, 2);
  CHECK(c.weight.to_vector<float>() != d.weight.to_vector<float>());
}

TEST_CASE("embedding rejects out-of-range indices and bad operands naming them", "[nn]") {
  const Tensor w = randn({4, 3});
  CHECK_THROWS_WITH(F::embedding(from_vector(std::vector<int64_t>{0, 4, 1}, {3}, kI64), w),
                    Catch::Contains("index 4 at position 1") && Catch::Contains("[0, 4)"));
  CHECK_THROWS_WITH(F::embedding(from_vector(std::vector<int64_t>{-1, 9, -2}, {3}, kI64), w),
                    Catch::Contains("index -1 at position 0") && Catch::Contains("3 invalid indices"));
  CHECK_THROWS_WITH(F::embedding(zeros({3}), w), Catch::Contains("indices must be i64"));
  CHECK_THROWS_WITH(F::embedding(zeros({3}, kI64), randn({4})), Catch::Contains("[num_embeddings, embedding_dim]"));
  CHECK_THROWS_WITH(nn::Embedding(0, 3), Catch::Contains("must be positive"));
  // An empty index tensor gives an empty [..., dim] output.
  CHECK(F::embedding(zeros({2, 0}, kI64), w).shape() == Shape{2, 0, 3});
}
