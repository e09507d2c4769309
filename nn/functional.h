/// @file nn/functional.h @brief torch::nn::functional's names for Ember's differentiable ops (defined once, in ops/).
#pragma once
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/functional.h"
#include "ops/functional_conv.h"
#include "ops/functional_embedding.h"
#include "ops/functional_norm.h"

namespace ember::nn::functional {

using ember::BatchNormBatchStats;
using ember::BatchNormFuncOptions;
using ember::CrossEntropyOptions;
using ember::Reduction;

using ember::batch_norm;
using ember::conv2d;
using ember::count_not_ignored;
using ember::cross_entropy;
using ember::dropout;
using ember::embedding;
using ember::layer_norm;
using ember::linear;
using ember::max_pool2d;
using ember::mse_loss;
using ember::relu;
using ember::scaled_dot_product_attention;

}  // namespace ember::nn::functional
