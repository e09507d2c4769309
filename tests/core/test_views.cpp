/// @file tests/core/test_views.cpp @brief Views share storage (write-through), view/reshape strides, contiguous copies only when needed, copy_, to(Device), item, printing, factories.
#include <catch2/catch.hpp>

#include <numeric>

#include "tests/harness/backends.h"

using namespace ember;
using Catch::Matchers::Contains;

namespace {

/// arange(n) as f32 reshaped to `shape` (contiguous).
Tensor iota(const Shape& shape) { return arange(shape_numel(shape)).reshape(shape); }

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

/// The element at logical row-major index `i` of a view, computed from its strides by hand.
float at_strided(const Tensor& view, const float* base, int64_t i) {
  int64_t off = view.offset();
  for (int64_t d = view.dim() - 1; d >= 0; --d) {
    off += (i % view.size(d)) * view.stride(d);
    i /= view.size(d);
  }
  return base[off];
}

}  // namespace

TEST_CASE("view shares storage and writes through; a non-viewable layout throws naming the strides",
          "[core][views]") {
  Tensor x = iota({3, 4});
  Tensor v = x.view({4, 3});
  CHECK(v.data_ptr() == x.data_ptr());
  CHECK(v.strides() == Shape{3, 1});
  v.select(0, 1).fill_(-1.0);  // elements 3, 4, 5 of x
  CHECK(values(x) == std::vector<float>{0, 1, 2, -1, -1, -1, 6, 7, 8, 9, 10, 11});

  CHECK(x.view({-1}).shape() == Shape{12});
  CHECK(x.view({2, -1, 2}).shape() == Shape{2, 3, 2});
  CHECK_THROWS_WITH(x.view({5, -1}), Contains("[5, -1]") && Contains("[3, 4]"));
  CHECK_THROWS_WITH(x.view({-1, -1}), Contains("more than one -1"));

  Tensor xt = x.t();
  CHECK_THROWS_WITH(xt.view({12}), Contains("strides [1, 4]") && Contains("reshape"));
  Tensor r = xt.reshape({12});  // not viewable: reshape copies
  CHECK(r.data_ptr() != x.data_ptr());
  CHECK(values(r) == values(xt.contiguous()));
}

TEST_CASE("view strides follow PyTorch's rule (merge dims that are contiguous with each other)", "[core][views]") {
  const Tensor a = iota({2, 3, 4});
  struct Case {
    Tensor src;
    Shape target;
    Shape strides;  // expected; empty = not viewable
  };
  const std::vector<Case> cases = {
      {a, {6, 4}, {4, 1}},
      {a, {2, 12}, {12, 1}},
      {a, {1, 24, 1}, {24, 1, 1}},
      {a.transpose(0, 1), {3, 2, 2, 2}, {4, 12, 2, 1}},  // splits the untouched last dim
      {a.transpose(0, 1), {3, 8}, {}},                   // merges dims 1 and 2 across the transpose: no
      {a.transpose(0, 1), {6, 4}, {}},
      {a.slice(2, 0, 4, 2), {6, 2}, {4, 2}},             // [2,3,2] strides (12,4,2): dims 0 and 1 merge
      {a.slice(2, 0, 4, 2), {12}, {2}},                  // ... and so do all three: one stride-2 run
      {a.slice(1, 0, 2), {2, 8}, {12, 1}},               // [2,2,4] strides (12,4,1)
      {a.slice(1, 0, 2), {16}, {}},
      {iota({1, 4}).expand({3, 4}), {3, 2, 2}, {0, 2, 1}},
      {iota({1, 4}).expand({3, 4}), {12}, {}},
      {iota({4, 5}).slice(1, 2, 3), {4}, {5}},           // a column: [4,1] with strides (5,1)
      {iota({4, 5}).slice(1, 2, 3), {2, 2, 1}, {10, 5, 1}},
      {a.permute({2, 0, 1}), {4, 6}, {1, 4}},            // dims 1,2 of the permute are still adjacent
      {a.permute({2, 0, 1}), {24}, {}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    INFO("case " << i << ": " << describe(c.src) << " strides " << shape_str(c.src.strides()) << " -> "
                 << shape_str(c.target));
    if (c.strides.empty()) {
      CHECK_THROWS_WITH(c.src.view(c.target), Contains("without a copy"));
      continue;
    }
    const Tensor v = c.src.view(c.target);
    CHECK(v.strides() == c.strides);
    CHECK(v.data_ptr() == c.src.data_ptr());
    // The view reads the same elements, in the same order, as a reshape of a contiguous copy.
    CHECK(values(v) == values(c.src.contiguous().view(c.target)));
  }
}

TEST_CASE("every element of a view is where its strides say (property check over many layouts)", "[core][views]") {
  const Tensor base = iota({4, 6, 5});
  const float* p = base.data<float>();
  const std::vector<Tensor> views = {
      base.transpose(0, 2),         base.permute({1, 2, 0}),  base.slice(1, 1, 6, 2),
      base.slice(2, -3, 5).select(0, 2), base.select(1, -1),  base.unsqueeze(1).expand({4, 3, 6, 5}),
      base.slice(0, 1, 3).flatten(1), base.t().slice(0, 0, 5, 3),
  };
  for (size_t k = 0; k < views.size(); ++k) {
    INFO("view " << k << ": " << describe(views[k]));
    const Tensor& v = views[k];
    CHECK(v.storage() == base.storage());
    const auto got = values(v);
    bool all_match = true;
    for (int64_t i = 0; i < v.numel(); ++i) all_match = all_match && got[static_cast<size_t>(i)] == at_strided(v, p, i);
    CHECK(all_match);
  }
}

TEST_CASE("transpose, permute, slice, select, expand, squeeze, unsqueeze, flatten share storage", "[core][views]") {
  Tensor x = iota({2, 3, 4});
  SECTION("transpose / permute") {
    Tensor t = x.transpose(0, 2);
    CHECK(t.shape() == Shape{4, 3, 2});
    CHECK(t.strides() == Shape{1, 4, 12});
    CHECK_FALSE(t.is_contiguous());
    Tensor p = x.permute({1, 2, 0});
    CHECK(p.shape() == Shape{3, 4, 2});
    { NoGradGuard ng; t.select(0, 3).select(0, 2).fill_(100.0); }  // x[:, 2, 3]
    CHECK(x.to_vector<float>()[11] == 100.0f);
    CHECK(x.to_vector<float>()[23] == 100.0f);
    CHECK(p.select(0, 2).select(0, 3).to_vector<float>() == std::vector<float>{100, 100});
  }
  SECTION("slice with a step and select") {
    Tensor s = x.slice(2, 1, 4, 2);  // columns 1 and 3
    CHECK(s.shape() == Shape{2, 3, 2});
    CHECK(s.strides() == Shape{12, 4, 2});
    CHECK(s.offset() == 1);
    s.fill_(-5.0);
    const auto v = values(x);
    CHECK(v[1] == -5.0f);
    CHECK(v[3] == -5.0f);
    CHECK(v[2] == 2.0f);
    Tensor row = x.select(1, -1);  // x[:, 2, :]
    CHECK(row.shape() == Shape{2, 4});
    CHECK(row.offset() == 8);
    CHECK(x.slice(0, -1, 100).shape() == Shape{1, 3, 4});  // clamped like Python slicing
    CHECK(x.slice(1, 2, 1).numel() == 0);
  }
  SECTION("expand, squeeze, unsqueeze, flatten") {
    Tensor col = iota({3, 1});
    Tensor e = col.expand({2, 3, 5});
    CHECK(e.strides() == Shape{0, 1, 0});
    CHECK(e.data_ptr() == col.data_ptr());
    CHECK(col.expand({-1, 4}).shape() == Shape{3, 4});
    Tensor sq = col.squeeze(1);
    CHECK(sq.shape() == Shape{3});
    CHECK(col.squeeze(0).shape() == Shape{3, 1});  // not size 1: unchanged, as in PyTorch
    Tensor un = sq.unsqueeze(0).unsqueeze(-1);
    CHECK(un.shape() == Shape{1, 3, 1});
    Tensor f = x.flatten(1);
    CHECK(f.shape() == Shape{2, 12});
    CHECK(f.data_ptr() == x.data_ptr());
    CHECK(x.flatten().shape() == Shape{24});
    un.fill_(7.0);
    CHECK(values(col) == std::vector<float>{7, 7, 7});
  }
}

TEST_CASE("contiguous copies only when needed; clone always copies", "[core][views]") {
  Tensor x = iota({3, 4});
  CHECK(x.contiguous().is_same(x));
  CHECK(x.view({4, 3}).contiguous().data_ptr() == x.data_ptr());
  CHECK(x.slice(0, 1, 2).contiguous().data_ptr() == static_cast<float*>(x.data_ptr()) + 4);  // a row is contiguous
  Tensor t = x.t();
  const int64_t before = allocator_stats().allocations;
  Tensor c = t.contiguous();
  CHECK(allocator_stats().allocations == before + 1);
  CHECK(c.is_contiguous());
  CHECK(c.strides() == Shape{3, 1});
  CHECK(values(c) == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  Tensor k = x.clone();
  CHECK(k.data_ptr() != x.data_ptr());
  CHECK(values(k) == values(x));
}

TEST_CASE("copy_ broadcasts, converts dtype and writes into strided views", "[core][views]") {
  Tensor dst = zeros({2, 3});
  dst.copy_(from_vector(std::vector<double>{1.5, -2.25, 3.0}, {3}, TensorOptions{}.set_dtype(DType::f64)));
  CHECK(values(dst) == std::vector<float>{1.5f, -2.25f, 3.0f, 1.5f, -2.25f, 3.0f});

  Tensor ints = zeros({3}, TensorOptions{}.set_dtype(DType::i64));
  ints.copy_(from_vector(std::vector<float>{1.9f, -2.9f, 7.0f}, {3}));
  CHECK(ints.to_vector<int64_t>() == std::vector<int64_t>{1, -2, 7});  // truncation, as a C++ cast

  Tensor base = zeros({3, 4});
  Tensor col = base.slice(1, 1, 2);  // [3, 1] with stride 4
  col.copy_(from_vector(std::vector<float>{1, 2, 3}, {3, 1}));
  CHECK(values(base) == std::vector<float>{0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0});
  CHECK_THROWS_WITH(dst.copy_(zeros({4})), Contains("[4]") && Contains("[2, 3]"));

  Tensor leaf = zeros({2}, TensorOptions{}.set_requires_grad(true));
  CHECK_THROWS_WITH(leaf.copy_(ones({2})), Contains("leaf that requires grad"));
  {
    NoGradGuard ng;
    leaf.copy_(ones({2}));
  }
  CHECK(values(leaf) == std::vector<float>{1, 1});
}

TEST_CASE("to(Device) is the identity on the same device; item and printing", "[core][views]") {
  Tensor x = iota({2, 3});
  CHECK(x.to(Device::cpu()).is_same(x));
  CHECK(x.to(DType::f32).is_same(x));
  Tensor d = x.to(DType::f64);
  CHECK(d.dtype() == DType::f64);
  CHECK(d.to_vector<double>() == std::vector<double>{0, 1, 2, 3, 4, 5});

  CHECK(full({}, 2.5).item() == 2.5);
  CHECK(x.select(0, 1).select(0, 2).item() == 5.0);
  CHECK_THROWS_WITH(x.item(), Contains("one element") && Contains("f32[2, 3]"));

  const std::string s = x.str();
  CHECK_THAT(s, Contains("f32[2, 3]") && Contains("cpu") && Contains("0 1 2") && Contains("3 4 5"));
  Tensor g = x.detach().set_requires_grad(true);
  CHECK_THAT(g.str(), Contains("requires_grad"));
  std::ostringstream os;
  os << full({2}, -1.5, TensorOptions{}.set_dtype(DType::f64));
  CHECK_THAT(os.str(), Contains("f64[2]") && Contains("-1.5 -1.5"));
  CHECK_THAT(Tensor().str(), Contains("undefined"));
  CHECK_THAT(zeros({100}).str(), Contains("36 more"));
}

TEST_CASE("to(Device) round trip through CUDA keeps values, shape and strides logic", "[core][views][cuda]") {
  if (!test::has_cuda()) {
    WARN("no CUDA device: round trip not run");
    return;
  }
  Tensor x = test::random_input({5, 7}, 3);
  Tensor xt = x.t();  // non-contiguous: made contiguous on the way
  Tensor on = xt.to(Device::cuda(0));
  CHECK(on.device() == Device::cuda(0));
  CHECK(on.shape() == Shape{7, 5});
  Tensor back = on.to(Device::cpu());
  CHECK(values(back) == values(xt));
  CHECK(on.select(0, 2).select(0, 3).item() == static_cast<double>(values(xt)[2 * 5 + 3]));
  CHECK_THROWS_WITH(on.item(), Contains("cuda:0") && Contains("[7, 5]"));
  Tensor copied = zeros({7, 5});
  copied.copy_(on);  // cross-device copy_
  CHECK(values(copied) == values(xt));
}

TEST_CASE("factories: arange, full, ones, zeros, empty; from_vector errors", "[core][views]") {
  CHECK(values(arange(5)) == std::vector<float>{0, 1, 2, 3, 4});
  CHECK(arange(0).numel() == 0);
  CHECK(arange(3, TensorOptions{}.set_dtype(DType::i64)).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2});
  CHECK_THROWS_WITH(arange(-2), Contains("-2"));
  CHECK(values(full({2, 2}, 3.25)) == std::vector<float>(4, 3.25f));
  CHECK(values(ones({3})) == std::vector<float>(3, 1.0f));
  CHECK(zeros({2, 0, 3}).numel() == 0);
  Tensor e = empty({4, 5}, TensorOptions{}.set_dtype(DType::f64));
  CHECK(e.nbytes() == 160);
  CHECK(e.is_contiguous());
  CHECK_THROWS_WITH(empty({2, -1}), Contains("[2, -1]"));
  CHECK_THROWS_WITH(from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Contains("3 values") && Contains("[2, 2]"));
  CHECK_THROWS_WITH(zeros({2}, TensorOptions{}.set_dtype(DType::i64).set_requires_grad(true)),
                    Contains("floating") && Contains("i64"));
  CHECK_THROWS_WITH(iota({2}).data<double>(), Contains("f64") && Contains("f32"));
}
