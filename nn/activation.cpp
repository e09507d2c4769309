/// @file nn/activation.cpp @brief ReLU, GELU, SiLU, Softplus, Flatten, Dropout layers.
#include "nn/activation.h"

#include "nn/functional.h"
#include "ops/elementwise.h"

namespace ember::nn {

Tensor ReLU::forward(const Tensor& x) { return functional::relu(x); }

GELU::GELU(std::string approximate) : approximate_(std::move(approximate)) {
  EMBER_CHECK(approximate_ == "none" || approximate_ == "tanh", "GELU: approximate must be \"none\" or \"tanh\", got \"",
              approximate_, "\"");
}
Tensor GELU::forward(const Tensor& x) { return ember::gelu(x, approximate_); }
Tensor SiLU::forward(const Tensor& x) { return ember::silu(x); }
Tensor Softplus::forward(const Tensor& x) { return ember::softplus(x); }

Tensor Flatten::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() > start_dim_ || start_dim_ < 0, "Flatten: input ", describe(x),
              " has no dim ", start_dim_);
  return x.flatten(start_dim_, end_dim_);
}

Dropout::Dropout(double p, Generator* gen) : p_(p), gen_(gen) {
  EMBER_CHECK(p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return functional::dropout(x, p_, is_training(), gen_); }

}  // namespace ember::nn
