/// @file ops/autograd/engine.cpp @brief The backward engine: dependency count, run ready nodes latest-first, sum incoming grads, accumulate leaf gradients that are ready together in one batch, free as it goes.
#include <queue>
#include <unordered_map>

#include "ops/autograd/node.h"
#include "kernels/accumulate.h"

namespace ember {

void run_backward(const Tensor& root, const Tensor& seed, bool retain_graph) {
  EMBER_CHECK(root.defined(), "backward: called on an undefined tensor");
  EMBER_CHECK(root.requires_grad(), "backward: ", describe(root),
              " does not require grad and has no grad_fn (did you run the forward under NoGradGuard?)");
  Tensor grad_root;
  if (seed.defined()) {
    EMBER_CHECK(seed.shape() == root.shape() && seed.dtype() == root.dtype() && seed.device() == root.device(),
                "backward: seed gradient ", describe(seed), " must match the output ", describe(root));
    grad_root = seed.detach();
  } else {
    EMBER_CHECK(root.numel() == 1, "backward: a seed gradient is required for a non-scalar output ", describe(root),
                " (pass a tensor of the same shape)");
    grad_root = ones(root.shape(), TensorOptions{root.dtype(), root.device()});
  }

  NoGradGuard no_grad;  // backward formulas are not themselves recorded
  Edge root_edge = gradient_edge(root);

  // Count incoming edges of every reachable node.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root_edge.fn.get()};
  deps[root_edge.fn.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    EMBER_CHECK(!n->released, "backward: the graph through ", n->name(),
                " was already freed by an earlier backward; pass retain_graph=true to backward twice");
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      auto [it, inserted] = deps.try_emplace(e.fn.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(e.fn.get());
    }
  }

  // Ready queue: latest-created node first (reverse topological order of the forward).
  auto later = [](const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) {
    return a->sequence_nr < b->sequence_nr;
  };
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, decltype(later)> ready(later);
  std::unordered_map<Node*, Tensor> pending;  // summed gradient waiting for each node
  pending[root_edge.fn.get()] = grad_root;
  ready.push(root_edge.fn);

  // Takes the summed gradient waiting for node n (undefined when none arrived).
  auto take_pending = [&](Node* n) {
    auto it = pending.find(n);
    if (it == pending.end()) return Tensor();
    Tensor g = std::move(it->second);
    pending.erase(it);
    return g;
  };

  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    if (auto* sink = dynamic_cast<AccumulateGrad*>(node.get())) {
      // Leaf sinks that are ready together (consecutive at the top of the queue, e.g. a layer's weight
      // and bias right after the node that produced both) are accumulated in one batch: one
      // accumulate_many launch instead of one per leaf. Nothing runs between them either way, so the
      // post-accumulate hooks (DataParallel's bucket readiness) fire at the same point of the backward.
      std::vector<std::shared_ptr<Node>> batch{node};
      std::vector<AccumulateGrad*> sinks{sink};
      while (!ready.empty()) {
        auto* next = dynamic_cast<AccumulateGrad*>(ready.top().get());
        if (next == nullptr) break;
        batch.push_back(ready.top());
        sinks.push_back(next);
        ready.pop();
      }
      std::vector<Tensor> grads;
      grads.reserve(sinks.size());
      for (AccumulateGrad* s : sinks) grads.push_back(take_pending(s));
      AccumulateGrad::apply_batch(sinks, grads);
      continue;  // a sink has no next edges and keeps its (empty) state
    }
    Tensor g = take_pending(node.get());
    std::vector<Tensor> grads = g.defined() ? node->apply(g) : std::vector<Tensor>(node->next_edges.size());
    g = Tensor();
    EMBER_CHECK(grads.size() == node->next_edges.size() || grads.empty(), "backward: ", node->name(), " returned ",
                grads.size(), " gradients for ", node->next_edges.size(), " inputs");
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      Tensor gi = grads.empty() ? Tensor() : std::move(grads[i]);
      if (gi.defined()) {
        auto& slot = pending[e.fn.get()];
        if (!slot.defined()) {
          slot = std::move(gi);
        } else {
          // Sum of two paths: add in place into the first buffer when we own it exclusively.
          if (slot.is_contiguous() && gi.is_contiguous() && slot.storage().use_count() == 1 &&
              slot.shape() == gi.shape()) {
            kernels::accumulate(slot, gi, 1.0);
          } else {
            Tensor sum = slot.contiguous().clone();
            kernels::accumulate(sum, gi.contiguous(), 1.0);
            slot = std::move(sum);
          }
        }
      }
      if (--deps[e.fn.get()] == 0) ready.push(e.fn);
    }
    if (!retain_graph) {
      node->release_saved();
      node->released = true;
      node->next_edges.clear();  // drops the rest of the graph as soon as nothing else holds it
    }
  }
}

}  // namespace ember
