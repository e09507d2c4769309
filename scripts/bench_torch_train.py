#!/usr/bin/env python3
# @file scripts/bench_torch_train.py @brief The PyTorch twin of one ember-train run (same model, data, micro-batch x accum loop, AdamW, on the CPU or a GPU), timed per optimizer step; prints one JSON line.
"""Run by scripts/bench_train.py in its own process (so the thread count and BLAS are set before torch
loads). Mirrors ember-train: Fashion-MNIST from the same IDX .gz files as float32 pixel/255 NCHW, a
reshuffle every epoch, micro-batches gathered by index, forward + cross-entropy + backward per
micro-batch, and at the end of each window of `accum` micro-batches one AdamW step and zero_grad.
With --device cuda the model lives on the GPU and each micro-batch is gathered on the CPU and copied to it
(as ember-train --device cuda does); the step times are taken after torch.cuda.synchronize().
Prints {"samples_per_s": steady-state rate, "step_times": [...], ...}."""
import argparse
import gzip
import json
import os
import struct
import sys
import time


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{data_dir}: no {stem}[.gz]")


def build_model(nn, model, norm):
    bn = norm == "batch"
    if model == "mlp":
        layers = [nn.Flatten(), nn.Linear(784, 512)] + ([nn.BatchNorm1d(512)] if bn else []) + [nn.ReLU(),
                  nn.Linear(512, 256)] + ([nn.BatchNorm1d(256)] if bn else []) + [nn.ReLU(), nn.Linear(256, 10)]
    else:
        layers = [nn.Conv2d(1, 16, 3, padding=1)] + ([nn.BatchNorm2d(16)] if bn else []) + [nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(16, 32, 3, padding=1)] + ([nn.BatchNorm2d(32)] if bn else []) + [nn.ReLU(), nn.MaxPool2d(2),
                  nn.Flatten(), nn.Linear(1568, 10)]
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=["mlp", "cnn"], required=True)
    ap.add_argument("--norm", choices=["batch", "none"], default="batch")
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--accum", type=int, default=4)
    ap.add_argument("--steps", type=int, required=True, help="optimizer steps to run")
    ap.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the steady-state rate")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--foreach", action="store_true", help="AdamW(foreach=True): multi-tensor update")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    dims, pixels = read_idx(find(a.data, "train-images-idx3-ubyte"))
    _, labels = read_idx(find(a.data, "train-labels-idx1-ubyte"))
    x_all = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(dims[0], 1, dims[1], dims[2])
    x_all = x_all.to(torch.float32).div_(255.0)
    y_all = torch.frombuffer(bytearray(labels), dtype=torch.uint8).to(torch.int64)

    dev = torch.device(a.device)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_torch_train.py: --device cuda: torch sees no CUDA device")
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    model = build_model(nn, a.model, a.norm).to(dev)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay,
                            **({"foreach": True} if a.foreach else {}))
    n_train = x_all.shape[0]
    micro_per_epoch = (n_train + a.micro_batch - 1) // a.micro_batch

    step_times, step_samples = [], []
    sync()
    t_start = time.perf_counter()
    step = micro = window_samples = 0
    epoch = 0
    while step < a.steps:
        perm = torch.randperm(n_train)
        for k in range(micro_per_epoch):
            idx = perm[k * a.micro_batch:(k + 1) * a.micro_batch]
            x, y = x_all[idx].to(dev), y_all[idx].to(dev)
            loss = F.cross_entropy(model(x), y)
            (loss / a.accum).backward()
            micro += 1
            window_samples += idx.numel()
            if micro % a.accum == 0 or k + 1 == micro_per_epoch:
                opt.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                sync()
                step_times.append(time.perf_counter() - t_start)
                step_samples.append(window_samples)
                window_samples = 0
                if step >= a.steps:
                    break
        epoch += 1

    w = min(a.warmup_steps, len(step_times) - 1)
    steady = sum(step_samples[w + 1:]) / (step_times[-1] - step_times[w])
    blas = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line})
    gpu = torch.cuda.get_device_name(dev) if a.device == "cuda" else None
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "device": a.device, "gpu": gpu,
                      "model": a.model, "norm": a.norm,
                      "threads": a.threads, "torch_threads": torch.get_num_threads(), "foreach": a.foreach,
                      "steps": step, "samples_per_s": steady, "total_s": step_times[-1], "blas": blas,
                      "final_loss": float(loss)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
