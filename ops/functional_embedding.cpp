/// @file ops/functional_embedding.cpp @brief embedding forward and its backward node (writes the weight gradient straight into .grad).
#include "ops/functional_embedding.h"

#include "ops/autograd/fused_grad.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"

namespace ember {
namespace {

class EmbeddingBackward final : public Node {
 public:
  Tensor indices;  // detached, contiguous, flat [n]
  Shape weight_shape;
  std::string name() const override { return "EmbeddingBackward"; }
  void release_saved() override { indices = Tensor(); }
  std::vector<Tensor> apply(const Tensor& grad_output) override {
    if (!next_edges[0].valid()) return {Tensor()};
    const Tensor g = grad_output.contiguous().view({indices.numel(), weight_shape[1]});
    // Rows are added into W.grad in place when W is a leaf; otherwise into a zeroed fresh gradient.
    GradTarget t(next_edges[0], weight_shape, TensorOptions{g.dtype(), g.device()});
    if (!t.has_values) kernels::fill(t.buffer, 0.0);
    kernels::embedding_backward(indices, g, t.buffer);
    return {t.finish()};
  }
};

}  // namespace

Tensor embedding(const Tensor& indices, const Tensor& weight) {
  EMBER_CHECK(indices.defined() && weight.defined(), "embedding: undefined indices or weight");
  EMBER_CHECK(indices.dtype() == DType::i64, "embedding: indices must be i64, got ", describe(indices));
  EMBER_CHECK(weight.dim() == 2, "embedding: weight must be [num_embeddings, embedding_dim], got ", describe(weight));
  const Tensor ic = indices.detach().contiguous().reshape({indices.numel()});
  const Tensor wc = weight.detach().contiguous();
  Shape out_shape = indices.shape();
  out_shape.push_back(weight.size(1));
  Tensor out = empty({indices.numel(), weight.size(1)}, TensorOptions{weight.dtype(), weight.device()});
  kernels::embedding_forward(ic, wc, out);
  out = out.view(out_shape);
  if (any_requires_grad({&weight})) {
    auto node = std::make_shared<EmbeddingBackward>();
    node->indices = ic;
    node->weight_shape = weight.shape();
    record(node, {&weight}, out);
  }
  return out;
}

}  // namespace ember
