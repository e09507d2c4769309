/// @file ops/autograd/node.h @brief Node (one recorded op of the dynamic tape), Edge, and the graph-building helpers.
#pragma once
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/grad_mode.h"
#include "core/tensor.h"

namespace ember {

class Node;

/// Where a gradient flows: the node `fn` that receives it (null for an input that needs no gradient).
/// A node has one output, so the edge needs no index of which output it came from.
struct Edge {
  std::shared_ptr<Node> fn;
  bool valid() const { return fn != nullptr; }
};

/// One differentiable op on the tape. Subclasses hold what backward needs as members and reset
/// them in release_saved(), which the engine calls right after the node ran (unless retain_graph).
class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  /// Given d(loss)/d(output), returns d(loss)/d(input_i) for each next_edges[i] (undefined = no grad).
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  virtual void release_saved() {}

  std::vector<Edge> next_edges;
  uint64_t sequence_nr;     ///< creation order; the engine runs later nodes first among the ready
  bool released = false;    ///< saved tensors freed: a second backward is an error
};

/// The sink for a leaf: adds the incoming gradient into leaf.grad in place (fused accumulate kernel).
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  /// What apply(grads[i]) does for each sinks[i], in one pass: a leaf's first gradient becomes its
  /// .grad (moved when nothing else references it, else copied once; no zero fill), the gradients of
  /// leaves whose .grad exists are added with one kernels::accumulate_many per device and dtype (one
  /// launch per chunk list on CUDA; the same per-element arithmetic as kernels::accumulate), then each
  /// leaf that received a gradient runs its post-accumulate hooks, in sinks order (undefined gradients
  /// are skipped, hooks included). Consumes (resets) the gradients it moves.
  static void apply_batch(std::span<AccumulateGrad* const> sinks, std::span<Tensor> grads);
  /// The leaf this node feeds (for nodes that write straight into .grad, e.g. a weight-gradient GEMM).
  Tensor leaf() const { return Tensor(leaf_); }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

/// The edge a gradient for `t` should flow to: its grad_fn, its AccumulateGrad, or none.
Edge gradient_edge(const Tensor& t);

/// True when grad mode is on and any input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

/// Connects `node` to its inputs (one edge each, in order) and makes it the grad_fn of `output`
/// (which then requires grad). Call only when any_requires_grad(inputs).
void record(const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs, Tensor& output);

/// Registers `hook(leaf)` to run each time a backward has finished accumulating into leaf.grad (as
/// PyTorch's register_post_accumulate_grad_hook); returns an id for removal. `leaf` must be a leaf.
uint64_t add_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor&)> hook);
/// Removes a hook added above (no-op when the id is unknown).
void remove_post_accumulate_grad_hook(const Tensor& leaf, uint64_t id);
/// Runs leaf's post-accumulate hooks. AccumulateGrad calls it; a node that writes a leaf's .grad
/// itself (a weight-gradient GEMM with beta = 1) must call it once the write is complete.
void notify_grad_accumulated(const Tensor& leaf);

/// Runs backward from `root` (see Tensor::backward).
void run_backward(const Tensor& root, const Tensor& seed, bool retain_graph);

}  // namespace ember
