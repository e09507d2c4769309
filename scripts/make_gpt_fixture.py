#!/usr/bin/python3
# @file scripts/make_gpt_fixture.py @brief Writes the PyTorch fixtures of the GPT tests (tests/fixtures/gpt/*.safetensors) from the twin of scripts/gpt_twin.py, or checks that it reproduces the committed ones.
"""PyTorch references for tests/nn/test_gpt.cpp and tests/optim/test_token_accumulation.cpp.

Run with Debian's python3 and its python3-torch 1.13 (`make fixtures`):
    /usr/bin/python3 scripts/make_gpt_fixture.py            # (re)writes tests/fixtures/gpt/
    /usr/bin/python3 scripts/make_gpt_fixture.py --check    # recomputes, compares with the committed files

The model is scripts/gpt_twin.py's nanoGPT GPT with CONFIG below (V 256, 2 layers, C 16, 2 heads,
block 8): 10,816 parameters. Its weights are random (larger than nanoGPT's N(0, 0.02) init, so the
attention is far from uniform and every LayerNorm parameter and bias matters), rounded to float32 so that
Ember's float32 and float64 models both start from exactly these numbers. Everything is then computed in
float64 and the results rounded to float32 for storage (scalars stay float64), which keeps the files
small; the tests' tolerances account for that rounding (2^-24 relative per element).

Files (float tensors F32 unless noted; names of parameters as Ember's GPT::state_dict()):
  weights.safetensors   the model: exactly what Ember's save_safetensors(path, gpt.state_dict()) writes
                        (transformer.wte.weight once, no lm_head.weight); metadata: the config
  tiny.safetensors      idx [2, 8] i64, targets [2, 8] i64 (some -1: ignored), logits [2, 8, 256],
                        loss (F64, the mean over the 12 targets that are not -1), grad.<param> of the mean
                        loss, grad_lm_head_part: the part of grad.transformer.wte.weight that comes
                        through lm_head (computed on an untied copy; the rest comes through the lookup)
  accumulation.safetensors   three ragged micro-batches idx.<k>, targets.<k> ([1, 8], [3, 8], [2, 6],
                        5, 17 and 11 targets that are not -1); grad_large.<param>: the gradient of the
                        LARGE batch (the micro-batches padded to T 8 and concatenated, one forward, the
                        mean over all 33 real tokens, one backward: what a PyTorch user computes without
                        accumulation); grad_naive.<param>: sum over micro-batches of grad(mean_k) / 3 (the
                        per-micro-batch mean divided by the number of micro-batches: each token weighs
                        1 / (3 n_k) instead of 1 / 33); loss_large, loss_naive (F64)
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt_twin  # noqa: E402
from make_reference import compare_tensors, read_safetensors, write_safetensors  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "gpt")
CONFIG = gpt_twin.GPTConfig(vocab_size=256, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True)
SEED = 1616
# --check: the fresh float64 results, rounded to float32 as stored, must match the committed ones within
# CHECK_TOL of the tensor's scale: float64 summation-order changes (~1e-15) can flip a float32 rounding
# (one float32 ulp, 6e-8 relative), so 1e-6 passes those and fails anything else.
CHECK_TOL = 1e-6
MICRO = [(1, 8, 5), (3, 8, 17), (2, 6, 11)]  # (rows, T, targets that are not -1) of each micro-batch


def f32(t):
    return t.detach().to(torch.float32)


def config_metadata():
    c = CONFIG
    return {"vocab_size": str(c.vocab_size), "block_size": str(c.block_size), "n_layer": str(c.n_layer),
            "n_head": str(c.n_head), "n_embd": str(c.n_embd), "bias": "true" if c.bias else "false",
            "torch_version": torch.__version__}


def random_weights(gen):
    """Ember's state_dict names -> float32-exact random values (as float64)."""
    model = gpt_twin.GPT(CONFIG).double()
    out = []
    for name, p in model.named_parameters():  # the tied weight once, as transformer.wte.weight
        if ".ln_" in name or name.startswith("transformer.ln_f"):
            v = (1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
        elif name.endswith(".bias"):
            v = 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
        elif name.startswith("transformer.w"):
            v = 0.5 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
        else:
            v = 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
        out.append((name, v.to(torch.float32).to(torch.float64)))
    return out


def make_model(weights):
    return gpt_twin.load_state(gpt_twin.GPT(CONFIG).double(), weights)


def ragged_targets(gen, rows, t, real):
    """Random ids [rows, t] and targets with exactly `real` entries that are not -1."""
    idx = torch.randint(0, CONFIG.vocab_size, (rows, t), generator=gen)
    targets = torch.randint(0, CONFIG.vocab_size, (rows, t), generator=gen)
    keep = torch.randperm(rows * t, generator=gen)[:real]
    mask = torch.zeros(rows * t, dtype=torch.bool)
    mask[keep] = True
    return idx, torch.where(mask.view(rows, t), targets, torch.full_like(targets, -1))


def grads(model):
    return [(n, p.grad.detach().clone()) for n, p in model.named_parameters()]


def tiny_case(weights, gen):
    model = make_model(weights)
    idx, targets = ragged_targets(gen, 2, 8, 12)
    logits, loss = model(idx, targets)
    loss.backward()
    tensors = [("idx", idx), ("targets", targets), ("logits", f32(logits)), ("loss", loss.detach())]
    tensors += [("grad." + n, f32(g)) for n, g in grads(model)]
    # The lm_head part of the tied gradient: an untied copy (lm_head its own parameter, same values).
    untied = make_model(weights)
    untied.lm_head.weight = torch.nn.Parameter(untied.transformer.wte.weight.detach().clone())
    untied(idx, targets)[1].backward()
    tensors.append(("grad_lm_head_part", f32(untied.lm_head.weight.grad)))
    return tensors


def accumulation_case(weights, gen):
    batches = [ragged_targets(gen, rows, t, real) for rows, t, real in MICRO]
    total = sum(real for _, _, real in MICRO)
    # The large batch: pad every micro-batch to T = block_size (padding targets -1; causal attention keeps
    # the real positions' logits unchanged), concatenate, one forward and backward of the mean.
    large = make_model(weights)
    pad = CONFIG.block_size
    idx_all = torch.cat([F.pad(i, (0, pad - i.size(1)), value=0) for i, _ in batches])
    tgt_all = torch.cat([F.pad(y, (0, pad - y.size(1)), value=-1) for _, y in batches])
    assert int((tgt_all != -1).sum()) == total
    _, loss_large = large(idx_all, tgt_all)
    loss_large.backward()
    # The naive accumulation: each micro-batch's mean loss / number of micro-batches.
    naive = make_model(weights)
    loss_naive = 0.0
    for i, y in batches:
        loss = naive(i, y)[1] / len(batches)
        loss.backward()
        loss_naive += loss.item()
    tensors = []
    for k, (i, y) in enumerate(batches):
        tensors += [("idx.%d" % k, i), ("targets.%d" % k, y)]
    tensors += [("grad_large." + n, f32(g)) for n, g in grads(large)]
    tensors += [("grad_naive." + n, f32(g)) for n, g in grads(naive)]
    tensors += [("loss_large", loss_large.detach()), ("loss_naive", torch.tensor(loss_naive, dtype=torch.float64))]
    return tensors


def check(path, tensors):
    """Counts the differences between fresh tensors and the committed file."""
    if not os.path.exists(path):
        print("%s: missing" % path)
        return 1
    committed, _ = read_safetensors(path)
    return compare_tensors(path, committed, tensors, CHECK_TOL)


def twin_loads_weights(out_dir, tiny):
    """gpt_twin.load_ember reads weights.safetensors (Ember's format: no lm_head.weight) into a tied twin
    whose logits are the fixture's. Returns the number of problems (0 or 1)."""
    model = gpt_twin.load_ember(os.path.join(out_dir, "weights.safetensors"), CONFIG, torch.float64)
    t = dict(tiny)
    with torch.no_grad():
        err = (model(t["idx"])[0] - t["logits"].double()).abs().max().item()
    bound = CHECK_TOL * t["logits"].abs().max().item()
    if err > bound:
        print("weights.safetensors: the twin loaded by gpt_twin.load_ember is off by %.3g (bound %.3g)" % (err, bound))
    return int(err > bound)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare a fresh run with the committed fixtures")
    ap.add_argument("--out", default=OUT_DIR, help="fixture directory (default tests/fixtures/gpt)")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # one summation order on every machine
    gen = torch.Generator().manual_seed(SEED)
    weights = random_weights(gen)
    files = [("weights", [(n, f32(w)) for n, w in weights]), ("tiny", tiny_case(weights, gen)),
             ("accumulation", accumulation_case(weights, gen))]
    meta = config_metadata()
    failures = 0
    for name, tensors in files:
        path = os.path.join(args.out, name + ".safetensors")
        if args.check:
            failures += check(path, tensors)
        else:
            os.makedirs(args.out, exist_ok=True)
            write_safetensors(path, tensors, meta)
            print("wrote %s (%d tensors)" % (os.path.relpath(path), len(tensors)))
    failures += twin_loads_weights(args.out, files[1][1])
    if args.check:
        print("make_gpt_fixture --check: %s" % ("%d problem(s)" % failures if failures else
                                                "all %d files reproduced within %g" % (len(files), CHECK_TOL)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
