/// @file nn/embedding.h @brief nn::Embedding: a lookup table of num_embeddings rows of embedding_dim values (torch.nn.Embedding; weight N(0, 1)).
#pragma once
#include "nn/module.h"

namespace ember::nn {

struct EmbeddingOptions {
  int64_t num_embeddings = 0;
  int64_t embedding_dim = 0;
  DType dtype = DType::f32;
  Device device = Device::cpu();
  Generator* generator = nullptr;  ///< draws the initial weight; nullptr = the default generator
};

class Embedding : public Module {
 public:
  explicit Embedding(const EmbeddingOptions& o);
  Embedding(int64_t num_embeddings, int64_t embedding_dim) : Embedding(EmbeddingOptions{num_embeddings, embedding_dim}) {}
  /// indices i64 [...] -> [..., embedding_dim].
  Tensor forward(const Tensor& indices) override;
  std::string str() const override;

  Tensor weight;  ///< [num_embeddings, embedding_dim], initialized N(0, 1) as PyTorch
  EmbeddingOptions options;
};

}  // namespace ember::nn
