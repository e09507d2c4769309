/// @file examples/ember_train/models.cpp @brief MLP and CNN built from nn layers under PyTorch-compatible names, the GPT, their training and evaluation losses.
#include "examples/ember_train/models.h"

#include <utility>
#include <vector>

#include "core/grad_mode.h"
#include "data/text.h"
#include "distributed/sync_batchnorm.h"
#include "examples/gpt/gpt.h"
#include "nn/functional.h"
#include "ops/reduce.h"
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/pooling.h"

namespace ember::train {

namespace {

/// A chain of named layers: each registered under its own name (so state_dict keys are "fc1.weight",
/// not Sequential's "0.weight"), forward applies them in order.
class NamedChain final : public nn::Module {
 public:
  explicit NamedChain(std::string what) : what_(std::move(what)) {}
  void add(const std::string& name, std::shared_ptr<nn::Module> m) { layers_.push_back(register_module(name, m)); }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (const auto& l : layers_) h = l->forward(h);
    return h;
  }
  std::string str() const override { return what_; }

 private:
  std::string what_;
  std::vector<std::shared_ptr<nn::Module>> layers_;
};

/// The batch-norm layer of `--norm batch|sync` over `channels` (BatchNorm1d/2d: `image` selects 2d).
std::shared_ptr<nn::Module> norm_layer(const TrainOptions& o, const std::shared_ptr<distributed::ProcessGroup>& group,
                                       int64_t channels, bool image) {
  if (o.norm == NormKind::Sync) return std::make_shared<distributed::SyncBatchNorm>(channels, group);
  nn::BatchNormOptions b;
  b.window_stats = o.bn_stats == BnStats::Window;
  if (image) return std::make_shared<nn::BatchNorm2d>(channels, b);
  return std::make_shared<nn::BatchNorm1d>(channels, b);
}

}  // namespace

std::shared_ptr<nn::Module> build_model(const TrainOptions& o, std::shared_ptr<distributed::ProcessGroup> group) {
  if (o.model == ModelKind::GPT)
    return std::make_shared<gpt::GPT>(gpt::GPTConfig{.vocab_size = 256, .block_size = o.lm.block_size,
                                                     .n_layer = o.lm.layers, .n_head = o.lm.heads,
                                                     .n_embd = o.lm.dim, .dropout = o.dropout});
  EMBER_CHECK(o.norm != NormKind::Sync || group != nullptr, "--norm sync: needs a process group");
  const bool bn = o.norm != NormKind::None;
  auto net = std::make_shared<NamedChain>(o.model == ModelKind::MLP ? "MLP" : "CNN");
  if (o.model == ModelKind::MLP) {
    net->add("flatten", std::make_shared<nn::Flatten>());
    net->add("fc1", std::make_shared<nn::Linear>(784, 512));
    if (bn) net->add("bn1", norm_layer(o, group, 512, false));
    net->add("relu1", std::make_shared<nn::ReLU>());
    if (o.dropout > 0) net->add("drop1", std::make_shared<nn::Dropout>(o.dropout));
    net->add("fc2", std::make_shared<nn::Linear>(512, 256));
    if (bn) net->add("bn2", norm_layer(o, group, 256, false));
    net->add("relu2", std::make_shared<nn::ReLU>());
    if (o.dropout > 0) net->add("drop2", std::make_shared<nn::Dropout>(o.dropout));
    net->add("fc3", std::make_shared<nn::Linear>(256, 10));
  } else {
    net->add("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions{.in_channels = 1, .out_channels = 16,
                                                                     .kernel_size = 3, .padding = 1}));
    if (bn) net->add("bn1", norm_layer(o, group, 16, true));
    net->add("relu1", std::make_shared<nn::ReLU>());
    net->add("pool1", std::make_shared<nn::MaxPool2d>(2));
    net->add("conv2", std::make_shared<nn::Conv2d>(nn::Conv2dOptions{.in_channels = 16, .out_channels = 32,
                                                                     .kernel_size = 3, .padding = 1}));
    if (bn) net->add("bn2", norm_layer(o, group, 32, true));
    net->add("relu2", std::make_shared<nn::ReLU>());
    net->add("pool2", std::make_shared<nn::MaxPool2d>(2));
    net->add("flatten", std::make_shared<nn::Flatten>());
    if (o.dropout > 0) net->add("drop", std::make_shared<nn::Dropout>(o.dropout));
    net->add("fc", std::make_shared<nn::Linear>(1568, 10));
  }
  return net;
}

LossTerms micro_batch_loss(const TrainOptions& o, nn::Module& model, const Tensor& x, const Tensor& y,
                           const Tensor& y_host) {
  if (o.model != ModelKind::GPT)
    return {nn::functional::cross_entropy(model.forward(x), y), y_host.numel(), false};  // mean over the samples
  const Tensor logits = model.forward(x);  // [B, T, 256]
  const Tensor loss = nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), y.reshape({-1}),
      nn::functional::CrossEntropyOptions{.reduction = nn::functional::Reduction::Sum, .ignore_index = data::kIgnoreIndex});
  return {loss, nn::functional::count_not_ignored(y_host, data::kIgnoreIndex), true};
}

void add_eval_batch(nn::Module& model, const Tensor& x, const Tensor& y, EvalTotals& totals) {
  NoGradGuard no_grad;
  Tensor logits = model.forward(x);
  logits = logits.reshape({-1, logits.size(-1)});
  const Tensor targets = y.reshape({-1});
  totals.loss_sum += nn::functional::cross_entropy(logits, targets,
                                                   nn::functional::CrossEntropyOptions{
                                                       .reduction = nn::functional::Reduction::Sum,
                                                       .ignore_index = data::kIgnoreIndex})
                         .item();
  const auto pred = argmax(logits, 1).to_vector<int64_t>();
  const auto truth = targets.to(Device::cpu()).to_vector<int64_t>();
  for (size_t i = 0; i < pred.size(); ++i) {
    if (truth[i] == data::kIgnoreIndex) continue;
    ++totals.count;
    totals.correct += pred[i] == truth[i];
  }
}

}  // namespace ember::train
