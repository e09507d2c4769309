/// @file examples/gpt/gpt.cpp @brief ember::gpt::GPT (nanoGPT's layout and init on Ember's layers), the nanoGPT state_dict adapter, and byte-level sampling.
#include "examples/gpt/gpt.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "core/grad_mode.h"
#include "nn/functional.h"

namespace ember::gpt {
namespace {

constexpr double kInitStd = 0.02;  // nanoGPT's _init_weights

void check_config(const GPTConfig& c) {
  EMBER_CHECK(c.vocab_size > 0 && c.block_size > 0 && c.n_layer > 0 && c.n_head > 0 && c.n_embd > 0,
              "GPT: vocab_size, block_size, n_layer, n_head and n_embd must be positive, got vocab_size=",
              c.vocab_size, " block_size=", c.block_size, " n_layer=", c.n_layer, " n_head=", c.n_head,
              " n_embd=", c.n_embd);
  EMBER_CHECK(c.n_embd % c.n_head == 0, "GPT: n_embd (", c.n_embd, ") must be a multiple of n_head (", c.n_head, ")");
  EMBER_CHECK(c.dropout >= 0.0 && c.dropout < 1.0, "GPT: dropout must be in [0, 1), got ", c.dropout);
  EMBER_CHECK(is_floating(c.dtype), "GPT: dtype must be floating, got ", dtype_name(c.dtype));
}

nn::LinearOptions linear_options(const GPTConfig& c, int64_t in, int64_t out) {
  return nn::LinearOptions{in, out, c.bias, c.dtype, c.device};
}

std::shared_ptr<nn::LayerNorm> layer_norm(const GPTConfig& c) {
  return std::make_shared<nn::LayerNorm>(nn::LayerNormOptions{.normalized_shape = {c.n_embd}, .bias = c.bias,
                                                              .dtype = c.dtype, .device = c.device});
}

std::shared_ptr<nn::Dropout> dropout_or_null(const GPTConfig& c) {
  return c.dropout > 0.0 ? std::make_shared<nn::Dropout>(c.dropout) : nullptr;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// nanoGPT's causal-mask buffer name: transformer.h.<digits>.attn.bias.
bool is_mask_buffer(const std::string& name) {
  const std::string head = "transformer.h.", tail = ".attn.bias";
  if (name.rfind(head, 0) != 0 || !ends_with(name, tail) || name.size() <= head.size() + tail.size()) return false;
  const std::string layer = name.substr(head.size(), name.size() - head.size() - tail.size());
  return std::all_of(layer.begin(), layer.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

}  // namespace

MLP::MLP(const GPTConfig& c) {
  c_fc = register_module("c_fc", std::make_shared<nn::Linear>(linear_options(c, c.n_embd, 4 * c.n_embd)));
  gelu = register_module("gelu", std::make_shared<nn::GELU>());  // exact (erf), as nanoGPT's nn.GELU()
  c_proj = register_module("c_proj", std::make_shared<nn::Linear>(linear_options(c, 4 * c.n_embd, c.n_embd)));
  if ((dropout = dropout_or_null(c))) register_module("dropout", dropout);
}

Tensor MLP::forward(const Tensor& x) {
  const Tensor y = c_proj->forward(gelu->forward(c_fc->forward(x)));
  return dropout ? dropout->forward(y) : y;
}

Block::Block(const GPTConfig& c) {
  ln_1 = register_module("ln_1", layer_norm(c));
  attn = register_module("attn", std::make_shared<nn::CausalSelfAttention>(nn::CausalSelfAttentionOptions{
                                     c.n_embd, c.n_head, c.bias, c.dtype, c.device}));
  ln_2 = register_module("ln_2", layer_norm(c));
  mlp = register_module("mlp", std::make_shared<MLP>(c));
  if ((resid_dropout = dropout_or_null(c))) register_module("resid_dropout", resid_dropout);
}

Tensor Block::forward(const Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1), c = x.size(2);
  Tensor a = attn->forward(ln_1->forward(x));
  if (resid_dropout) a = resid_dropout->forward(a);
  const Tensor h = x + a;
  return h + mlp->forward(ln_2->forward(h).reshape({b * t, c})).view({b, t, c});  // Linear takes [N, C]
}

Transformer::Transformer(const GPTConfig& c) {
  wte = register_module("wte", std::make_shared<nn::Embedding>(
                                   nn::EmbeddingOptions{c.vocab_size, c.n_embd, c.dtype, c.device}));
  wpe = register_module("wpe", std::make_shared<nn::Embedding>(
                                   nn::EmbeddingOptions{c.block_size, c.n_embd, c.dtype, c.device}));
  if ((drop = dropout_or_null(c))) register_module("drop", drop);
  h = register_module("h", std::make_shared<nn::Sequential>());
  for (int64_t i = 0; i < c.n_layer; ++i) h->push_back(std::make_shared<Block>(c));
  ln_f = register_module("ln_f", layer_norm(c));
}

GPT::GPT(const GPTConfig& c) : config_((check_config(c), c)) {
  transformer = register_module("transformer", std::make_shared<Transformer>(c));
  init_weights();
}

void GPT::init_weights() {
  // nanoGPT's _init_weights and its scaled c_proj init, in named_parameters order from the default
  // generator (the layers' own default draws are overwritten).
  NoGradGuard no_grad;
  const double proj_std = kInitStd / std::sqrt(2.0 * static_cast<double>(config_.n_layer));
  for (auto& [name, p] : named_parameters()) {
    if (name.find(".ln_") != std::string::npos) continue;  // LayerNorm: weight 1, bias 0 already
    if (ends_with(name, ".bias")) {
      p.zero_();
    } else {
      normal_(p, 0.0, ends_with(name, "c_proj.weight") ? proj_std : kInitStd);
    }
  }
}

void GPT::check_input(const Tensor& idx) const {
  EMBER_CHECK(idx.defined() && idx.dtype() == DType::i64 && idx.dim() == 2,
              "GPT: idx must be i64 token ids [B, T], got ", idx.defined() ? describe(idx) : "an undefined tensor");
  EMBER_CHECK(idx.size(0) >= 1 && idx.size(1) >= 1, "GPT: idx must have B >= 1 and T >= 1, got ", describe(idx));
  EMBER_CHECK(idx.size(1) <= config_.block_size, "GPT: sequence length T=", idx.size(1), " exceeds block_size ",
              config_.block_size);
  EMBER_CHECK(idx.device() == device(), "GPT: idx is on ", idx.device(), ", the model on ", device());  // after to()
  if (idx.device() != Device::cpu()) return;  // the embedding's device check reports a bad id there
  const std::vector<int64_t> ids = idx.contiguous().to_vector<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i)
    EMBER_CHECK(ids[i] >= 0 && ids[i] < config_.vocab_size, "GPT: token id ", ids[i], " at idx[",
                static_cast<int64_t>(i) / idx.size(1), ", ", static_cast<int64_t>(i) % idx.size(1),
                "] is outside the vocabulary [0, ", config_.vocab_size, ")");
}

Tensor GPT::forward(const Tensor& idx) {
  check_input(idx);
  const int64_t b = idx.size(0), t = idx.size(1), c = config_.n_embd;
  const Tensor pos = arange(t, TensorOptions{DType::i64, idx.device()});
  Tensor x = transformer->wte->forward(idx) + transformer->wpe->forward(pos);  // [B, T, C] + [T, C]
  if (transformer->drop) x = transformer->drop->forward(x);
  x = transformer->ln_f->forward(transformer->h->forward(x));
  // lm_head: the tied weight, no bias; its weight gradient adds into wte.weight's .grad.
  return nn::functional::linear(x.reshape({b * t, c}), transformer->wte->weight).view({b, t, config_.vocab_size});
}

int64_t GPT::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

std::string GPT::str() const {
  return "GPT(vocab_size=" + std::to_string(config_.vocab_size) + ", block_size=" +
         std::to_string(config_.block_size) + ", n_layer=" + std::to_string(config_.n_layer) + ", n_head=" +
         std::to_string(config_.n_head) + ", n_embd=" + std::to_string(config_.n_embd) + ")";
}

NamedTensors from_nanogpt_state_dict(const NamedTensors& state) {
  Tensor wte, lm_head;
  NamedTensors out;
  for (const auto& [name, t] : state) {
    if (name == "lm_head.weight") {
      lm_head = t;
      continue;
    }
    if (is_mask_buffer(name)) continue;
    if (name == "transformer.wte.weight") wte = t;
    out.emplace_back(name, t);
  }
  if (lm_head.defined()) {
    EMBER_CHECK(wte.defined(), "from_nanogpt_state_dict: lm_head.weight without transformer.wte.weight");
    EMBER_CHECK(lm_head.shape() == wte.shape() &&
                    lm_head.to(DType::f64).to_vector<double>() == wte.to(DType::f64).to_vector<double>(),
                "from_nanogpt_state_dict: lm_head.weight ", describe(lm_head),
                " differs from transformer.wte.weight ", describe(wte),
                " (the GPT ties them: one tensor, saved once as transformer.wte.weight)");
  }
  return out;
}

int64_t sample_token(const std::vector<double>& logits, double temperature, int64_t top_k, double u) {
  EMBER_CHECK(!logits.empty(), "sample_token: no logits");
  EMBER_CHECK(u >= 0.0 && u < 1.0, "sample_token: u must be in [0, 1), got ", u);
  const auto argmax = std::max_element(logits.begin(), logits.end()) - logits.begin();  // the first maximum
  if (temperature <= 0.0) return argmax;
  std::vector<double> z(logits);
  for (double& v : z) v /= temperature;
  if (top_k > 0 && top_k < static_cast<int64_t>(z.size())) {
    // As nanoGPT: logits below the k-th largest are dropped (ties with it stay).
    std::vector<double> sorted(z);
    std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<double>());
    const double kth = sorted[static_cast<size_t>(top_k - 1)];
    for (double& v : z)
      if (v < kth) v = -std::numeric_limits<double>::infinity();
  }
  const double m = *std::max_element(z.begin(), z.end());
  double total = 0.0;
  for (double& v : z) total += (v = std::exp(v - m));
  // Inverse CDF: the first token whose cumulative probability exceeds u.
  double cumulative = 0.0;
  for (size_t i = 0; i < z.size(); ++i)
    if (z[i] > 0.0 && u * total < (cumulative += z[i])) return static_cast<int64_t>(i);
  return argmax;  // rounding left u * total at the very top: the most likely token (a real one)
}

std::string generate(GPT& model, const std::string& prompt, int64_t n, double temperature, int64_t top_k,
                     Generator& gen) {
  const GPTConfig& c = model.config();
  EMBER_CHECK(!prompt.empty(), "generate: the prompt must not be empty (the model needs a first token)");
  EMBER_CHECK(n >= 0, "generate: n (bytes to sample) must be >= 0, got ", n);
  EMBER_CHECK(std::isfinite(temperature), "generate: temperature must be finite, got ", temperature);
  EMBER_CHECK(c.vocab_size <= 256, "generate: a byte-level model needs vocab_size <= 256, got ", c.vocab_size);
  std::vector<int64_t> tokens;
  for (const unsigned char ch : prompt) {
    EMBER_CHECK(ch < c.vocab_size, "generate: prompt byte ", static_cast<int>(ch), " is outside the vocabulary [0, ",
                c.vocab_size, ")");
    tokens.push_back(ch);
  }
  struct RestoreMode {  // back to training mode even when a step throws
    GPT& model;
    bool training;
    ~RestoreMode() { model.train(training); }
  } restore{model, model.is_training()};
  model.eval();
  NoGradGuard no_grad;
  std::string out = prompt;
  for (int64_t i = 0; i < n; ++i) {
    const auto t = std::min<int64_t>(static_cast<int64_t>(tokens.size()), c.block_size);  // crop the context
    const std::vector<int64_t> context(tokens.end() - t, tokens.end());
    const Tensor logits = model.forward(from_vector(context, {1, t}, TensorOptions{DType::i64, c.device}));
    const std::vector<double> last = logits.select(1, t - 1).select(0, 0).to_vector<double>();
    const double u = temperature > 0.0 ? rand({1}, TensorOptions{}.set_dtype(DType::f64), &gen).item() : 0.0;
    const int64_t next = sample_token(last, temperature, top_k, u);
    tokens.push_back(next);
    out.push_back(static_cast<char>(static_cast<unsigned char>(next)));
  }
  return out;
}

}  // namespace ember::gpt
