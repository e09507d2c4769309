#!/usr/bin/env python3
# @file scripts/bench_torch_train.py @brief The PyTorch twin of one ember-train run (same model, data, micro-batch x accum loop, AdamW or SGD, on the CPU or a GPU), timed per optimizer step; prints one JSON line (and with --eval one per epoch).
"""Run by scripts/bench_train.py and scripts/bench_time_to_accuracy.py in its own process (so the thread
count and BLAS are set before torch loads). Mirrors ember-train: Fashion-MNIST from the same IDX .gz files
as float32 pixel/255 NCHW, a reshuffle every epoch, micro-batches gathered by index, forward +
cross-entropy + backward per micro-batch, each micro-batch's mean loss weighted by its share of the
window's samples (as ember-train's accumulator: the window's mean, also for an epoch's short last window),
and at the end of each window of `accum` micro-batches one optimizer step (AdamW or SGD, every
hyperparameter a flag: the callers pass ember-train's values) and zero_grad. --schedule cosine is
ember-train's CosineWithWarmup over --epochs (linear warm-up, then half a cosine to 0), constant its
ConstantWithWarmup. With --device cuda the model lives on the GPU and each micro-batch is gathered on the
CPU and copied to it (as ember-train --device cuda does); the step times are taken after
torch.cuda.synchronize().

With --eval the test set is evaluated after every epoch (batches of 500 in eval mode, as ember-train) and
one line {"event": "epoch", "epoch": E, "test_accuracy": ..., "train_s": ..., "elapsed_s": ...} is printed
(flushed) per epoch; --max-epochs stops after that many epochs while the schedule still spans --epochs.
Prints {"samples_per_s": steady-state rate, ...} last."""
import argparse
import gzip
import json
import math
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


def lr_factor(schedule, step, warmup, total):
    """ember-train's learning-rate factor for optimizer step `step` (0-based; optim/lr_scheduler.cpp)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if step >= total:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def make_optimizer(torch, params, a):
    extra = {"foreach": True} if a.foreach else {}
    if a.optimizer == "sgd":
        return torch.optim.SGD(params, lr=a.lr, momentum=a.momentum, dampening=a.dampening, nesterov=a.nesterov,
                               weight_decay=a.weight_decay, **extra)
    return torch.optim.AdamW(params, lr=a.lr, betas=tuple(a.betas), eps=a.eps, weight_decay=a.weight_decay, **extra)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=["mlp", "cnn"], required=True)
    ap.add_argument("--norm", choices=["batch", "none"], default="batch")
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--accum", type=int, default=4)
    ap.add_argument("--steps", type=int, default=0, help="stop after this many optimizer steps (0 = run --epochs)")
    ap.add_argument("--epochs", type=int, default=0, help="the run's epochs: the cosine schedule's horizon, and "
                                                          "where it ends (0 = until --steps)")
    ap.add_argument("--max-epochs", type=int, default=0, help="stop after this many epochs (0 = --epochs)")
    ap.add_argument("--eval", action="store_true", help="evaluate the test set after every epoch")
    ap.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the steady-state rate")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.999], help="adamw")
    ap.add_argument("--eps", type=float, default=1e-8, help="adamw")
    ap.add_argument("--momentum", type=float, default=0.9, help="sgd")
    ap.add_argument("--dampening", type=float, default=0.0, help="sgd")
    ap.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=False, help="sgd")
    ap.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    ap.add_argument("--warmup", type=int, default=0, help="linear learning-rate warm-up, optimizer steps")
    ap.add_argument("--foreach", action="store_true", help="the optimizer with foreach=True: multi-tensor update")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit-train", type=int, default=0, help="only the first N training samples (smoke runs)")
    ap.add_argument("--limit-test", type=int, default=0, help="only the first N test samples (smoke runs)")
    a = ap.parse_args(argv)
    if a.steps <= 0 and a.epochs <= 0:
        ap.error("--steps or --epochs is required")
    if a.schedule == "cosine" and a.epochs <= 0:
        ap.error("--schedule cosine: needs --epochs (its horizon)")
    if a.max_epochs and a.epochs and a.max_epochs > a.epochs:
        ap.error(f"--max-epochs {a.max_epochs}: more than --epochs {a.epochs}")
    return a


def window_sizes(n, micro, accum):
    """Samples per micro-batch of one epoch and the sample count of the window each belongs to."""
    mpe = (n + micro - 1) // micro
    sizes = [min(micro, n - k * micro) for k in range(mpe)]
    windows = [sum(sizes[w:w + accum]) for w in range(0, mpe, accum)]
    return sizes, [windows[k // accum] for k in range(mpe)]


def main():
    t_process = time.perf_counter()
    a = parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    def load(kind):
        dims, pixels = read_idx(find(a.data, f"{kind}-images-idx3-ubyte"))
        _, labels = read_idx(find(a.data, f"{kind}-labels-idx1-ubyte"))
        x = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(dims[0], 1, dims[1], dims[2])
        return x.to(torch.float32).div_(255.0), torch.frombuffer(bytearray(labels), dtype=torch.uint8).to(torch.int64)

    x_all, y_all = load("train")
    x_test, y_test = load("t10k") if a.eval else (None, None)
    if a.limit_train > 0:  # as ember-train's --limit-train
        x_all, y_all = x_all[:a.limit_train], y_all[:a.limit_train]
    if a.limit_test > 0 and a.eval:
        x_test, y_test = x_test[:a.limit_test], y_test[:a.limit_test]

    dev = torch.device(a.device)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_torch_train.py: --device cuda: torch sees no CUDA device")
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    model = build_model(nn, a.model, a.norm).to(dev)
    model.train()
    opt = make_optimizer(torch, model.parameters(), a)
    n_train = x_all.shape[0]
    micro_per_epoch = (n_train + a.micro_batch - 1) // a.micro_batch
    sizes, window_of = window_sizes(n_train, a.micro_batch, a.accum)
    windows_per_epoch = (micro_per_epoch + a.accum - 1) // a.accum
    horizon = a.epochs * windows_per_epoch
    last_epoch = a.max_epochs or a.epochs or None

    def evaluate():
        model.eval()
        correct, loss_sum = 0, 0.0
        with torch.no_grad():
            for b in range(0, x_test.shape[0], 500):
                x, y = x_test[b:b + 500].to(dev), y_test[b:b + 500].to(dev)
                logits = model(x)
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
        model.train()
        return correct / x_test.shape[0], loss_sum / x_test.shape[0]

    step_times, step_samples = [], []
    if a.eval:  # data loaded, model built: training starts
        print(json.dumps({"event": "start", "elapsed_s": time.perf_counter() - t_process}), flush=True)
    sync()
    t_start = time.perf_counter()
    eval_s = 0.0
    step = micro = window_samples = 0
    epoch = 0
    loss = float("nan")

    def running():
        return (a.steps <= 0 or step < a.steps) and (last_epoch is None or epoch < last_epoch)

    while running():
        perm = torch.randperm(n_train)
        for k in range(micro_per_epoch):
            idx = perm[k * a.micro_batch:(k + 1) * a.micro_batch]
            x, y = x_all[idx].to(dev), y_all[idx].to(dev)
            loss = F.cross_entropy(model(x), y)
            (loss * (sizes[k] / window_of[k])).backward()
            micro += 1
            window_samples += idx.numel()
            if micro % a.accum == 0 or k + 1 == micro_per_epoch:
                f = lr_factor(a.schedule, step, a.warmup, horizon)
                for g in opt.param_groups:
                    g["lr"] = a.lr * f
                opt.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                sync()
                step_times.append(time.perf_counter() - t_start - eval_s)
                step_samples.append(window_samples)
                window_samples = 0
                if a.steps > 0 and step >= a.steps:
                    break
        full = k + 1 == micro_per_epoch  # else stopped by --steps within the epoch
        micro = 0  # windows restart with each epoch, as ember-train's
        epoch += 1
        if a.eval:  # (after a partial epoch too, as ember-train's evaluation at the end of the run)
            t_eval = time.perf_counter()
            acc, test_loss = evaluate()
            sync()
            eval_s += time.perf_counter() - t_eval
            print(json.dumps({"event": "epoch", "epoch": epoch, "test_accuracy": acc, "test_loss": test_loss,
                              "steps": step, "full_epoch": full, "train_s": step_times[-1],
                              "elapsed_s": time.perf_counter() - t_process}), flush=True)

    w = min(a.warmup_steps, len(step_times) - 1)
    steady = sum(step_samples[w + 1:]) / (step_times[-1] - step_times[w]) if len(step_times) > 1 else float("nan")
    blas = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line})
    gpu = torch.cuda.get_device_name(dev) if a.device == "cuda" else None
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "device": a.device, "gpu": gpu,
                      "model": a.model, "norm": a.norm, "optimizer": a.optimizer,
                      "threads": a.threads, "torch_threads": torch.get_num_threads(), "foreach": a.foreach,
                      "steps": step, "epochs": epoch, "samples_per_s": steady, "total_s": step_times[-1],
                      "eval_s": eval_s, "blas": blas, "final_loss": float(loss)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
