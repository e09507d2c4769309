/// @file ops/tensor_methods.cpp @brief The factories and Tensor methods declared in core/tensor.h that run kernels: full/zeros/ones, random fills, copy_, fill_, pin_memory, and the op methods (x.sum() = sum(x)).
#include "core/grad_mode.h"
#include "core/tensor.h"
#include "kernels/elementwise.h"
#include "kernels/random.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "ops/softmax.h"

namespace ember {

// ---------------------------------------------------------------- factories
Tensor full(const Shape& shape, double value, const TensorOptions& opts) {
  TensorOptions o = opts;
  o.requires_grad = false;
  Tensor t = empty(shape, o);
  kernels::fill(t, value);
  if (opts.requires_grad) t.set_requires_grad(true);
  return t;
}
Tensor zeros(const Shape& shape, const TensorOptions& opts) { return full(shape, 0.0, opts); }
Tensor ones(const Shape& shape, const TensorOptions& opts) { return full(shape, 1.0, opts); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), TensorOptions{t.dtype(), t.device(), false}); }

// ---------------------------------------------------------------- random
namespace {
void fill_dist(Tensor& t, kernels::Distribution dist, double a, double b, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  EMBER_CHECK(is_floating(t.dtype()), "random fill: expected a floating tensor, got ", describe(t));
  Tensor target = t.is_contiguous() ? t : empty_like(t);
  kernels::fill_random(target, dist, a, b, g.seed, g.offset);
  g.offset += static_cast<uint64_t>((t.numel() + 3) / 4 * 4);
  if (!target.is_same(t)) kernels::copy(target, t);
}
}  // namespace

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  fill_dist(t, kernels::Distribution::Uniform, low, high, gen);
}
void normal_(Tensor& t, double mean, double std, Generator* gen) {
  fill_dist(t, kernels::Distribution::Normal, mean, std, gen);
}
Tensor rand(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  Tensor t = empty(shape, TensorOptions{opts.dtype, opts.device, false});
  uniform_(t, 0.0, 1.0, gen);
  if (opts.requires_grad) t.set_requires_grad(true);
  return t;
}
Tensor randn(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  Tensor t = empty(shape, TensorOptions{opts.dtype, opts.device, false});
  normal_(t, 0.0, 1.0, gen);
  if (opts.requires_grad) t.set_requires_grad(true);
  return t;
}

// ---------------------------------------------------------------- in-place writes
Tensor& Tensor::copy_(const Tensor& src) {
  EMBER_CHECK(src.defined(), "copy_: source is undefined");
  EMBER_CHECK(!(requires_grad() && is_leaf() && GradMode::is_enabled()),
              "copy_: in-place write into a leaf that requires grad (", describe(*this),
              "); wrap it in NoGradGuard");
  Tensor s = src.detach();
  if (s.shape() != shape()) s = s.expand(shape());
  if (s.device() == device()) {
    kernels::copy(s, *this);
    return *this;
  }
  // Cross-device: stage through a contiguous tensor of the destination's dtype on the source device.
  Tensor staged = s.dtype() == dtype() && s.is_contiguous() ? s : empty(shape(), TensorOptions{dtype(), s.device()});
  if (!staged.is_same(s)) kernels::copy(s, staged);
  Tensor moved = staged.to(device());
  kernels::copy(moved, *this);
  return *this;
}

Tensor Tensor::pin_memory() const {
  EMBER_CHECK(device().is_cpu(), "pin_memory: only CPU tensors can be pinned, got ", describe(*this));
  EMBER_CHECK(!(requires_grad() && GradMode::is_enabled()), "pin_memory: ", describe(*this),
              " requires grad and the copy is not recorded by autograd; pin detach() instead");
  if (is_pinned()) return *this;
  EMBER_CHECK(has_pinned_allocator(DeviceType::CUDA),
              "pin_memory: pinned memory needs CUDA, and Ember was built without CUDA or the CUDA backend is not linked");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape();
  impl->strides = contiguous_strides(shape());
  impl->dtype = dtype();
  impl->device = Device::cpu();
  impl->storage = std::make_shared<StorageImpl>(nbytes(), pinned_allocator(DeviceType::CUDA));
  Tensor out(std::move(impl));
  if (numel() > 0) kernels::copy(*this, out);
  return out;
}

Tensor& Tensor::fill_(double value) {
  EMBER_CHECK(!(requires_grad() && is_leaf() && GradMode::is_enabled()),
              "fill_: in-place write into a leaf that requires grad (", describe(*this), "); wrap it in NoGradGuard");
  if (is_contiguous()) {
    kernels::fill(*this, value);
  } else {
    Tensor tmp = full(shape(), value, TensorOptions{dtype(), device()});
    kernels::copy(tmp, *this);
  }
  return *this;
}

// ---------------------------------------------------------------- op methods
Tensor Tensor::sum() const { return ember::sum(*this); }
Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return ember::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return ember::mean(*this); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const { return ember::mean(*this, dims, keepdim); }
Tensor Tensor::max(int64_t dim, bool keepdim) const { return ember::max(*this, dim, keepdim); }
Tensor Tensor::argmax(int64_t dim, bool keepdim) const { return ember::argmax(*this, dim, keepdim); }
Tensor Tensor::exp() const { return ember::exp(*this); }
Tensor Tensor::log() const { return ember::log(*this); }
Tensor Tensor::pow(double exponent) const { return ember::pow(*this, exponent); }
Tensor Tensor::relu() const { return ember::relu(*this); }
Tensor Tensor::sigmoid() const { return ember::sigmoid(*this); }
Tensor Tensor::tanh() const { return ember::tanh(*this); }
Tensor Tensor::matmul(const Tensor& other) const { return ember::matmul(*this, other); }
Tensor Tensor::softmax(int64_t dim) const { return ember::softmax(*this, dim); }
Tensor Tensor::log_softmax(int64_t dim) const { return ember::log_softmax(*this, dim); }

}  // namespace ember
