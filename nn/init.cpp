/// @file nn/init.cpp @brief PyTorch's default initializations.
#include "nn/init.h"

#include <cmath>

#include "core/grad_mode.h"

namespace ember::nn::init {

int64_t fan_in(const Tensor& w) {
  EMBER_CHECK(w.dim() >= 2, "fan_in: expected a weight with at least 2 dims, got ", describe(w));
  int64_t f = w.size(1);
  for (int64_t i = 2; i < w.dim(); ++i) f *= w.size(i);
  return f;
}

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  NoGradGuard ng;
  ember::uniform_(t, low, high, gen);
}

void kaiming_uniform_(Tensor& w, double a, Generator* gen) {
  const int64_t f = fan_in(w);
  EMBER_CHECK(f > 0, "kaiming_uniform_: fan_in is 0 for ", describe(w));
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(f));
  init::uniform_(w, -bound, bound, gen);
}

void default_weight_init(Tensor& w, Generator* gen) { kaiming_uniform_(w, std::sqrt(5.0), gen); }

void default_bias_init(Tensor& b, int64_t fan_in, Generator* gen) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  init::uniform_(b, -bound, bound, gen);
}

}  // namespace ember::nn::init
