#!/usr/bin/env python3
# @file scripts/bench_time_to_accuracy.py @brief Wall time to 0.91 test accuracy, Ember vs PyTorch: make train's run (CNN + BN, micro 32 x accum 4, AdamW, cosine over 5 epochs) with the test set evaluated after every epoch.
"""Trains `make train`'s configuration with ember-train and with its PyTorch twin
(scripts/bench_torch_train.py --eval) and reports, for each, the wall time until the test accuracy first
reaches --target (default 0.91), and at which epoch, side by side.

Both get every setting as flags from MAKE_TRAIN (ember-train's defaults, examples/ember_train/cli.h): CNN
with batch norm, micro-batch 32 x accum 4, AdamW (lr 3e-3, weight decay 0.01, betas (0.9, 0.999), eps
1e-8), a cosine schedule over --epochs (5, make train's: the horizon stays 5 epochs when --max-epochs stops
a run earlier), seed 0, --threads threads (default: all cores, as make train's --threads 0).

ember-train evaluates the test set at epoch ends only, so the times are at epoch granularity: the wall
time from launching the process until the evaluation of the first epoch that reaches the target has been
printed. It includes the start-up (reading Fashion-MNIST; for PyTorch also the interpreter and `import
torch`) and the earlier epochs' evaluations, for both alike; the start-up is also reported on its own
(until the process printed that it is ready to train). A run stops once it has reached the target (unless
--keep-going) or after --max-epochs epochs.

    scripts/bench_time_to_accuracy.py --ember build/ember-train [--max-epochs 5] [--json out/bench/accuracy.json]
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import bench_common as bc

# make train's configuration: ember-train's defaults (examples/ember_train/cli.h TrainOptions and
# resolved_*, optim/adamw.h AdamWOptions), written out; tests/scripts/test_bench_scripts.py checks them.
MAKE_TRAIN = {"model": "cnn", "norm": "batch", "micro_batch": 32, "accum": 4, "epochs": 5, "optimizer": "adamw",
              "lr": 3e-3, "weight_decay": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "schedule": "cosine",
              "warmup": 0, "seed": 0}
EMBER_EPOCH = re.compile(r"^epoch (\d+)/(\d+): test accuracy ([0-9.]+), test loss ([0-9.naif]+)")
GRANULARITY = ("ember-train evaluates the test set at epoch ends only: times are at epoch granularity (wall time "
               "from the process launch until the first epoch reaching the target was evaluated, start-up and "
               "earlier evaluations included)")


def optimizer_hp(cfg):
    return {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"], "betas": cfg["betas"], "eps": cfg["eps"]}


def limits(a):
    """--limit-train/--limit-test as flags of both programs (smoke runs)."""
    return [f for flag, n in (("--limit-train", a.limit_train), ("--limit-test", a.limit_test)) if n
            for f in (flag, str(n))]


def ember_command(ember, cfg, epochs, threads, data=None):
    cmd = [ember, "--model", cfg["model"], "--norm", cfg["norm"], "--micro-batch", str(cfg["micro_batch"]),
           "--accum", str(cfg["accum"]), "--epochs", str(epochs), *bc.ember_optimizer_flags(cfg["optimizer"],
                                                                                         optimizer_hp(cfg)),
           "--schedule", cfg["schedule"], "--warmup", str(cfg["warmup"]), "--seed", str(cfg["seed"]),
           "--threads", str(threads), "--no-progress", "--log-every", "1000000"]
    return cmd + (["--data", data] if data else [])


def torch_command(python, cfg, epochs, max_epochs, threads, data=None):
    cmd = [python, bc.TORCH_TWIN, "--model", cfg["model"], "--norm", cfg["norm"], "--micro-batch",
           str(cfg["micro_batch"]), "--accum", str(cfg["accum"]), "--epochs", str(epochs), "--max-epochs",
           str(max_epochs), "--eval", *bc.torch_optimizer_flags(cfg["optimizer"], optimizer_hp(cfg)),
           "--schedule", cfg["schedule"], "--warmup", str(cfg["warmup"]), "--seed", str(cfg["seed"]),
           "--threads", str(threads)]
    return cmd + (["--data", data] if data else [])


def parse_ember_line(line):
    """ember-train's line after an epoch's evaluation -> {epoch, test_accuracy, test_loss}, else None."""
    m = EMBER_EPOCH.match(line)
    return {"epoch": int(m[1]), "test_accuracy": float(m[3]), "test_loss": float(m[4])} if m else None


def parse_torch_line(line):
    """The twin's JSON lines: ("epoch", record), ("start", {}) or (None, None)."""
    if not line.startswith("{"):
        return None, None
    try:
        j = json.loads(line)
    except json.JSONDecodeError:
        return None, None
    return j.get("event"), j


def first_reaching(epochs, target):
    """The first epoch record whose test accuracy reaches `target`, or None."""
    return next((e for e in epochs if e["test_accuracy"] >= target), None)


def watch(cmd, env, kind, target, max_epochs, keep_going):
    """Runs one training process, timestamping its output lines from the launch; stops it once it reached
    the target (unless keep_going) or after max_epochs evaluations. Returns the run's record."""
    with tempfile.TemporaryFile(mode="w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        epochs, ready_s, stopped, tail = [], None, False, []
        for line in p.stdout:
            now = time.perf_counter() - t0
            line = line.rstrip("\n")
            tail = (tail + [line])[-20:]
            if kind == "ember":
                rec = parse_ember_line(line)
                if ready_s is None and line.startswith("ember-train: "):  # its first line: set up, training next
                    ready_s = now
            else:
                event, rec = parse_torch_line(line)
                if event == "start":
                    ready_s = now
                rec = rec if event == "epoch" else None
            if rec is None:
                continue
            rec["wall_s"] = now
            epochs.append(rec)
            print(f"    epoch {rec['epoch']}: test accuracy {rec['test_accuracy']:.4f} at {now:7.1f} s", flush=True)
            if len(epochs) >= max_epochs or (rec["test_accuracy"] >= target and not keep_going):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    stopped = True
                break
        p.stdout.close()
        rc = p.wait()
        if rc != 0 and not (stopped and rc in (-signal.SIGTERM, 128 + signal.SIGTERM)):
            err.seek(0)
            bc.fail(f"{' '.join(cmd)} failed ({rc}):\n" + "\n".join(tail) + "\n" + err.read())
    if not epochs:
        bc.fail(f"{' '.join(cmd)}: no test evaluation in its output:\n" + "\n".join(tail))
    hit = first_reaching(epochs, target)
    return {"command": " ".join(cmd), "epochs": epochs, "ready_s": ready_s, "stopped_early": stopped,
            "reached": hit is not None, "epoch_to_target": hit["epoch"] if hit else None,
            "wall_s_to_target": hit["wall_s"] if hit else None,
            "best_accuracy": max(e["test_accuracy"] for e in epochs)}


def summarize(runs, frameworks, target):
    """Per framework: in how many rounds it reached the target, the median epoch and wall time over those."""
    out = []
    for fw in frameworks:
        mine = [r for r in runs if r["framework"] == fw]
        hit = [r for r in mine if r["reached"]]
        out.append({"framework": fw, "rounds": len(mine), "reached": len(hit), "target": target,
                    "epoch_to_target": statistics.median(r["epoch_to_target"] for r in hit) if hit else None,
                    "wall_s_to_target": statistics.median(r["wall_s_to_target"] for r in hit) if hit else None,
                    "ready_s": statistics.median(r["ready_s"] for r in mine if r["ready_s"] is not None)
                    if any(r["ready_s"] is not None for r in mine) else None,
                    "best_accuracy": max(r["best_accuracy"] for r in mine)})
    return out


def speedup(summary):
    """Ember's wall time to the target against the fastest PyTorch configuration's: (ratio, that config)
    with ratio = PyTorch / Ember (> 1: Ember is faster), or None where either did not reach it."""
    ember = next((s for s in summary if s["framework"] == "ember"), None)
    torch = [s for s in summary if s["framework"] != "ember" and s["wall_s_to_target"] is not None]
    if not ember or ember["wall_s_to_target"] is None or not torch:
        return None
    best = min(torch, key=lambda s: s["wall_s_to_target"])
    return {"pytorch_best": best["framework"], "ratio": best["wall_s_to_target"] / ember["wall_s_to_target"]}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ember", default=f"{bc.REPO}/build/ember-train", help="the ember-train binary")
    ap.add_argument("--data", help="Fashion-MNIST folder for both (default: each one's default)")
    ap.add_argument("--target", type=float, default=0.91, help="test accuracy to reach")
    ap.add_argument("--max-epochs", type=int, default=5, help="stop a run after this many epochs (<= --epochs)")
    ap.add_argument("--epochs", type=int, default=MAKE_TRAIN["epochs"],
                    help="the run's length for the cosine schedule (make train's: 5)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both [default: all cores]")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved repetitions (medians over the rounds)")
    ap.add_argument("--keep-going", action="store_true", help="train --max-epochs epochs even after the target")
    ap.add_argument("--torch-blas", help="PyTorch BLAS variants, as scripts/bench_train.py's: system, "
                                         "openblas-openmp [default: openblas-openmp, with the core Ember selects "
                                         "where OpenBLAS falls back to SSE3]")
    ap.add_argument("--torch-python", help="also train with this Python's torch (e.g. a venv with PyPI's 2.x)")
    ap.add_argument("--limit-train", type=int, default=0, help="only the first N training samples (smoke runs)")
    ap.add_argument("--limit-test", type=int, default=0, help="only the first N test samples (smoke runs)")
    ap.add_argument("--json", help="write the runs and the summary here")
    ap.add_argument("--markdown", help="write the tables here as Markdown")
    a = ap.parse_args(argv)
    if not 0 < a.target <= 1:
        ap.error(f"--target: a test accuracy in (0, 1], got {a.target}")
    if a.epochs < 1:
        ap.error(f"--epochs: must be >= 1, got {a.epochs}")
    if not 1 <= a.max_epochs <= a.epochs:
        ap.error(f"--max-epochs: must be in [1, --epochs = {a.epochs}], got {a.max_epochs}")
    if a.threads < 1 or a.rounds < 1:
        ap.error("--threads and --rounds: must be >= 1")
    if a.limit_train < 0 or a.limit_test < 0:
        ap.error("--limit-train and --limit-test: must be >= 0")
    return a


def main():
    a = parse_args()
    cfg = MAKE_TRAIN
    blas = {"system": None, "openblas-openmp": bc.OPENBLAS_OPENMP_DIR}
    default = ["openblas-openmp"]
    core = bc.openblas_fallback_core(a.ember)
    if core:  # the kernels Ember selects itself, for PyTorch through OPENBLAS_CORETYPE (as bench_train)
        blas[f"openblas-openmp {core}"] = (bc.OPENBLAS_OPENMP_DIR, core)
        default = [f"openblas-openmp {core}"]
    names = a.torch_blas.split(",") if a.torch_blas else default
    for b in names:
        if b not in blas:
            bc.fail(f"--torch-blas: unknown variant {b!r} ({', '.join(blas)})")
    variants = {f"pytorch {b}": blas[b] for b in names}
    if a.torch_python:
        version = subprocess.run([a.torch_python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                                 text=True).stdout.strip() or bc.fail(f"--torch-python {a.torch_python}: no torch")
        variants[f"pytorch torch {version}"] = {"python": a.torch_python}
    frameworks = ["ember"] + list(variants)

    info = bc.machine()
    print(bc.machine_line(info), flush=True)
    print(f"bench_time_to_accuracy: test accuracy >= {a.target} with make train's run: {cfg['model']} + BN, micro "
          f"{cfg['micro_batch']} x accum {cfg['accum']}, AdamW lr {cfg['lr']:g} wd {cfg['weight_decay']:g}, "
          f"{cfg['schedule']} over {a.epochs} epochs; {a.threads} threads, at most {a.max_epochs} epochs, "
          f"{a.rounds} round(s), load {info['load_1min_at_start']:.2f}", flush=True)
    print(f"note: {GRANULARITY}", flush=True)
    runs = []
    for rnd in range(a.rounds):
        for fw in frameworks:
            print(f"  round {rnd + 1} {fw}:", flush=True)
            if fw == "ember":
                cmd = ember_command(a.ember, cfg, a.epochs, a.threads, a.data) + limits(a)
                env = bc.thread_env(a.threads)
            else:
                python, blas_dir = bc.torch_python(variants[fw])
                cmd = torch_command(python, cfg, a.epochs, a.max_epochs, a.threads, a.data) + limits(a)
                env = bc.thread_env(a.threads, blas_dir)
            r = watch(cmd, env, "ember" if fw == "ember" else "torch", a.target, a.max_epochs, a.keep_going)
            r.update({"framework": fw, "round": rnd})
            runs.append(r)

    summary = summarize(runs, frameworks, a.target)
    ratio = speedup(summary)
    tables = report(summary, runs, frameworks, ratio, a, info)
    print("\n" + tables, end="")
    if a.markdown:
        bc.write_atomically(a.markdown, tables)
    if a.json:
        bc.write_atomically(a.json, json.dumps({"machine": info, "args": vars(a), "config": cfg,
                                                "granularity": "epoch", "note": GRANULARITY, "runs": runs,
                                                "summary": summary, "speedup": ratio}, indent=2) + "\n")
    return 0


def report(summary, runs, frameworks, ratio, a, info):
    """The Markdown text: the per-framework summary, the accuracy after every epoch, the speed-up line."""
    def fmt(v, f):
        return "-" if v is None else format(v, f)

    head = bc.markdown_table(
        ["framework", f"reached {a.target} (rounds)", "at epoch (median)", f"wall s to {a.target} (median)",
         "start-up s", "best test accuracy"],
        [[s["framework"], f"{s['reached']}/{s['rounds']}", fmt(s["epoch_to_target"], "g"),
          fmt(s["wall_s_to_target"], ".1f"), fmt(s["ready_s"], ".1f"), f"{s['best_accuracy']:.4f}"] for s in summary])
    last = max(len(r["epochs"]) for r in runs)
    rows = []
    for e in range(1, last + 1):
        row = [e]
        for fw in frameworks:
            recs = [x for r in runs if r["framework"] == fw for x in r["epochs"] if x["epoch"] == e]
            row.append(f"{statistics.median(x['test_accuracy'] for x in recs):.4f} at "
                       f"{statistics.median(x['wall_s'] for x in recs):.1f} s" if recs else "-")
        rows.append(row)
    per_epoch = bc.markdown_table(["epoch"] + [f"{fw}: test accuracy at wall s" for fw in frameworks], rows)
    if ratio:
        line = (f"time to {a.target}: PyTorch's fastest ({ratio['pytorch_best']}) / Ember = {ratio['ratio']:.2f}x "
                f"on {info['cpu']}, {a.threads} threads (epoch granularity)\n")
    else:
        missed = [s["framework"] for s in summary if s["wall_s_to_target"] is None]
        line = f"time to {a.target}: no ratio ({', '.join(missed)}: not reached within {a.max_epochs} epochs)\n"
    return head + "\n" + per_epoch + "\n" + line


if __name__ == "__main__":
    sys.exit(main())
