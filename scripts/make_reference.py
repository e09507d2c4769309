#!/usr/bin/python3
# @file scripts/make_reference.py @brief Writes the PyTorch reference fixtures of gradient accumulation (tests/fixtures/accumulation/*.safetensors), or checks that it reproduces the committed ones.
"""PyTorch reference results for Ember's gradient accumulation (docs/accumulation.md, "Reference fixtures").

Run with Debian's python3 and its python3-torch (`make fixtures`):
    /usr/bin/python3 scripts/make_reference.py            # (re)writes tests/fixtures/accumulation/
    /usr/bin/python3 scripts/make_reference.py --check    # recomputes, compares with the committed files

Every case is computed the way PyTorch users write it WITHOUT accumulation: one forward/backward of the
LARGE batch (the concatenation of a window's micro-batches, over every rank), then clip_grad_norm_ and
the optimizer step. Only BatchNorm, whose forward depends on the batch, is run micro-batch by
micro-batch (each micro-batch normalized with its own statistics, as in Ember's accumulated run), with
the loss of micro-batch m scaled by b_m / T so that the accumulated .grad is the window's mean gradient.
All arithmetic is float64. The inputs and initial weights of the cases Ember runs in float32 (BatchNorm:
nn::BatchNorm1d has no float64 path) are rounded to float32 first, so both sides start from the same
numbers and the fixture is the exact (float64) result for them.

Each file holds (names as Ember's state_dict / Optimizer::state_dict(named_params) keys):
  x [T, in] f64, y [T] i64            the samples of all windows, in the order they are consumed
  init.<key>                          the model's state before the first window (parameters and buffers)
  final.<key>                         the model's state after the last window
  grad.<w>.<param>                    window w's mean gradient (what Ember's CommHook::reduce sums, / T)
  grad_norm [W], loss [W]             window w's gradient L2 norm (before clipping) and mean loss
  state.<param>.<slot>, state.step, state.group.0.lr   the optimizer state after the last window
Metadata (strings): case, description, model (mlp | bn_mlp), dtype (Ember's compute dtype), ranks,
accum_steps, micro_batches ("3,3,1;3,3,1": windows separated by ';', micro-batch sizes by ','; with
R ranks entry k*R + r is rank r's micro-batch of micro-step k), optimizer (sgd | adamw) and its
options, clip_norm, bn_stats (micro | window), torch_version.

The safetensors writer is the one below (no safetensors package): an 8-byte little-endian header
length, a JSON header padded with spaces to a multiple of 8, the raw little-endian data.
"""
import argparse
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "accumulation")
# --check: a fresh run must reproduce every committed tensor within CHECK_TOL * max(max|t|, 1) (the
# tensor's own scale, at least 1): float64 end to end, so the only source of difference is a change in
# PyTorch's summation order (another version or BLAS), ~1e-15; integer tensors must be equal.
CHECK_TOL = 1e-12

DTYPES = {torch.float64: ("F64", "d"), torch.float32: ("F32", "f"), torch.int64: ("I64", "q")}


# ---------------------------------------------------------------------------------------------- I/O
def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, torch tensor) written in this order; metadata: dict of str -> str."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in tensors:
        t = t.detach().contiguous().cpu()
        code, fmt = DTYPES[t.dtype]
        values = t.reshape(-1).tolist()
        blob = struct.pack("<%d%s" % (len(values), fmt), *values)
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    by_code = {code: (dt, fmt) for dt, (code, fmt) in DTYPES.items()}
    tensors = {}
    for name, e in header.items():
        dt, fmt = by_code[e["dtype"]]
        b, end = e["data_offsets"]
        raw = data[8 + n + b:8 + n + end]
        values = struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw)
        tensors[name] = torch.tensor(values, dtype=dt).reshape(e["shape"])
    return tensors, metadata


# ------------------------------------------------------------------------------------------- models
def make_model(kind, sizes, seed, f32_exact):
    """mlp: Linear -> ReLU -> Linear; bn_mlp: Linear -> BatchNorm1d -> ReLU -> Linear (Ember's
    nn::Sequential names: 0.weight, 1.running_mean, ...). float64; with f32_exact every initial value
    is representable in float32."""
    torch.manual_seed(seed)
    n_in, hidden, n_out = sizes
    if kind == "mlp":
        model = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out))
    else:
        model = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.ReLU(),
                                    torch.nn.Linear(hidden, n_out))
    model = model.double()
    with torch.no_grad():
        if kind == "bn_mlp":  # a non-trivial affine transform (Ember loads it from init.*)
            model[1].weight.uniform_(0.5, 1.5)
            model[1].bias.uniform_(-0.5, 0.5)
        if f32_exact:
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.float().double())
    return model


def make_optimizer(params, o):
    if o["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"],
                               nesterov=o.get("nesterov", False))
    return torch.optim.AdamW(params, lr=o["lr"], betas=o["betas"], eps=o["eps"], weight_decay=o["weight_decay"])


# ------------------------------------------------------------------------------------------- a case
def window_grads(model, bn, xs, ys, sizes):
    """Window's mean gradient into .grad; returns the mean loss. Without BN: one large batch. With BN:
    micro-batch by micro-batch (each normalized with its own statistics), loss_m scaled by b_m / T."""
    total = sum(sizes)
    if not bn:
        loss = F.cross_entropy(model(xs), ys)
        loss.backward()
        return loss.item()
    loss_sum, off = 0.0, 0
    for b in sizes:
        loss = F.cross_entropy(model(xs[off:off + b]), ys[off:off + b])
        (loss * (b / total)).backward()
        loss_sum += loss.item() * b
        off += b
    return loss_sum / total


def run_case(c):
    torch.manual_seed(c["seed"])
    bn = c["model"] == "bn_mlp"
    f32_exact = c["dtype"] == "f32"
    windows = c["micro_batches"]
    total = sum(sum(w) for w in windows)
    x = torch.randn(total, c["sizes"][0], dtype=torch.float64)
    if f32_exact:
        x = x.float().double()
    y = torch.randint(0, c["sizes"][2], (total,), dtype=torch.int64)
    model = make_model(c["model"], c["sizes"], c["seed"] + 1, f32_exact)
    model.train()
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    opt = make_optimizer(params, c)
    out = [("x", x), ("y", y)]
    out += [("init." + k, v.clone()) for k, v in model.state_dict().items()]
    norms, losses, off = [], [], 0
    for w, sizes in enumerate(windows):
        t = sum(sizes)
        xs, ys = x[off:off + t], y[off:off + t]
        saved = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}
        opt.zero_grad(set_to_none=True)
        losses.append(window_grads(model, bn, xs, ys, sizes))
        if bn and c["bn_stats"] == "window":
            # Window-merged statistics: the running statistics see the window once, as one forward of
            # the large batch would (the first BN layer's input is the Linear's output for all T samples,
            # with the weights before this window's step).
            model.load_state_dict({**model.state_dict(), **saved})
            with torch.no_grad():
                model[1](model[0](xs))
        grads = [p.grad.clone() for p in params]
        out += [("grad.%d.%s" % (w, n), g) for n, g in zip(names, grads)]
        norms.append(torch.sqrt(sum((g * g).sum() for g in grads)).item())
        if c["clip_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(params, c["clip_norm"])
        opt.step()
        off += t
    out += [("grad_norm", torch.tensor(norms, dtype=torch.float64)),
            ("loss", torch.tensor(losses, dtype=torch.float64))]
    out += [("final." + k, v.clone()) for k, v in model.state_dict().items()]
    out += optimizer_state(opt, names, params, len(windows))
    return out, metadata(c, norms)


def optimizer_state(opt, names, params, steps):
    out = []
    for n, p in zip(names, params):
        st = opt.state[p]
        for slot in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
            if st.get(slot) is not None:
                out.append(("state.%s.%s" % (n, slot), st[slot].clone()))
        if "step" in st:
            out.append(("state.%s.step" % n, torch.tensor(int(st["step"]), dtype=torch.int64)))
    out.append(("state.step", torch.tensor(steps, dtype=torch.int64)))
    out.append(("state.group.0.lr", torch.tensor(opt.param_groups[0]["lr"], dtype=torch.float64)))
    return out


def metadata(c, norms):
    m = {
        "case": c["name"], "description": c["description"], "model": c["model"], "dtype": c["dtype"],
        "ranks": str(c["ranks"]), "accum_steps": str(c["accum_steps"]),
        "micro_batches": ";".join(",".join(str(b) for b in w) for w in c["micro_batches"]),
        "optimizer": c["optimizer"], "lr": repr(c["lr"]), "weight_decay": repr(c["weight_decay"]),
        "clip_norm": repr(c["clip_norm"]), "bn_stats": c.get("bn_stats", "none"),
        "generator": "scripts/make_reference.py", "torch_version": torch.__version__.split("+")[0],
    }
    if c["optimizer"] == "sgd":
        m.update(momentum=repr(c["momentum"]), nesterov=str(c.get("nesterov", False)).lower())
    else:
        m.update(beta1=repr(c["betas"][0]), beta2=repr(c["betas"][1]), eps=repr(c["eps"]))
    if c["clip_norm"] > 0:  # the clip must act in some windows and not in others
        clipped = [n > c["clip_norm"] for n in norms]
        assert any(clipped) and not all(clipped), "%s: clip_norm %g vs norms %s" % (c["name"], c["clip_norm"], norms)
        m["clipped_windows"] = ",".join(str(int(v)) for v in clipped)
    return m


# ------------------------------------------------------------------------------------------- cases
SIZES = (6, 5, 3)  # in, hidden, out: every model is tiny (files of a few kB)
SGD = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-2, "sizes": SIZES}
CASES = [
    dict(SGD, name="plain", seed=11, model="mlp", dtype="f64", ranks=1, accum_steps=2, clip_norm=0.0,
         micro_batches=[[4, 4], [4, 4], [4, 4]],
         description="MLP 6-5-3, SGD momentum 0.9 + weight decay, micro 4 x accum 2, 3 windows"),
    dict(SGD, name="ragged", seed=12, model="mlp", dtype="f64", ranks=1, accum_steps=3, clip_norm=0.0,
         micro_batches=[[3, 3, 1], [3, 3, 1], [3, 3, 1]],
         description="micro-batches 3+3+1 in every window (7 samples), SGD momentum + weight decay"),
    dict(SGD, name="flush", seed=13, model="mlp", dtype="f64", ranks=1, accum_steps=3, clip_norm=0.0,
         micro_batches=[[3, 3, 3], [3, 3, 3], [3, 2]],
         description="a short final window of 2 micro-batches (3+2 samples) ended by flush()"),
    dict(SGD, name="clip", seed=14, model="mlp", dtype="f64", ranks=1, accum_steps=2, clip_norm=0.6,
         micro_batches=[[3, 2], [3, 2], [3, 2], [3, 2]], lr=0.5,
         description="clip_norm 0.6: the window's mean gradient is clipped in some windows, not in others"),
    dict(name="adamw", sizes=SIZES, seed=15, model="mlp", dtype="f64", ranks=1, accum_steps=2, clip_norm=0.0,
         micro_batches=[[3, 2], [3, 2], [3, 2]], optimizer="adamw", lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
         weight_decay=1e-2, description="AdamW (lr 1e-2, weight decay 1e-2), micro-batches 3+2"),
    dict(SGD, name="bn_micro", seed=16, model="bn_mlp", dtype="f32", ranks=1, accum_steps=2, clip_norm=0.0,
         micro_batches=[[4, 4], [4, 3], [4, 4]], bn_stats="micro",
         description="Linear-BatchNorm-ReLU-Linear, per-micro-batch running statistics (PyTorch run micro-batch "
                     "by micro-batch with accumulated gradients)"),
    dict(SGD, name="bn_window", seed=16, model="bn_mlp", dtype="f32", ranks=1, accum_steps=2, clip_norm=0.0,
         micro_batches=[[4, 4], [4, 3], [4, 4]], bn_stats="window",
         description="as bn_micro with window-merged running statistics (BatchNormOptions::window_stats): "
                     "one update per window with the large batch's mean and unbiased variance"),
    dict(SGD, name="ranks3", seed=17, model="mlp", dtype="f64", ranks=3, accum_steps=2, clip_norm=0.0,
         micro_batches=[[3, 2, 2, 2, 3, 1], [3, 2, 2, 2, 3, 1], [2, 2, 1]],
         description="3 ranks x accum 2 with uneven shards (rank r's micro-step k is entry 3k+r), a short "
                     "final window of one micro-step flushed; the fixture is the large batch over all ranks"),
    dict(SGD, name="ranks3_bn_window", seed=18, model="bn_mlp", dtype="f32", ranks=3, accum_steps=2, clip_norm=0.0,
         micro_batches=[[3, 2, 2, 2, 3, 2], [2, 2, 2, 3, 3, 3]], bn_stats="window",
         description="3 ranks x accum 2, Linear-BatchNorm-ReLU-Linear with window-merged running statistics: "
                     "each rank's micro-batch normalized with its own statistics, the running statistics "
                     "updated once per window with the large batch's over all ranks"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare a fresh run with the committed fixtures")
    ap.add_argument("--out", default=OUT_DIR, help="fixture directory (default tests/fixtures/accumulation)")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # one summation order on every machine
    os.makedirs(args.out, exist_ok=True)
    failures = 0
    for c in CASES:
        tensors, meta = run_case(c)
        path = os.path.join(args.out, c["name"] + ".safetensors")
        if args.check:
            failures += check(path, tensors, meta)
        else:
            write_safetensors(path, tensors, meta)
            print("wrote %s (%d tensors)" % (os.path.relpath(path), len(tensors)))
    if args.check:
        print("make_reference --check: %s" % ("%d problem(s)" % failures if failures else
                                              "all %d fixtures reproduced within %g" % (len(CASES), CHECK_TOL)))
    return 1 if failures else 0


def check(path, tensors, meta):
    """Counts the differences between a fresh case and its committed file."""
    if not os.path.exists(path):
        print("%s: missing" % path)
        return 1
    committed, cmeta = read_safetensors(path)
    bad = 0
    for k in meta:
        if k != "torch_version" and cmeta.get(k) != meta[k]:
            print("%s: metadata %s: committed %r, fresh %r" % (path, k, cmeta.get(k), meta[k]))
            bad += 1
    return bad + compare_tensors(path, committed, tensors, CHECK_TOL)


def compare_tensors(path, committed, tensors, tol):
    """Counts (and prints) the differences between fresh (name, tensor) pairs and a committed file's
    tensors: names on one side only, shapes, and values off by more than tol * max(max|committed|, 1)
    (integer tensors: any difference). Shared by the fixture generators' --check."""
    bad = 0
    names = [n for n, _ in tensors]
    for n in sorted(set(committed) ^ set(names)):
        print("%s: tensor %s only in the %s" % (path, n, "committed file" if n in committed else "fresh run"))
        bad += 1
    for n, t in tensors:
        if n not in committed:
            continue
        a, b = t.double(), committed[n].double()
        if a.shape != b.shape:
            print("%s: %s: shape %s, committed %s" % (path, n, list(a.shape), list(b.shape)))
            bad += 1
            continue
        err = (a - b).abs().max().item() if a.numel() else 0.0
        bound = tol * max(b.abs().max().item() if b.numel() else 0.0, 1.0)
        if err > bound or (t.dtype == torch.int64 and err != 0.0):
            print("%s: %s differs by %.3g (bound %.3g)" % (path, n, err, bound))
            bad += 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
