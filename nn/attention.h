/// @file nn/attention.h @brief nn::CausalSelfAttention: nanoGPT's multi-head causal self-attention (c_attn, c_proj).
#pragma once
#include <memory>

#include "nn/linear.h"
#include "nn/module.h"

namespace ember::nn {

struct CausalSelfAttentionOptions {
  int64_t n_embd = 0;  ///< C, a multiple of n_head
  int64_t n_head = 0;
  bool bias = true;    ///< biases of c_attn and c_proj (nanoGPT's config.bias)
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

/// nanoGPT's CausalSelfAttention without dropout (its default dropout is 0): for x [B, T, C],
/// q, k, v = c_attn(x).split(C, dim=2), each viewed as [B, T, n_head, C / n_head] and transposed to
/// [B, n_head, T, hd]; y = scaled_dot_product_attention(q, k, v, causal=true) (ops/attention.h);
/// the heads are merged back to [B, T, C] and projected by c_proj. Parameters: c_attn.weight [3C, C],
/// c_attn.bias [3C], c_proj.weight [C, C], c_proj.bias [C] (torch.nn.Linear layout, [out, in]),
/// initialized as torch.nn.Linear (nanoGPT's GPT re-initializes them itself).
class CausalSelfAttention : public Module {
 public:
  explicit CausalSelfAttention(const CausalSelfAttentionOptions& o);
  CausalSelfAttention(int64_t n_embd, int64_t n_head, bool bias = true)
      : CausalSelfAttention(CausalSelfAttentionOptions{n_embd, n_head, bias}) {}
  /// x [B, T, n_embd] -> [B, T, n_embd].
  Tensor forward(const Tensor& x) override;
  std::string str() const override;

  std::shared_ptr<Linear> c_attn;  ///< n_embd -> 3 * n_embd (q, k, v in that order)
  std::shared_ptr<Linear> c_proj;  ///< n_embd -> n_embd
  CausalSelfAttentionOptions options;
};

}  // namespace ember::nn
