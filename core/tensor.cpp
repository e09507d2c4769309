/// @file core/tensor.cpp @brief Tensor basics that run no kernel: metadata, empty(), host access, printing (the methods that run kernels are in ops/tensor_methods.cpp).
#include "core/tensor.h"

#include <algorithm>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "core/grad_mode.h"

namespace ember {

AutogradMeta& TensorImpl::meta() {
  if (!autograd) autograd = std::make_unique<AutogradMeta>();
  return *autograd;
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "Tensor::size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "Tensor::stride")]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to misplace (as in PyTorch)
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  const auto& s = impl().storage;
  if (!s) return nullptr;
  return static_cast<char*>(s->data()) + impl().offset * static_cast<int64_t>(dtype_size(impl().dtype));
}

std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined tensor";
  return std::string(dtype_name(t.dtype())) + shape_str(t.shape()) + " on " + t.device().str();
}

// ---------------------------------------------------------------- factories
Tensor empty(const Shape& shape, const TensorOptions& opts) {
  for (int64_t d : shape) EMBER_CHECK(d >= 0, "empty: negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opts.dtype;
  impl->device = opts.device;
  impl->storage = std::make_shared<StorageImpl>(static_cast<size_t>(shape_numel(shape)) * dtype_size(opts.dtype),
                                                opts.device);
  Tensor t(std::move(impl));
  if (opts.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor empty_like(const Tensor& t) { return empty(t.shape(), TensorOptions{t.dtype(), t.device(), false}); }

Tensor arange(int64_t n, const TensorOptions& opts) {
  EMBER_CHECK(n >= 0, "arange: expected a non-negative length, got ", n);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>(i);
  return from_vector(v, {n}, opts);
}

namespace {
template <class Src>
Tensor from_values(const std::vector<Src>& values, const Shape& shape, const TensorOptions& opts) {
  EMBER_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
              " values do not fill shape ", shape_str(shape));
  Tensor host = empty(shape, TensorOptions{opts.dtype, Device::cpu(), false});
  switch (opts.dtype) {
    case DType::f32: std::copy(values.begin(), values.end(), host.data<float>()); break;
    case DType::f64: std::copy(values.begin(), values.end(), host.data<double>()); break;
    case DType::i64: std::copy(values.begin(), values.end(), host.data<int64_t>()); break;
  }
  Tensor t = opts.device.is_cpu() ? host : host.to(opts.device);
  if (opts.requires_grad) t.set_requires_grad(true);
  return t;
}
}  // namespace

Tensor from_vector(const std::vector<double>& v, const Shape& s, const TensorOptions& o) { return from_values(v, s, o); }
Tensor from_vector(const std::vector<float>& v, const Shape& s, const TensorOptions& o) { return from_values(v, s, o); }
Tensor from_vector(const std::vector<int64_t>& v, const Shape& s, const TensorOptions& o) { return from_values(v, s, o); }
Tensor from_vector(std::initializer_list<double> v, const Shape& s, const TensorOptions& o) {
  return from_values(std::vector<double>(v), s, o);
}

// ---------------------------------------------------------------- random
Generator& default_generator() {
  static Generator g(0);
  return g;
}
void manual_seed(uint64_t seed) { default_generator() = Generator(seed); }

// ---------------------------------------------------------------- host access
Tensor Tensor::to(Device d) const { return to(d, false); }

bool Tensor::is_pinned() const {
  const Storage& s = impl().storage;
  return s != nullptr && s->is_pinned();
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = detach();
  if (!host.device().is_cpu()) host = host.to(Device::cpu());
  if (!host.is_contiguous()) host = host.contiguous();
  std::vector<T> out(static_cast<size_t>(numel()));
  switch (dtype()) {
    case DType::f32: std::copy_n(host.data<float>(), out.size(), out.begin()); break;
    case DType::f64: std::copy_n(host.data<double>(), out.size(), out.begin()); break;
    case DType::i64: std::copy_n(host.data<int64_t>(), out.size(), out.begin()); break;
  }
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

double Tensor::item() const {
  EMBER_CHECK(numel() == 1, "item(): expected a tensor with one element, got ", describe(*this));
  return to_vector<double>()[0];
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << describe(*this);
  if (requires_grad()) os << ", requires_grad";
  os << ")\n";
  const auto v = to_vector<double>();
  const int64_t last = dim() == 0 ? 1 : size(-1);
  const size_t limit = 64;
  os << std::setprecision(6);
  for (size_t i = 0; i < v.size() && i < limit; ++i) {
    os << (i % static_cast<size_t>(std::max<int64_t>(last, 1)) == 0 ? (i ? "\n  " : "  ") : " ") << v[i];
  }
  if (v.size() > limit) os << " ... (" << v.size() - limit << " more)";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace ember
