#!/usr/bin/env python3
# @file scripts/bench_torch_lm.py @brief The PyTorch twin of one ember-train-lm run (scripts/gpt_twin.py on the same fortunes byte sequences, micro-batch x accum loop, AdamW), timed per optimizer step; prints one JSON line.
"""Run by scripts/bench_train.py (--models gpt) in its own process, so the thread count and BLAS are set
before torch loads. Mirrors ember-train-lm's data (data/fortunes.h, data/text.h): the regular files of the
fortunes directory not ending in .dat, in name order, cut at lines that are exactly "%", whitespace-only
fortunes dropped; every 8th file (positions 0, 8, ...) is validation, the rest train; the training
fortunes, each followed by '\\n', form one stream cut into windows of T + 1 bytes overlapping by one.
Each epoch reshuffles the windows; per micro-batch: forward, the mean cross-entropy over the real tokens
times the micro-batch's token count (the sum), backward; at the end of each window of `accum`
micro-batches the gradients are divided by the window's tokens (as Ember's accumulator), one AdamW step
and zero_grad(set_to_none=True). With torch >= 2.0 the attention is F.scaled_dot_product_attention (fused),
with torch 1.13 written out. Prints {"tokens_per_s": steady-state rate, "step_times": [...], ...}."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def fortunes(directory, val_every=8):
    files = sorted(n for n in os.listdir(directory)
                   if not n.endswith(".dat") and not os.path.islink(os.path.join(directory, n))
                   and os.path.isfile(os.path.join(directory, n)))
    train, position = [], 0
    for name in files:
        with open(os.path.join(directory, name), "rb") as f:
            docs, cur = [], []
            for line in f.read().splitlines(keepends=True):
                if line.rstrip(b"\n") == b"%":
                    docs.append(b"".join(cur))
                    cur = []
                else:
                    cur.append(line)
            docs.append(b"".join(cur))
        docs = [d for d in docs if d.strip(b" \t\n\r\v\f")]
        if not docs:
            continue
        if position % val_every != 0:
            train += docs
        position += 1
    return train


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="/usr/share/games/fortunes")
    ap.add_argument("--block-size", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--accum", type=int, default=4)
    ap.add_argument("--steps", type=int, required=True, help="optimizer steps to run")
    ap.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the steady-state rate")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import torch
    import gpt_twin
    gpt_twin.FUSED_ATTENTION = hasattr(torch.nn.functional, "scaled_dot_product_attention")  # torch >= 2.0
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    T = a.block_size
    stream = torch.frombuffer(bytearray(b"".join(d + b"\n" for d in fortunes(a.data))), dtype=torch.uint8).long()
    n = (stream.numel() - 2) // T + 1  # windows with at least one target
    x_all = torch.zeros(n, T, dtype=torch.long)
    y_all = torch.full((n, T), -1, dtype=torch.long)
    for i in range(n):
        w = stream[i * T:i * T + T + 1]
        x_all[i, :w.numel() - 1] = w[:-1]
        y_all[i, :w.numel() - 1] = w[1:]

    model = gpt_twin.GPT(gpt_twin.GPTConfig(block_size=T, n_layer=a.layers, n_head=a.heads, n_embd=a.dim))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    order, pos, epoch = torch.randperm(n), 0, 0
    tokens, times = [], []
    t0 = time.perf_counter()
    for _ in range(a.steps):
        window = 0
        for _ in range(a.accum):
            if pos + a.micro_batch > n:
                epoch += 1
                order, pos = torch.randperm(n), 0
            idx = order[pos:pos + a.micro_batch]
            pos += a.micro_batch
            x, y = x_all[idx], y_all[idx]
            count = int((y != -1).sum())
            _, loss = model(x, y)
            (loss * count).backward()  # the sum over the micro-batch's real tokens
            window += count
        for p in model.parameters():
            p.grad.div_(window)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens.append(window)
        times.append(time.perf_counter() - t0)
    w = min(a.warmup_steps, len(times) - 2)
    rate = sum(tokens[w + 1:]) / (times[-1] - times[w])
    print(json.dumps({"tokens_per_s": rate, "step_times": times, "tokens": sum(tokens), "torch": torch.__version__,
                      "fused_attention": gpt_twin.FUSED_ATTENTION, "threads": a.threads, "final_loss": float(loss)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
