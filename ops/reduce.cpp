/// @file ops/reduce.cpp @brief sum / mean / max over dims via the [outer, K, inner] reduce kernel, with backward nodes.
#include "ops/reduce.h"

#include <algorithm>
#include <numeric>

#include "ops/autograd/node.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace ember {
namespace {

struct SumBackward final : Node {
  Shape input_shape, kept_shape;  // kept_shape: input shape with reduced dims set to 1
  double scale = 1.0;             // 1/k for mean
  std::string name() const override { return scale == 1.0 ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor e = g.reshape(kept_shape).expand(input_shape);
    if (scale == 1.0) return {e};  // an expanded view; consumers make it contiguous when needed
    Tensor out = empty(input_shape, TensorOptions{g.dtype(), g.device()});
    kernels::unary(kernels::unary_op_v<kernels::op::MulScalar>, e, out, scale);
    return {out};
  }
};

struct MaxBackward final : Node {
  Tensor indices;
  Shape input_shape;
  int64_t outer = 0, k = 0, inner = 0;
  std::string name() const override { return "MaxBackward"; }
  void release_saved() override { indices = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = zeros(input_shape, TensorOptions{g.dtype(), g.device()});
    kernels::reduce_max_backward(g.contiguous(), indices, outer, k, inner, gx);
    return {gx};
  }
};

/// Sorted, unique, wrapped dims; empty list means "all dims".
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* what) {
  std::vector<int64_t> d;
  if (dims.empty()) {
    d.resize(static_cast<size_t>(ndim));
    std::iota(d.begin(), d.end(), 0);
    return d;
  }
  for (int64_t x : dims) d.push_back(wrap_dim(x, ndim, what));
  std::sort(d.begin(), d.end());
  EMBER_CHECK(std::adjacent_find(d.begin(), d.end()) == d.end(), what, ": dim repeated in the reduction list");
  if (ndim == 0) d.clear();  // a 0-dim tensor: dim 0 / -1 name the tensor itself (as in PyTorch)
  return d;
}

/// Reduces x over dims with the given kernel op. Returns the result with keepdim shape, plus
/// (outer, k, inner) of the layout reduced (after a permute + contiguous when dims are not adjacent).
Tensor reduce_impl(kernels::ReduceOp op, const Tensor& x_in, const std::vector<int64_t>& dims, double scale,
                   Tensor* indices, int64_t* outer_out, int64_t* k_out, int64_t* inner_out) {
  const int64_t nd = x_in.dim();
  Shape kept = x_in.shape();
  for (int64_t d : dims) kept[static_cast<size_t>(d)] = 1;
  const bool adjacent = dims.empty() || dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  Tensor x = x_in.detach();
  int64_t outer = 1, k = 1, inner = 1;
  if (adjacent) {
    x = x.contiguous();
    for (int64_t i = 0; i < nd; ++i) {
      const int64_t s = x.shape()[static_cast<size_t>(i)];
      if (!dims.empty() && i < dims.front()) outer *= s;
      else if (!dims.empty() && i > dims.back()) inner *= s;
      else k *= s;
    }
  } else {
    std::vector<int64_t> perm;
    for (int64_t i = 0; i < nd; ++i)
      if (!std::binary_search(dims.begin(), dims.end(), i)) perm.push_back(i);
    for (int64_t d : dims) perm.push_back(d);
    x = x.permute(perm).contiguous();
    for (int64_t d : dims) k *= x_in.shape()[static_cast<size_t>(d)];
    outer = x.numel() / std::max<int64_t>(k, 1);
    if (k == 0) outer = shape_numel(kept);
  }
  Tensor out = empty(kept, TensorOptions{x.dtype(), x.device()});
  if (indices) *indices = empty(kept, TensorOptions{DType::i64, x.device()});
  kernels::reduce(op, x, outer, k, inner, scale, out, indices);
  if (outer_out) *outer_out = outer;
  if (k_out) *k_out = k;
  if (inner_out) *inner_out = inner;
  return out;
}

Tensor drop_dims(const Tensor& t, const std::vector<int64_t>& dims) {
  Shape s;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) s.push_back(t.shape()[static_cast<size_t>(i)]);
  return t.view(s);
}

Tensor sum_scaled(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim, double scale_per_k,
                  const char* what) {
  EMBER_CHECK(x.defined(), what, ": undefined operand");
  EMBER_CHECK(is_floating(x.dtype()), what, ": expected a floating tensor, got ", describe(x));
  const auto dims = normalize_dims(dims_in, x.dim(), what);
  int64_t k = 1;
  for (int64_t d : dims) k *= x.shape()[static_cast<size_t>(d)];
  const double scale = scale_per_k > 0 ? 1.0 / static_cast<double>(k) : 1.0;
  EMBER_CHECK(scale_per_k <= 0 || k > 0, what, ": mean over an empty dimension of ", describe(x));
  Tensor out = reduce_impl(kernels::ReduceOp::Sum, x, dims, scale, nullptr, nullptr, nullptr, nullptr);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<SumBackward>();
    node->input_shape = x.shape();
    node->kept_shape = out.shape();
    node->scale = scale;
    record(node, {&x}, out);
  }
  return keepdim ? out : drop_dims(out, dims);
}

}  // namespace

Tensor sum(const Tensor& x) { return sum_scaled(x, {}, false, 0, "sum"); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_scaled(x, dims, keepdim, 0, "sum");
}
Tensor mean(const Tensor& x) { return sum_scaled(x, {}, false, 1, "mean"); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_scaled(x, dims, keepdim, 1, "mean");
}

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  EMBER_CHECK(x.defined() && is_floating(x.dtype()), "max: expected a floating tensor, got ", describe(x));
  const auto dims = normalize_dims({dim}, x.dim(), "max");
  Tensor idx;
  int64_t outer = 0, k = 0, inner = 0;
  Tensor out = reduce_impl(kernels::ReduceOp::Max, x, dims, 1.0, &idx, &outer, &k, &inner);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<MaxBackward>();
    node->indices = idx;
    node->input_shape = x.shape();
    node->outer = outer;
    node->k = k;
    node->inner = inner;
    record(node, {&x}, out);
  }
  return keepdim ? out : drop_dims(out, dims);
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  EMBER_CHECK(x.defined() && is_floating(x.dtype()), "argmax: expected a floating tensor, got ", describe(x));
  const auto dims = normalize_dims({dim}, x.dim(), "argmax");
  Tensor idx;
  reduce_impl(kernels::ReduceOp::Max, x, dims, 1.0, &idx, nullptr, nullptr, nullptr);
  return keepdim ? idx : drop_dims(idx, dims);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  EMBER_CHECK(static_cast<int64_t>(shape.size()) <= x.dim(), "sum_to: cannot reduce ", describe(x), " to ",
              shape_str(shape));
  const size_t lead = static_cast<size_t>(x.dim()) - shape.size();
  std::vector<int64_t> dims;
  for (size_t i = 0; i < static_cast<size_t>(x.dim()); ++i) {
    if (i < lead) {
      dims.push_back(static_cast<int64_t>(i));
    } else if (shape[i - lead] == 1 && x.shape()[i] != 1) {
      dims.push_back(static_cast<int64_t>(i));
    } else {
      EMBER_CHECK(shape[i - lead] == x.shape()[i], "sum_to: cannot reduce ", describe(x), " to ", shape_str(shape));
    }
  }
  Tensor s = dims.empty() ? x : sum(x, dims, true);
  return s.reshape(shape);
}

}  // namespace ember
