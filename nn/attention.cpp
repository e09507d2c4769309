/// @file nn/attention.cpp @brief nn::CausalSelfAttention.
#include "nn/attention.h"

#include "ops/attention.h"

namespace ember::nn {

CausalSelfAttention::CausalSelfAttention(const CausalSelfAttentionOptions& o) : options(o) {
  EMBER_CHECK(o.n_embd > 0 && o.n_head > 0 && o.n_embd % o.n_head == 0,
              "CausalSelfAttention: n_embd must be a positive multiple of n_head, got n_embd=", o.n_embd,
              " n_head=", o.n_head);
  c_attn = register_module("c_attn", std::make_shared<Linear>(LinearOptions{o.n_embd, 3 * o.n_embd, o.bias, o.dtype,
                                                                            o.device}));
  c_proj = register_module("c_proj",
                           std::make_shared<Linear>(LinearOptions{o.n_embd, o.n_embd, o.bias, o.dtype, o.device}));
}

Tensor CausalSelfAttention::forward(const Tensor& x) {
  const int64_t c = options.n_embd, h = options.n_head, hd = c / h;
  EMBER_CHECK(x.defined() && x.dim() == 3 && x.size(2) == c, str(), ": expected input [B, T, ", c, "], got ",
              describe(x));
  const int64_t b = x.size(0), t = x.size(1);
  const Tensor qkv = c_attn->forward(x.reshape({b * t, c}));  // [B*T, 3C]
  // q, k, v: column blocks of qkv viewed as [B, T, H, hd] (no copy), heads moved to dim 1.
  auto heads = [&](int64_t i) { return qkv.slice(1, i * c, (i + 1) * c).view({b, t, h, hd}).transpose(1, 2); };
  const Tensor y = scaled_dot_product_attention(heads(0), heads(1), heads(2), /*causal=*/true);  // [B, H, T, hd]
  const Tensor merged = y.transpose(1, 2).reshape({b * t, c});  // heads side by side again (a copy)
  return c_proj->forward(merged).view({b, t, c});
}

std::string CausalSelfAttention::str() const {
  return "CausalSelfAttention(n_embd=" + std::to_string(options.n_embd) + ", n_head=" + std::to_string(options.n_head) +
         ", bias=" + (options.bias ? "true" : "false") + ")";
}

}  // namespace ember::nn
