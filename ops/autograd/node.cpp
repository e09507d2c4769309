/// @file ops/autograd/node.cpp @brief Grad mode, Node bookkeeping, AccumulateGrad (in-place fused accumulate) and graph recording.
#include "ops/autograd/node.h"

#include <algorithm>
#include <atomic>

#include "kernels/accumulate.h"

namespace ember {

namespace {
thread_local bool grad_mode_enabled = true;
std::atomic<uint64_t> next_sequence_nr{0};
}  // namespace

bool GradMode::is_enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool enabled) { grad_mode_enabled = enabled; }

Node::Node() : sequence_nr(next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

namespace {

/// The gradient g as a leaf's first .grad without a zero fill and an add: g itself when nothing else can
/// see it (the engine holds the only reference to its TensorImpl and that impl the only reference to a
/// storage exactly its size, contiguous from offset 0), else one contiguous copy.
std::shared_ptr<TensorImpl> first_grad(const Tensor& g) {
  const bool exclusive = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous() &&
                         g.offset() == 0 && g.storage()->bytes() == g.nbytes();
  return exclusive ? g.detach().impl_ptr() : g.clone().impl_ptr();
}

/// True when t's bytes overlap those of any of ts (the .grads of DataParallel are views of one bucket:
/// distinct ranges of one storage, which may be added in one launch).
bool overlaps_any(const std::vector<Tensor>& ts, const Tensor& t) {
  const auto* lo = static_cast<const char*>(t.data_ptr());
  const auto* hi = lo + t.nbytes();
  return std::any_of(ts.begin(), ts.end(), [&](const Tensor& o) {
    const auto* olo = static_cast<const char*>(o.data_ptr());
    return olo < hi && lo < olo + o.nbytes();
  });
}

}  // namespace

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  AccumulateGrad* self = this;
  Tensor g = grad_output;
  apply_batch(std::span<AccumulateGrad* const>(&self, 1), std::span<Tensor>(&g, 1));
  return {};
}

void AccumulateGrad::apply_batch(std::span<AccumulateGrad* const> sinks, std::span<Tensor> grads) {
  EMBER_CHECK(sinks.size() == grads.size(), "AccumulateGrad: ", sinks.size(), " leaves but ", grads.size(),
              " gradients");
  NoGradGuard no_grad;
  // Leaves whose .grad exists, added with one accumulate_many per (device, dtype) run: dsts[i] += srcs[i].
  std::vector<Tensor> dsts, srcs;
  auto flush = [&] {
    if (!dsts.empty()) kernels::accumulate_many(dsts, std::span<const Tensor>(srcs.data(), srcs.size()), 1.0);
    dsts.clear();
    srcs.clear();
  };
  std::vector<bool> received(sinks.size(), false);
  for (size_t i = 0; i < sinks.size(); ++i) {
    Tensor& g = grads[i];
    if (!g.defined()) continue;
    received[i] = true;
    TensorImpl& leaf = *sinks[i]->leaf_;
    EMBER_CHECK(g.shape() == leaf.shape, "AccumulateGrad: gradient ", describe(g),
                " does not match the leaf's shape ", shape_str(leaf.shape));
    EMBER_CHECK(g.dtype() == leaf.dtype && g.device() == leaf.device, "AccumulateGrad: gradient ", describe(g),
                " does not match the leaf's ", dtype_name(leaf.dtype), " on ", leaf.device);
    AutogradMeta& m = leaf.meta();
    if (!m.grad) {
      // First gradient of this leaf: it becomes .grad (later backwards add into it in place).
      m.grad = first_grad(g);
      g = Tensor();
      continue;
    }
    Tensor grad(m.grad);
    const bool other_group = !dsts.empty() && (dsts.front().device() != grad.device() ||
                                               dsts.front().dtype() != grad.dtype());
    // One launch per device and dtype, and never two adds into one element in a launch.
    if (other_group || overlaps_any(dsts, grad)) flush();
    dsts.push_back(std::move(grad));
    srcs.push_back(g.is_contiguous() ? g : g.contiguous());
  }
  flush();
  for (size_t i = 0; i < sinks.size(); ++i)
    if (received[i] && !sinks[i]->leaf_->meta().post_accumulate_hooks.empty())
      notify_grad_accumulated(Tensor(sinks[i]->leaf_));
}

uint64_t add_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor&)> hook) {
  static std::atomic<uint64_t> next_id{1};
  EMBER_CHECK(leaf.defined() && leaf.is_leaf(), "add_post_accumulate_grad_hook: ",
              leaf.defined() ? describe(leaf) : std::string("an undefined tensor"), " is not a leaf");
  EMBER_CHECK(static_cast<bool>(hook), "add_post_accumulate_grad_hook: empty hook for ", describe(leaf));
  const uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
  leaf.unsafe_impl()->meta().post_accumulate_hooks.emplace_back(id, std::move(hook));
  return id;
}

void remove_post_accumulate_grad_hook(const Tensor& leaf, uint64_t id) {
  if (!leaf.defined() || !leaf.unsafe_impl()->autograd) return;
  auto& hooks = leaf.unsafe_impl()->autograd->post_accumulate_hooks;
  std::erase_if(hooks, [id](const auto& h) { return h.first == id; });
}

void notify_grad_accumulated(const Tensor& leaf) {
  if (!leaf.defined() || !leaf.unsafe_impl()->autograd) return;
  // Copy: a hook may add or remove hooks.
  const auto hooks = leaf.unsafe_impl()->autograd->post_accumulate_hooks;
  for (const auto& h : hooks) h.second(leaf);
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return Edge{};
  if (auto fn = t.grad_fn()) return Edge{fn};
  AutogradMeta& m = t.unsafe_impl()->meta();
  auto acc = m.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    m.grad_accumulator = acc;
  }
  return Edge{acc};
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs, Tensor& output) {
  node->next_edges.clear();
  for (const Tensor* t : inputs) node->next_edges.push_back(t ? gradient_edge(*t) : Edge{});
  output.set_grad_fn(node);
}

// ---------------------------------------------------------------- Tensor autograd members
bool Tensor::requires_grad() const {
  const auto& a = impl().autograd;
  return a && (a->requires_grad || a->grad_fn);
}

Tensor& Tensor::set_requires_grad(bool r) {
  EMBER_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad (", describe(*this),
              " was produced by ", grad_fn()->name(), "); use detach() first");
  EMBER_CHECK(!r || is_floating(dtype()), "set_requires_grad: only floating tensors can require grad, got ",
              describe(*this));
  unsafe_impl()->meta().requires_grad = r;
  return *this;
}

bool Tensor::is_leaf() const {
  const auto& a = impl().autograd;
  return !a || !a->grad_fn;
}

Tensor Tensor::grad() const {
  const auto& a = impl().autograd;
  return a && a->grad ? Tensor(a->grad) : Tensor();
}

void Tensor::set_grad(const Tensor& g) {
  if (g.defined())
    EMBER_CHECK(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(), "set_grad: gradient ",
                describe(g), " does not match tensor ", describe(*this));
  unsafe_impl()->meta().grad = g.impl_ptr();
}

std::shared_ptr<Node> Tensor::grad_fn() const {
  const auto& a = impl().autograd;
  return a ? a->grad_fn : nullptr;
}

void Tensor::set_grad_fn(std::shared_ptr<Node> fn) { unsafe_impl()->meta().grad_fn = std::move(fn); }

void Tensor::backward(const Tensor& seed, bool retain_graph) const { run_backward(*this, seed, retain_graph); }

Tensor Tensor::detach() const {
  auto impl2 = std::make_shared<TensorImpl>();
  impl2->storage = impl().storage;
  impl2->shape = impl().shape;
  impl2->strides = impl().strides;
  impl2->offset = impl().offset;
  impl2->dtype = impl().dtype;
  impl2->device = impl().device;
  return Tensor(std::move(impl2));
}

}  // namespace ember
