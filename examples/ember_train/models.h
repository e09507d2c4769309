/// @file examples/ember_train/models.h @brief The ember-train models (MLP, CNN, with or without batch norm; the GPT of ember-train-lm), named like their PyTorch twins, and their losses.
#pragma once
#include <memory>

#include "distributed/process_group.h"
#include "examples/ember_train/cli.h"
#include "core/tensor.h"
#include "nn/module.h"

namespace ember::train {

/// Builds the model of `o.model` / `o.norm` / `o.bn_stats`, initialized from Ember's default generator
/// (seed it first). Module names match PyTorch's state_dict of the same architecture:
///  mlp: fc1 Linear(784,512), bn1, ReLU, fc2 Linear(512,256), bn2, ReLU, fc3 Linear(256,10)
///  cnn: conv1 Conv2d(1,16,3,pad 1), bn1, ReLU, MaxPool 2, conv2 Conv2d(16,32,3,pad 1), bn2, ReLU,
///       MaxPool 2, Flatten, fc Linear(1568,10)
/// `--norm none` drops the bn layers; `--norm sync` makes them SyncBatchNorm over `group` (same names).
/// `--dropout P` (P > 0) adds Dropout(P) layers, which hold no state: mlp drop1 after relu1 and drop2 after
/// relu2, cnn drop before fc. They draw from the default generator, which the training loop sets per
/// micro-batch (micro_batch_generator).
/// Inputs are NCHW [N, 1, 28, 28]; the MLP flattens them itself.
/// gpt (ember-train-lm): examples/gpt's GPT (nanoGPT's names) with vocabulary 256 and o.lm's shape.
std::shared_ptr<nn::Module> build_model(const TrainOptions& o, std::shared_ptr<distributed::ProcessGroup> group);

/// A micro-batch's loss for GradAccumulator: the image models' mean cross-entropy over their `count`
/// samples (backward), or the GPT's SUM of per-token cross-entropies over its `count` real tokens
/// (backward_sum), so the window's gradient is that of the mean over all its real tokens.
struct LossTerms {
  Tensor loss;
  int64_t count = 0;
  bool is_sum = false;
};
/// Forward and loss of one micro-batch: x and y on the model's device, `y_host` the CPU targets (the GPT's
/// token count is taken there, without a host synchronization).
LossTerms micro_batch_loss(const TrainOptions& o, nn::Module& model, const Tensor& x, const Tensor& y,
                           const Tensor& y_host);

/// Evaluation totals over a test or validation set: loss terms, their summed loss and correct argmaxes.
struct EvalTotals {
  int64_t count = 0, correct = 0;
  double loss_sum = 0;
};
/// Adds one batch (no autograd): the logits' last dim is the class (byte) dim; targets equal to
/// data::kIgnoreIndex (the GPT's padding) are left out.
void add_eval_batch(nn::Module& model, const Tensor& x, const Tensor& y, EvalTotals& totals);

}  // namespace ember::train
