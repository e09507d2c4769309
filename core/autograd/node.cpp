/// @file core/autograd/node.cpp @brief Grad mode, Node bookkeeping, AccumulateGrad (in-place fused accumulate) and graph recording.
#include "core/autograd/node.h"

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

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  AutogradMeta& m = leaf_->meta();
  Tensor g = grad_output;
  EMBER_CHECK(g.shape() == leaf_->shape, "AccumulateGrad: gradient ", describe(g), " does not match the leaf's shape ",
              shape_str(leaf_->shape));
  if (!m.grad) {
    // First gradient: allocate .grad once; later micro-batches add into it in place.
    Tensor fresh = zeros(leaf_->shape, TensorOptions{leaf_->dtype, leaf_->device});
    m.grad = fresh.impl_ptr();
  }
  Tensor grad(m.grad);
  NoGradGuard no_grad;
  kernels::accumulate(grad, g.is_contiguous() ? g : g.contiguous(), 1.0);
  if (!m.post_accumulate_hooks.empty()) notify_grad_accumulated(Tensor(leaf_));
  return {};
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
