/// @file benchmarks/cpu/model_layers.h @brief The GEMM-carrying layers of ember-train's MLP-BN and CNN-BN (examples/ember_train/models.cpp), their passes and FLOPs, for the gemm/ and layer/ rows.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::bench::cpu {

/// A Linear (in -> out features) or a stride-1 Conv2d with a square kernel (in -> out channels on a
/// size x size image, zero padding `pad`). A Linear is the 1 x 1 convolution of a 1 x 1 image, so both
/// lower to GEMMs with K = in * kernel^2 (im2col rows) and L = out_size^2 (im2col columns).
struct ModelLayer {
  std::string name;  ///< "<model>_<layer>", as in models.cpp: "mlp_fc1", "cnn_conv2"
  bool conv = false;
  int64_t in = 0, out = 0;
  int64_t size = 1, kernel = 1, pad = 0;

  int64_t out_size() const { return size + 2 * pad - kernel + 1; }
  int64_t gemm_k() const { return in * kernel * kernel; }
  int64_t gemm_l() const { return out_size() * out_size(); }
  /// FLOPs of one pass (forward, input gradient or weight gradient) over `batch` samples:
  /// 2 * N * Cout * Cin * KH * KW * OH * OW (2 * N * in * out for a Linear); bias terms not counted.
  double flops(int64_t batch) const { return 2.0 * double(batch) * double(out * gemm_k() * gemm_l()); }
};

/// The MLP-BN's three Linears and the CNN-BN's two convolutions and its Linear (28 x 28 inputs; the
/// CNN's conv2 sees the 14 x 14 output of pool1, its fc the 32 x 7 x 7 output of pool2).
inline std::vector<ModelLayer> model_layers() {
  return {
      {"mlp_fc1", false, 784, 512},
      {"mlp_fc2", false, 512, 256},
      {"mlp_fc3", false, 256, 10},
      {"cnn_conv1", true, 1, 16, 28, 3, 1},
      {"cnn_conv2", true, 16, 32, 14, 3, 1},
      {"cnn_fc", false, 1568, 10},
  };
}

/// The three GEMM passes of a layer: y = f(x, W), dx = df/dx (dy), dW = df/dW (dy).
enum class Pass { Forward, BackwardInput, BackwardWeight };
inline constexpr Pass kPasses[] = {Pass::Forward, Pass::BackwardInput, Pass::BackwardWeight};

inline const char* pass_name(Pass p) {
  switch (p) {
    case Pass::Forward: return "forward";
    case Pass::BackwardInput: return "backward_input";
    case Pass::BackwardWeight: return "backward_weight";
  }
  return "?";
}

}  // namespace ember::bench::cpu
