/// @file benchmarks/param_lists.h @brief The parameter lists the multi-tensor benchmarks run over (ember-train's CNN and MLP with batch norm, a 100M-parameter transformer-like list) and the batch-norm shapes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/shape.h"

namespace ember::bench {

struct ParamList {
  std::string name;           ///< "cnn", "mlp", "100m"
  std::vector<Shape> shapes;  ///< one entry per parameter tensor, in registration order
  int64_t numel() const;
};

/// The parameters of ember-train's `--model cnn --norm batch` (conv1, bn1, conv2, bn2, fc: 10 tensors),
/// taken from the nn layers themselves so the list cannot drift from the model.
ParamList cnn_params();
/// The parameters of ember-train's `--model mlp --norm batch` (fc1, bn1, fc2, bn2, fc3: 10 tensors).
ParamList mlp_params();
/// 8 transformer blocks of width 1024 (qkv, proj, two MLP matrices with biases, two layer norms):
/// 100.8M parameters in 96 tensors, the size class where fused multi-tensor passes are meant to pay.
ParamList large_params();

/// All three, in the order above.
std::vector<ParamList> all_param_lists();

/// A batch-norm input the BN benchmarks run: the two models' BN layers at micro-batch 32 and a large one.
struct BnCase {
  std::string name;
  Shape shape;  ///< [N, C] or [N, C, H, W]
};
/// mlp_bn1 [32, 512], cnn_bn1 [32, 16, 28, 28], cnn_bn2 [32, 32, 14, 14], large [large_batch, 64, 56, 56].
std::vector<BnCase> bn_cases(int64_t large_batch);

}  // namespace ember::bench
