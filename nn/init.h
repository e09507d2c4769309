/// @file nn/init.h @brief Parameter initialization as in PyTorch (kaiming_uniform_, uniform_, the Linear/Conv defaults), drawn from a seeded Generator.
#pragma once
#include "core/tensor.h"

namespace ember::nn::init {

/// fan_in of a weight: size(1) * receptive field (product of dims 2..).
int64_t fan_in(const Tensor& weight);
/// PyTorch's kaiming_uniform_(w, a): U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)).
void kaiming_uniform_(Tensor& w, double a = 0.0, Generator* gen = nullptr);
void uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
/// PyTorch's default init of Linear/Conv weights (kaiming_uniform_ with a = sqrt(5), i.e. U(+-1/sqrt(fan_in)))
/// and of their biases (U(+-1/sqrt(fan_in))).
void default_weight_init(Tensor& w, Generator* gen = nullptr);
void default_bias_init(Tensor& b, int64_t fan_in, Generator* gen = nullptr);

}  // namespace ember::nn::init
