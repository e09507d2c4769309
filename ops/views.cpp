/// @file ops/views.cpp @brief View ops (view, reshape, transpose, permute, slice, expand, ...) and copies (contiguous, clone, to) with their backward nodes.
#include <algorithm>
#include <numeric>
#include <optional>

#include "ops/autograd/node.h"
#include "ops/reduce.h"
#include "kernels/elementwise.h"
#include "kernels/transfer.h"

namespace ember {
namespace {

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->device = base.device();
  return Tensor(std::move(impl));
}

struct ReshapeBackward final : Node {
  Shape input_shape;
  std::string name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g.reshape(input_shape)}; }
};

struct PermuteBackward final : Node {
  std::vector<int64_t> inverse;
  std::string name() const override { return "PermuteBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g.permute(inverse)}; }
};

struct SliceBackward final : Node {
  Shape input_shape;
  int64_t dim = 0, start = 0, end = 0, step = 1;
  std::string name() const override { return "SliceBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = zeros(input_shape, TensorOptions{g.dtype(), g.device()});
    Tensor window = gx.slice(dim, start, end, step);
    kernels::copy(g, window);
    return {gx};
  }
};

struct ExpandBackward final : Node {
  Shape input_shape;
  std::string name() const override { return "ExpandBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {sum_to(g, input_shape)}; }
};

struct IdentityBackward final : Node {  // contiguous / clone
  std::string name() const override { return "CloneBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g}; }
};

struct ToDeviceBackward final : Node {
  Device source;
  std::string name() const override { return "ToDeviceBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g.to(source)}; }
};

struct ToDTypeBackward final : Node {
  DType source = DType::f32;
  std::string name() const override { return "ToDTypeBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g.to(source)}; }
};

/// Resolves one -1 in a requested shape; checks the element count.
Shape infer_shape(const Shape& want, int64_t numel, const Shape& have) {
  Shape s = want;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      EMBER_CHECK(infer < 0, "reshape/view: more than one -1 in shape ", shape_str(want));
      infer = static_cast<int64_t>(i);
    } else {
      EMBER_CHECK(s[i] >= 0, "reshape/view: negative size in shape ", shape_str(want));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    EMBER_CHECK(known != 0 && numel % known == 0, "reshape/view: shape ", shape_str(want),
                " is invalid for a tensor of shape ", shape_str(have));
    s[static_cast<size_t>(infer)] = numel / known;
  }
  EMBER_CHECK(shape_numel(s) == numel, "reshape/view: shape ", shape_str(want), " is invalid for a tensor of shape ",
              shape_str(have), " (", numel, " elements)");
  return s;
}

/// Strides for viewing (shape, strides) as `target` without a copy, or empty if impossible.
/// (Same algorithm as PyTorch's computeStride: merge runs of dims that are contiguous with each other.)
std::optional<Shape> view_strides(const Shape& shape, const Shape& strides, const Shape& target) {
  if (shape.empty() || shape_numel(shape) == 0) return contiguous_strides(target);
  Shape out(target.size());
  int64_t view_d = static_cast<int64_t>(target.size()) - 1;
  int64_t chunk_base_stride = strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[static_cast<size_t>(d)];
    const bool chunk_ends = d == 0 || (shape[static_cast<size_t>(d - 1)] != 1 &&
                                       strides[static_cast<size_t>(d - 1)] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || target[static_cast<size_t>(view_d)] == 1)) {
      out[static_cast<size_t>(view_d)] = view_numel * chunk_base_stride;
      view_numel *= target[static_cast<size_t>(view_d)];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (d > 0) {
      chunk_base_stride = strides[static_cast<size_t>(d - 1)];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

template <class NodeT>
Tensor finish(Tensor out, const Tensor& in, std::shared_ptr<NodeT> node) {
  if (any_requires_grad({&in})) record(node, {&in}, out);
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& want) const {
  const Shape s = infer_shape(want, numel(), shape());
  auto st = view_strides(shape(), strides(), s);
  EMBER_CHECK(st.has_value(), "view: cannot view ", describe(*this), " with strides ", shape_str(strides()), " as ",
              shape_str(s), " without a copy; use reshape()");
  auto node = std::make_shared<ReshapeBackward>();
  node->input_shape = shape();
  return finish(make_view(*this, s, *st, offset()), *this, node);
}

Tensor Tensor::reshape(const Shape& want) const {
  const Shape s = infer_shape(want, numel(), shape());
  if (view_strides(shape(), strides(), s)) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  EMBER_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(), " dims given for ",
              describe(*this));
  Shape s(dims.size()), st(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], dim(), "permute");
    EMBER_CHECK(inverse[static_cast<size_t>(d)] < 0, "permute: dim ", d, " repeated");
    inverse[static_cast<size_t>(d)] = static_cast<int64_t>(i);
    s[i] = shape()[static_cast<size_t>(d)];
    st[i] = strides()[static_cast<size_t>(d)];
  }
  auto node = std::make_shared<PermuteBackward>();
  node->inverse = inverse;
  return finish(make_view(*this, s, st, offset()), *this, node);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> p(static_cast<size_t>(dim()));
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[static_cast<size_t>(wrap_dim(d0, dim(), "transpose"))], p[static_cast<size_t>(wrap_dim(d1, dim(), "transpose"))]);
  return permute(p);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  const int64_t n = shape()[static_cast<size_t>(d)];
  EMBER_CHECK(step >= 1, "slice: step must be >= 1, got ", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[static_cast<size_t>(d)] = (end - start + step - 1) / step;
  st[static_cast<size_t>(d)] *= step;
  auto node = std::make_shared<SliceBackward>();
  node->input_shape = shape();
  node->dim = d;
  node->start = start;
  node->end = end;
  node->step = step;
  return finish(make_view(*this, s, st, offset() + start * strides()[static_cast<size_t>(d)]), *this, node);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  const int64_t n = shape()[static_cast<size_t>(d)];
  EMBER_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d, " of size ", n);
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& want) const {
  EMBER_CHECK(want.size() >= shape().size(), "expand: cannot expand ", describe(*this), " to fewer dims ",
              shape_str(want));
  const size_t lead = want.size() - shape().size();
  Shape st(want.size(), 0), s = want;
  for (size_t i = 0; i < want.size(); ++i) {
    if (i < lead) {
      EMBER_CHECK(want[i] >= 0, "expand: invalid size in ", shape_str(want));
      continue;
    }
    const int64_t have = shape()[i - lead];
    if (want[i] == -1 || want[i] == have) {
      s[i] = have;
      st[i] = strides()[i - lead];
    } else {
      EMBER_CHECK(have == 1, "expand: cannot expand ", describe(*this), " to ", shape_str(want), " (dim ", i,
                  " has size ", have, ")");
      st[i] = 0;
    }
  }
  if (s == shape()) return *this;
  auto node = std::make_shared<ExpandBackward>();
  node->input_shape = shape();
  return finish(make_view(*this, s, st, offset()), *this, node);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return view(s);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[static_cast<size_t>(d)] != 1) return *this;
  Shape s = shape();
  s.erase(s.begin() + d);
  return view(s);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  EMBER_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " > end_dim ", end_dim);
  Shape s(shape().begin(), shape().begin() + start_dim);
  int64_t m = 1;
  for (int64_t i = start_dim; i <= end_dim; ++i) m *= shape()[static_cast<size_t>(i)];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + end_dim + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::clone() const {
  Tensor out = empty_like(*this);
  kernels::copy(*this, out);
  return finish(out, *this, std::make_shared<IdentityBackward>());
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(Device d, bool non_blocking) const {
  if (d == device()) return *this;
  Tensor out = kernels::transfer(contiguous().detach(), d);
  // From pinned memory the copy reads the source when the stream runs: unless asked not to, wait for it
  // so the caller may write into the source at once (from pageable memory it was staged at the call).
  if (!non_blocking && is_pinned() && !d.is_cpu()) kernels::synchronize(d);
  auto node = std::make_shared<ToDeviceBackward>();
  node->source = device();
  return finish(out, *this, node);
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = empty(shape(), TensorOptions{t, device()});
  kernels::copy(*this, out);
  if (!is_floating(t) || !is_floating(dtype())) return out;
  auto node = std::make_shared<ToDTypeBackward>();
  node->source = dtype();
  return finish(out, *this, node);
}

}  // namespace ember
