/// @file core/tensor.h @brief Tensor: storage + shape/strides/offset + dtype/device + autograd meta; views share storage.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace ember {

class Node;
class Tensor;
struct TensorImpl;

/// Options for factories, in the style of torch::TensorOptions.
struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  bool requires_grad = false;

  TensorOptions& set_dtype(DType d) { dtype = d; return *this; }
  TensorOptions& set_device(Device d) { device = d; return *this; }
  TensorOptions& set_requires_grad(bool r) { requires_grad = r; return *this; }
};

/// Autograd state of a tensor. Leaves own `grad`; non-leaves point at the Node that made them.
struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;           ///< leaf gradient (same shape, contiguous)
  std::shared_ptr<Node> grad_fn;              ///< producer node (non-leaf)
  std::weak_ptr<Node> grad_accumulator;       ///< cached AccumulateGrad node (leaf)
  /// Called (id, hook) after a backward has accumulated into this leaf's .grad (see
  /// add_post_accumulate_grad_hook in ops/autograd/node.h); used by distributed::DataParallel.
  std::vector<std::pair<uint64_t, std::function<void(const Tensor&)>>> post_accumulate_hooks;
};

struct TensorImpl {
  Storage storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;  ///< in elements
  DType dtype = DType::f32;
  Device device;
  std::unique_ptr<AutogradMeta> autograd;

  AutogradMeta& meta();  ///< creates on first use
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  /// Pointer to the first element (storage base + offset). Host-dereferenceable only on CPU.
  void* data_ptr() const;
  template <class T> T* data() const {
    EMBER_CHECK(dtype() == dtype_of<T>(), "Tensor::data<", dtype_name(dtype_of<T>()), ">() on a tensor of dtype ",
                dtype_name(dtype()));
    return static_cast<T*>(data_ptr());
  }
  const Storage& storage() const { return impl().storage; }
  TensorImpl* unsafe_impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  /// True when both tensors are handles to the same TensorImpl.
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- autograd ----
  bool requires_grad() const;
  /// Marks a leaf as requiring grad. Throws on a non-leaf or a non-floating dtype.
  Tensor& set_requires_grad(bool r);
  bool is_leaf() const;
  /// The accumulated gradient of a leaf (undefined until a backward reaches it).
  Tensor grad() const;
  void set_grad(const Tensor& g);
  std::shared_ptr<Node> grad_fn() const;
  void set_grad_fn(std::shared_ptr<Node> fn);
  /// Runs backward from this tensor. A non-scalar needs `seed` of the same shape. The graph's saved
  /// tensors are released as nodes run and its edges are cut on return, unless retain_graph.
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;
  /// Same data, no history, requires_grad false.
  Tensor detach() const;

  // ---- views (share storage; differentiable) ----
  Tensor view(const Shape& shape) const;     ///< requires compatible strides (throws otherwise)
  Tensor reshape(const Shape& shape) const;  ///< view when possible, else a copy
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;  ///< this if contiguous, else a differentiable copy

  // ---- copies and conversion ----
  /// A copy on device `d` (this tensor when already there); differentiable; to(d, false).
  Tensor to(Device d) const;
  /// PyTorch's to(device, non_blocking). Host to device, the source may be written as soon as this
  /// returns unless non_blocking is true and the source is pinned: from pageable memory the source is
  /// staged at the call (the host never waits for the device), from pinned memory (pin_memory()) the
  /// copy is queued on the device's compute stream and reads the source when it runs; non_blocking =
  /// false then waits for it (one host synchronization), true returns at once (do not write into the
  /// source until the device has caught up). Device to host always returns when the copy is complete.
  Tensor to(Device d, bool non_blocking) const;
  Tensor to(DType t) const;   ///< differentiable between floating types
  Tensor clone() const;       ///< differentiable
  /// A contiguous copy in pinned (page-locked) host memory, from the CUDA backend's caching host
  /// allocator; this tensor when it is pinned already. Copies from it to a CUDA device are queued without
  /// blocking the host (to(Device)). Throws an Error for a tensor that is not on the CPU, for one that
  /// requires grad while grad mode is on (the copy is not recorded: detach() first), and without CUDA
  /// (a build without the CUDA backend, or no device), as PyTorch does.
  Tensor pin_memory() const;
  /// True when the storage is pinned host memory (pin_memory()); always false without CUDA.
  bool is_pinned() const;
  /// In-place copy (broadcasting src to this shape; converts dtype and device). Not recorded by autograd.
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  /// The value of a one-element tensor, as double.
  double item() const;
  /// All values, in logical (row-major) order, converted to T. Copies to host when needed.
  template <class T> std::vector<T> to_vector() const;
  std::string str() const;

  // ---- the ops of ops/ as methods, as in libtorch: x.sum() is sum(x) (defined in ops/tensor_methods.cpp) ----
  Tensor sum() const;
  Tensor sum(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor max(int64_t dim, bool keepdim = false) const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor pow(double exponent) const;
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor matmul(const Tensor& other) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;

 private:
  const TensorImpl& impl() const {
    EMBER_CHECK(impl_ != nullptr, "use of an undefined Tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

/// An ordered name -> tensor list: state_dict()s, named_parameters(), safetensors files, optimizer state.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// Human-readable description for error messages: "f32[2, 3] on cpu".
std::string describe(const Tensor& t);

// ---- factories ----
Tensor empty(const Shape& shape, const TensorOptions& opts = {});
Tensor zeros(const Shape& shape, const TensorOptions& opts = {});
Tensor ones(const Shape& shape, const TensorOptions& opts = {});
Tensor full(const Shape& shape, double value, const TensorOptions& opts = {});
Tensor arange(int64_t n, const TensorOptions& opts = {});
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
/// A CPU tensor holding `values` (converted to opts.dtype), then moved to opts.device.
Tensor from_vector(const std::vector<double>& values, const Shape& shape, const TensorOptions& opts = {});
Tensor from_vector(const std::vector<float>& values, const Shape& shape, const TensorOptions& opts = {});
Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, const TensorOptions& opts = {});
/// A braced list of numbers, e.g. from_vector({1, 2, 3, 4}, {2, 2}): the values as doubles, converted to
/// opts.dtype (the vector overloads alone make such a call ambiguous).
Tensor from_vector(std::initializer_list<double> values, const Shape& shape, const TensorOptions& opts = {});

/// Counter-based generator (Philox4x32-10): draw i of a call is a pure function of (seed, offset + i),
/// so CPU and CUDA produce identical numbers. Each draw advances the offset by the numel (rounded to 4).
struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;
  explicit Generator(uint64_t s = 0) : seed(s) {}
};
Generator& default_generator();
void manual_seed(uint64_t seed);
Tensor rand(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);   ///< U[0,1)
Tensor randn(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);  ///< N(0,1)
/// Fills in place with U[low, high) / N(mean, std) (used by nn::init). Not recorded by autograd.
void uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(Tensor& t, double mean, double std, Generator* gen = nullptr);

}  // namespace ember
