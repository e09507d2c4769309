/// @file nn/embedding.cpp @brief nn::Embedding.
#include "nn/embedding.h"

#include "ops/functional_embedding.h"

namespace ember::nn {

Embedding::Embedding(const EmbeddingOptions& o) : options(o) {
  EMBER_CHECK(o.num_embeddings > 0 && o.embedding_dim > 0, "Embedding: num_embeddings and embedding_dim must be positive, got ",
              o.num_embeddings, " and ", o.embedding_dim);
  Tensor w = empty({o.num_embeddings, o.embedding_dim}, TensorOptions{o.dtype, o.device});
  normal_(w, 0.0, 1.0, o.generator);
  weight = register_parameter("weight", w);
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(indices, weight); }

std::string Embedding::str() const {
  return "Embedding(" + std::to_string(options.num_embeddings) + ", " + std::to_string(options.embedding_dim) + ")";
}

}  // namespace ember::nn
