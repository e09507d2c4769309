/// @file examples/ember_train/models.h @brief The ember-train models (MLP, CNN, with or without batch norm), named like their PyTorch twins.
#pragma once
#include <memory>

#include "distributed/process_group.h"
#include "examples/ember_train/cli.h"
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
std::shared_ptr<nn::Module> build_model(const TrainOptions& o, std::shared_ptr<distributed::ProcessGroup> group);

}  // namespace ember::train
