/// @file examples/gpt/gpt.h @brief ember::gpt::GPT: nanoGPT's decoder-only transformer (names, shapes, init, tied lm_head) on Ember's layers, and byte-level generate().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/sequential.h"

namespace ember::gpt {

/// nanoGPT's GPTConfig (its defaults scaled down to a byte-level model), plus the parameters' dtype and
/// device (f64 for the reference tests; every layer has an f64 path on the CPU).
struct GPTConfig {
  int64_t vocab_size = 256;  ///< V: token ids in [0, V); 256 for bytes
  int64_t block_size = 128;  ///< the longest context (rows of wpe)
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_embd = 128;      ///< C, a multiple of n_head
  double dropout = 0.0;      ///< in [0, 1): after wte + wpe, after each attention's c_proj, after each MLP
  bool bias = true;          ///< biases of the Linear layers and LayerNorms (nanoGPT's config.bias)
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

/// nanoGPT's MLP: c_fc (C -> 4C), exact GELU, c_proj (4C -> C), dropout. x [N, C] -> [N, C].
class MLP : public nn::Module {
 public:
  explicit MLP(const GPTConfig& c);
  Tensor forward(const Tensor& x) override;
  std::string str() const override { return "MLP"; }

  std::shared_ptr<nn::Linear> c_fc, c_proj;
  std::shared_ptr<nn::GELU> gelu;
  std::shared_ptr<nn::Dropout> dropout;  ///< null when config.dropout == 0
};

/// nanoGPT's pre-LN Block: x = x + drop(attn(ln_1(x))); x = x + mlp(ln_2(x)). x [B, T, C] -> [B, T, C].
/// The residual dropout after attn.c_proj is nanoGPT's attn.resid_dropout; nanoGPT's dropout of the
/// attention weights (attn_dropout) is not applied (nn::CausalSelfAttention has none).
class Block : public nn::Module {
 public:
  explicit Block(const GPTConfig& c);
  Tensor forward(const Tensor& x) override;
  std::string str() const override { return "Block"; }

  std::shared_ptr<nn::LayerNorm> ln_1, ln_2;
  std::shared_ptr<nn::CausalSelfAttention> attn;
  std::shared_ptr<MLP> mlp;
  std::shared_ptr<nn::Dropout> resid_dropout;  ///< null when config.dropout == 0
};

/// nanoGPT's `transformer` ModuleDict: wte, wpe, drop, h (Blocks "0", "1", ...), ln_f.
class Transformer : public nn::Module {
 public:
  explicit Transformer(const GPTConfig& c);
  std::string str() const override { return "Transformer"; }

  std::shared_ptr<nn::Embedding> wte, wpe;
  std::shared_ptr<nn::Dropout> drop;  ///< null when config.dropout == 0
  std::shared_ptr<nn::Sequential> h;
  std::shared_ptr<nn::LayerNorm> ln_f;
};

/// nanoGPT's GPT (model.py): logits = lm_head(ln_f(blocks(drop(wte(idx) + wpe(pos))))), with lm_head's
/// weight TIED to transformer.wte.weight: one tensor, registered once (under transformer.wte.weight), so
/// parameters() lists it once, an optimizer steps it once, and its .grad holds both contributions (the
/// embedding lookup's and the output projection's). There is no lm_head module: the projection is
/// linear(x, wte.weight) without bias. state_dict() and load_state_dict() therefore know the name
/// transformer.wte.weight only (a file written by Ember has no lm_head.weight); nanoGPT's PyTorch
/// state_dict, which has both names for the one tensor, loads through from_nanogpt_state_dict().
/// Parameter names and shapes are nanoGPT's: transformer.wte.weight [V, C], transformer.wpe.weight
/// [block_size, C], transformer.h.{i}.ln_1.{weight,bias} [C], .attn.c_attn.{weight [3C, C], bias [3C]},
/// .attn.c_proj.{weight [C, C], bias [C]}, .ln_2.*, .mlp.c_fc.{weight [4C, C], bias [4C]},
/// .mlp.c_proj.{weight [C, 4C], bias [C]}, transformer.ln_f.{weight,bias} (no biases when !config.bias).
/// Initialized as nanoGPT, from Ember's default generator: Linear and Embedding weights N(0, 0.02), every
/// c_proj.weight N(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm weight 1 and bias 0.
class GPT : public nn::Module {
 public:
  /// Throws an ember::Error for a non-positive size, n_embd not a multiple of n_head, or dropout outside [0, 1).
  explicit GPT(const GPTConfig& c);
  /// idx [B, T] i64 (1 <= T <= block_size, ids in [0, vocab_size)) -> logits [B, T, vocab_size] in
  /// config.dtype. Throws an ember::Error naming a wrong dtype or shape, T > block_size, or an id out of
  /// range (on the CPU here; on a GPU the embedding's device check reports it at the next synchronization).
  Tensor forward(const Tensor& idx) override;
  const GPTConfig& config() const { return config_; }
  /// The number of parameter elements, each tensor once (the tied wte / lm_head weight counted once;
  /// wpe included, unlike nanoGPT's get_num_params(non_embedding=True)).
  int64_t num_parameters() const;
  std::string str() const override;

  std::shared_ptr<Transformer> transformer;

 private:
  void init_weights();
  void check_input(const Tensor& idx) const;

  GPTConfig config_;
};

/// nanoGPT's PyTorch state_dict (model.state_dict(), names as GPT's plus lm_head.weight, and on torch
/// without flash attention the causal-mask buffers transformer.h.{i}.attn.bias) as GPT::load_state_dict
/// takes it: lm_head.weight is dropped after checking that it equals transformer.wte.weight exactly (a
/// tied model has one tensor; an ember::Error otherwise), and so are the mask buffers.
NamedTensors from_nanogpt_state_dict(const NamedTensors& state);

/// Generated text: the prompt's bytes, then n sampled bytes. Each step feeds the last block_size tokens
/// (the context is cropped as nanoGPT's generate does) in eval mode under NoGradGuard, and samples the next
/// byte from softmax(logits / temperature) restricted to the top_k largest logits (top_k <= 0: all of
/// them) with one uniform draw from `gen`, so the same gen state reproduces the text; temperature <= 0
/// takes the argmax (greedy; no draw). The model's training mode is restored afterwards. Throws an
/// ember::Error for an empty prompt, n < 0, a non-finite temperature, or vocab_size > 256 (a sampled id
/// must be a byte); the prompt's bytes must be < vocab_size.
std::string generate(GPT& model, const std::string& prompt, int64_t n, double temperature, int64_t top_k,
                     Generator& gen);

/// The next token after `logits` (the last position's [vocab_size] values): argmax for temperature <= 0,
/// else a draw from softmax(logits / temperature) over the top_k largest (top_k <= 0: all) with the
/// uniform u in [0, 1) (inverse CDF, in double). Exposed for the tests.
int64_t sample_token(const std::vector<double>& logits, double temperature, int64_t top_k, double u);

}  // namespace ember::gpt
