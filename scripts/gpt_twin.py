#!/usr/bin/python3
# @file scripts/gpt_twin.py @brief nanoGPT's GPT in PyTorch (torch >= 1.13, attention written out), the twin of examples/gpt; loads an Ember GPT safetensors file with lm_head tied to wte.
"""The PyTorch twin of Ember's GPT (examples/gpt/gpt.h; docs/transformer.md).

nanoGPT's model.py, cut to what Ember's GPT computes: pre-LN blocks, nanoGPT's parameter names and
shapes, exact GELU, lm_head tied to transformer.wte, dropout where nanoGPT has it except on the
attention weights. The attention is written out (nanoGPT's slow path: masked_fill of the upper
triangle with -inf, softmax), so Debian's python3-torch 1.13 runs it; FUSED_ATTENTION = True switches to
torch 2's F.scaled_dot_product_attention (the benchmarks do where it exists; the fixtures never). Import it from other scripts:

    sys.path.insert(0, "scripts"); import gpt_twin
    model = gpt_twin.load_ember("model.safetensors", gpt_twin.GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8))
    logits, loss = model(idx, targets)        # targets -1 are ignored, as in nanoGPT

Ember saves the tied weight once, as transformer.wte.weight (no lm_head.weight); load_ember ties
lm_head to it, so the model is one tensor there too.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


# True: attention through F.scaled_dot_product_attention (torch >= 2.0; scripts/bench_torch_lm.py sets it
# where available). False (the fixtures): written out, as nanoGPT's slow path and torch 1.13 can run.
FUSED_ATTENTION = False


@dataclass
class GPTConfig:
    vocab_size: int = 256
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True


class LayerNorm(nn.Module):
    """nanoGPT's LayerNorm with an optional bias (torch 1.13's nn.LayerNorm always has one)."""

    def __init__(self, n, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.resid_dropout = nn.Dropout(c.dropout)
        self.n_head = c.n_head

    def forward(self, x):
        b, t, ch = x.size()
        q, k, v = (z.view(b, t, self.n_head, ch // self.n_head).transpose(1, 2) for z in self.c_attn(x).split(ch, 2))
        if FUSED_ATTENTION:  # torch >= 2.0's fused kernel (nanoGPT's flash path), for the benchmarks
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            y = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1) @ v
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(b, t, ch)))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.attn = LayerNorm(c.n_embd, c.bias), CausalSelfAttention(c)
        self.ln_2, self.mlp = LayerNorm(c.n_embd, c.bias), MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c.vocab_size, c.n_embd), wpe=nn.Embedding(c.block_size, c.n_embd),
            drop=nn.Dropout(c.dropout), h=nn.ModuleList([Block(c) for _ in range(c.n_layer)]),
            ln_f=LayerNorm(c.n_embd, c.bias)))
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied: one tensor
        for name, p in self.named_parameters():  # nanoGPT's init
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layer))
            elif name.endswith(".weight") and ".ln_" not in name:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith(".bias") and ".ln_" not in name:
                nn.init.zeros_(p)

    def forward(self, idx, targets=None):
        t = idx.size(1)
        assert t <= self.config.block_size, "sequence length %d exceeds block_size %d" % (t, self.config.block_size)
        pos = torch.arange(t, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def load_state(model, tensors):
    """Loads Ember's state (name -> tensor, no lm_head.weight) into `model`, strictly, keeping the tie."""
    state = dict(tensors)
    state.setdefault("lm_head.weight", state["transformer.wte.weight"])
    model.load_state_dict(state, strict=True)  # copies into the parameters' dtype
    assert model.lm_head.weight is model.transformer.wte.weight
    return model


def load_ember(path, config, dtype=torch.float32):
    """A twin of the Ember GPT saved at `path` (save_safetensors(path, model.state_dict())), in `dtype`."""
    from make_reference import read_safetensors  # the repository's own safetensors reader (no package)
    tensors, _ = read_safetensors(path)
    return load_state(GPT(config).to(dtype), tensors)
