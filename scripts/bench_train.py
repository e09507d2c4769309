#!/usr/bin/env python3
# @file scripts/bench_train.py @brief Training throughput, Ember vs PyTorch side by side: same models, data, micro-batch x accum and optimizer (AdamW, SGD or both), on the CPU at 1 and 2 threads or on one GPU (--device cuda); prints samples/s and the ratios.
"""Runs ember-train and its PyTorch twin (scripts/bench_torch_train.py) for each model and thread count,
interleaved over several rounds (the machine is noisy: each configuration's median over the rounds is
reported, and every ratio compares runs made in the same invocation). The rate is the steady state:
samples from the end of optimizer step --warmup-steps to the last step, over that time.

On the CPU (--device cpu, the default), PyTorch runs with the system's BLAS (Debian's default, OpenBLAS
pthread) and with OpenBLAS for OpenMP (the one Ember links); its best (configuration, thread count) per
model is the baseline of the ratios. With --device cuda both run on the first GPU (ember-train --device
cuda; the twin with the model on the GPU and torch.cuda.synchronize() around its step times), with the
same model, micro-batch, accumulation and step flags, and --threads defaults to 1 (the CPU only gathers
the micro-batches).

--optimizer adamw (the default), sgd, or sgd,adamw for both (interleaved; the optimizer is a column of the
tables and a field of every run): both frameworks get every hyperparameter as flags from one table,
bench_common.OPTIMIZERS (SGD: ember-train's defaults lr 0.05, momentum 0.9, weight decay 0, dampening 0,
no nesterov; AdamW: lr 1e-3, weight decay 0.01, betas (0.9, 0.999), eps 1e-8), with a constant lr.

On the CPU the output ends with the targets bar (TARGETS: MLP-BN >= 2.0x and CNN-BN >= 1.5x PyTorch's best
config and thread count, per optimizer), e.g. "target mlp-bn adamw >= 2.0x: met (2.05x)", also in the
--json ("targets") and --markdown files.

    scripts/bench_train.py --ember build/ember-train [--optimizer sgd,adamw] [--rounds 3] [--steps 150] [--json out/bench/train.json]
    scripts/bench_train.py --device cuda --ember build-gpu/ember-train [--data DIR] ...
"""
import argparse
import json
import statistics
import subprocess
import sys

import bench_common as bc

UNITS = {"mlp": "samples/s", "cnn": "samples/s", "gpt": "tokens/s"}
# The CPU-speed targets: Ember's best thread count >= this many times PyTorch's best (config, thread count).
TARGETS = {"mlp": 2.0, "cnn": 1.5}
LABELS = {"mlp": "mlp-bn", "cnn": "cnn-bn", "gpt": "gpt (4x128, T=64)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ember", default=f"{bc.REPO}/build/ember-train", help="the ember-train binary")
    ap.add_argument("--ember-lm", help="the ember-train-lm binary [default: beside --ember]")
    ap.add_argument("--models", default="mlp,cnn", help="mlp, cnn (samples/s) and gpt (tokens/s: ember-train-lm's "
                                                       "default GPT against scripts/gpt_twin.py, CPU only)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where both frameworks train")
    ap.add_argument("--data", help="Fashion-MNIST folder for both (default: each one's default)")
    ap.add_argument("--threads", help="CPU thread counts, comma-separated [default: 1,2 on the CPU, 1 on a GPU]")
    ap.add_argument("--optimizer", default="adamw", help="adamw, sgd, or sgd,adamw for both (interleaved); the "
                                                         "hyperparameters: bench_common.OPTIMIZERS [default: adamw]")
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--accum", type=int, default=4)
    ap.add_argument("--steps", type=int, default=150, help="optimizer steps per run")
    ap.add_argument("--warmup-steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions of every configuration")
    ap.add_argument("--torch-blas", help="PyTorch BLAS variants on the CPU: system (libblas.so.3 alternative), "
                                         "openblas-openmp, and where OpenBLAS falls back to its SSE3 kernels "
                                         "'openblas-openmp SkylakeX' (or Haswell) [default: all]")
    ap.add_argument("--torch-python", help="also run PyTorch under this Python (one with its own torch, e.g. a venv "
                                           "with PyPI's torch 2.x), as the variant 'torch <version>'")
    ap.add_argument("--torch-foreach", action="store_true", help="also run PyTorch with AdamW(foreach=True)")
    ap.add_argument("--json", help="write every run and the table here")
    ap.add_argument("--markdown", help="write the table here as Markdown")
    ap.add_argument("--plot", help="draw the median samples/s per configuration to this PNG (gnuplot)")
    ap.add_argument("--replot", metavar="JSON", help="only draw --plot from a --json file written before (no runs)")
    a = ap.parse_args()
    if a.replot:
        if not a.plot:
            bc.fail("--replot needs --plot")
        with open(a.replot) as f:
            saved = json.load(f)
        plot(a.plot, saved["runs"], saved["args"])
        return 0

    models = a.models.split(",")
    for m in models:
        if m not in UNITS:
            bc.fail(f"--models: unknown model {m!r} (mlp, cnn, gpt)")
    optimizers = bc.parse_optimizers(a.optimizer)
    cuda = a.device == "cuda"
    ember_lm = a.ember_lm or a.ember + "-lm"
    if "gpt" in models and cuda:
        bc.fail("--models gpt: the GPT benchmark runs on the CPU only")
    if "gpt" in models and optimizers != ["adamw"]:
        bc.fail("--models gpt: the GPT benchmark trains with AdamW only (--optimizer adamw)")
    if a.threads is None:
        a.threads = "1" if cuda else "1,2"
    threads = [int(t) for t in a.threads.split(",")]
    if cuda:
        if a.torch_blas:
            bc.fail("--torch-blas: applies to --device cpu (on a GPU PyTorch uses cuBLAS)")
        blas = {"cuda": None}  # the variant's name on a GPU; no BLAS library to choose
    else:
        blas = {"system": None, "openblas-openmp": bc.OPENBLAS_OPENMP_DIR}
        # OpenBLAS without a kernel for this CPU falls back to SSE3; Ember then picks AVX-512/AVX2 kernels
        # itself, and PyTorch gets the same ones through OPENBLAS_CORETYPE (a fair peer).
        core = bc.openblas_fallback_core(ember_lm if models == ["gpt"] else a.ember)
        if core:
            blas[f"openblas-openmp {core}"] = (bc.OPENBLAS_OPENMP_DIR, core)
    if a.torch_python:  # e.g. a venv with PyPI's torch 2.x (MKL, oneDNN, fused attention)
        version = subprocess.run([a.torch_python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                                 text=True).stdout.strip() or bc.fail(f"--torch-python {a.torch_python}: no torch")
        blas[f"torch {version}"] = {"python": a.torch_python}
    names = a.torch_blas.split(",") if a.torch_blas else list(blas)
    variants = [(b, False) for b in names]
    if a.torch_foreach:
        variants += [(b, True) for b in names]
    for b, _ in variants:
        if b not in blas:
            bc.fail(f"--torch-blas: unknown variant {b!r} (system, openblas-openmp)")
    ember_extra = ("--device", a.device) + (("--data", a.data) if a.data else ())

    info = bc.machine()
    print(bc.machine_line(info), flush=True)
    where = f"{info['cpu']}, {info['cores']} cores"
    if cuda:
        info["gpu"] = bc.gpu_name() or "unknown GPU"
        where = f"{info['gpu']} ({where})"
    print(f"bench_train: {where}, load {info['load_1min_at_start']:.2f}; "
          f"micro {a.micro_batch} x accum {a.accum}, {'/'.join(optimizers)}, {a.steps} steps, {a.rounds} rounds",
          flush=True)
    # dicts with model, optimizer, framework, config, threads, round, rate (samples/s, tokens/s for the GPT)
    runs = []
    for rnd in range(a.rounds):
        for model in models:
            unit = UNITS[model]
            for opt in optimizers:
                for t in threads:
                    if model == "gpt":
                        e = bc.run_ember_lm(ember_lm, a.micro_batch, a.accum, a.steps, t, a.warmup_steps)
                        rate = e["steady_tokens_per_s"]
                    else:
                        e = bc.run_ember(a.ember, model, a.micro_batch, a.accum, a.steps, t, a.warmup_steps,
                                         extra=ember_extra, optimizer=opt)
                        rate = e["steady_samples_per_s"]
                    runs.append({"model": model, "optimizer": opt, "framework": "ember", "config": "ember",
                                 "threads": t, "round": rnd, "samples_per_s": rate, "unit": unit,
                                 "command": e["command"], "peak_bytes": e["peak_bytes"]})
                    print(f"  round {rnd + 1} {model} {opt} ember   T={t}: {rate:8.0f} {unit}", flush=True)
                    for b, fe in variants:
                        if model == "gpt":
                            if fe:
                                continue  # the twin's AdamW is the default one
                            r = bc.run_torch_lm(a.micro_batch, a.accum, a.steps, t, a.warmup_steps, blas[b])
                            rate, r["blas"] = r["tokens_per_s"], b
                        else:
                            r = bc.run_torch(model, a.micro_batch, a.accum, a.steps, t, a.warmup_steps, blas[b], fe,
                                             device=a.device, data=a.data, optimizer=opt)
                            rate = r["samples_per_s"]
                        cfg = f"pytorch {b}" + (" foreach" if fe else "")
                        runs.append({"model": model, "optimizer": opt, "framework": "pytorch", "config": cfg,
                                     "threads": t, "round": rnd, "samples_per_s": rate, "unit": unit,
                                     "command": r["command"], "blas": r["blas"]})
                        print(f"  round {rnd + 1} {model} {opt} {cfg} T={t}: {rate:8.0f} {unit}", flush=True)

    configs = ["ember"] + [f"pytorch {b}" + (" foreach" if fe else "") for b, fe in variants]
    summary, rows = summarize(runs, models, optimizers, threads, configs)
    table = bc.markdown_table(["model", "optimizer", "framework", "threads", "rate (median)", "vs PyTorch best"], rows)
    ratios = bc.markdown_table(
        ["model", "optimizer", "Ember best (threads)", "PyTorch best (config, threads)", "Ember / PyTorch"],
        [[LABELS[s["model"]], s["optimizer"], f"{s['ember_best']:.0f} ({s['ember_best_threads']})",
          f"{s['pytorch_best']:.0f} ({s['pytorch_best_config']}, {s['pytorch_best_threads']})", f"{s['ratio']:.2f}x"]
         for s in summary])
    bar = [] if cuda else targets(summary)  # the targets are the CPU's
    bar_lines, bar_md = targets_text(bar, info)
    print("\n" + table + "\n" + ratios + "\n" + "\n".join(bar_lines) + "\n", end="")
    if a.markdown:
        bc.write_atomically(a.markdown, table + "\n" + ratios + ("\n" + bar_md if bar else ""))
    if a.json:
        bc.write_atomically(a.json, json.dumps({"machine": info, "args": vars(a), "runs": runs, "summary": summary,
                                                "targets": bar}, indent=2) + "\n")
    if a.plot:
        plot(a.plot, runs, vars(a))
    return 0


def targets(summary):
    """The targets bar: per summary row (model, optimizer) with a TARGETS entry, whether Ember's best reaches
    the target multiple of PyTorch's best. A list of {model, optimizer, target, ratio, met}."""
    return [{"model": s["model"], "optimizer": s["optimizer"], "target": TARGETS[s["model"]], "ratio": s["ratio"],
             "met": s["ratio"] >= TARGETS[s["model"]]} for s in summary if s["model"] in TARGETS]


def fmt_ratio(ratio, target):
    """"2.05x"; with a third decimal where two would round a miss up to the target ("1.996x", not "2.00x")."""
    text = f"{ratio:.2f}x"
    return f"{ratio:.3f}x" if ratio < target and float(text[:-1]) >= target else text


def targets_text(bar, info):
    """The bar as printed lines ("target mlp-bn adamw >= 2.0x: met (2.05x)") and as a Markdown table."""
    if not bar:
        return ["targets: none evaluated (they are the CPU's, for mlp and cnn)"], ""
    cpu = f"{info['cpu']}, {info['cores']} cores"
    lines = [f"targets on this machine ({cpu}): Ember's best vs PyTorch's best config and thread count, medians"]
    lines += [f"target {LABELS[t['model']]} {t['optimizer']} >= {t['target']:.1f}x: "
              f"{'met' if t['met'] else 'NOT met'} ({fmt_ratio(t['ratio'], t['target'])})" for t in bar]
    md = bc.markdown_table(["target", "Ember / PyTorch best", f"met on {cpu}"],
                           [[f"{LABELS[t['model']]} {t['optimizer']} >= {t['target']:.1f}x", fmt_ratio(t["ratio"], t["target"]),
                             "yes" if t["met"] else "**no**"] for t in bar])
    return lines, md


def summarize(runs, models, optimizers, threads, configs):
    """Per (model, optimizer): the medians over the rounds, Ember's best thread count against PyTorch's best
    (config, thread count). Returns (summary: a list of dicts, the rows of the per-configuration table)."""
    def median(model, opt, config, t):  # None where that configuration did not run
        v = [r["samples_per_s"] for r in runs if r["model"] == model and r.get("optimizer", "adamw") == opt and
             r["config"] == config and r["threads"] == t]
        return statistics.median(v) if v else None

    summary, rows = [], []
    for model in models:
        for opt in optimizers:
            cfgs = [c for c in configs if any(r["model"] == model and r.get("optimizer", "adamw") == opt and
                                              r["config"] == c for r in runs)]
            best_torch = max((m, c, t) for c in cfgs if c != "ember" for t in threads
                             if (m := median(model, opt, c, t)) is not None)
            best_ember = max((m, t) for t in threads if (m := median(model, opt, "ember", t)) is not None)
            summary.append({"model": model, "optimizer": opt, "ember_best": best_ember[0],
                            "ember_best_threads": best_ember[1], "pytorch_best": best_torch[0],
                            "pytorch_best_config": best_torch[1], "pytorch_best_threads": best_torch[2],
                            "ratio": best_ember[0] / best_torch[0]})
            for c in cfgs:
                for t in threads:
                    m = median(model, opt, c, t)
                    if m is None:
                        continue
                    rows.append([LABELS[model], opt, c, t, f"{m:.0f} {UNITS[model]}", f"{m / best_torch[0]:.2f}"])
    return summary, rows


def plot(path, runs, args):
    """Clustered bars: one cluster per (model, optimizer, threads), one bar per framework configuration (medians)."""
    configs = list(dict.fromkeys(r["config"] for r in runs))
    groups = list(dict.fromkeys((r["model"], r.get("optimizer", "adamw"), r["threads"]) for r in runs))
    several = len({opt for _, opt, _ in groups}) > 1
    lines = []
    for model, opt, t in groups:
        rates = [[r["samples_per_s"] for r in runs if r["model"] == model and r.get("optimizer", "adamw") == opt and
                  r["threads"] == t and r["config"] == c] for c in configs]
        meds = [f"{statistics.median(v):.0f}" if v else "NaN" for v in rates]  # gpt has no foreach variant
        label = LABELS.get(model, model) + (f" {opt}" if several else "")
        lines.append(f'"{label}\\n{t} thread{"s" if t > 1 else ""}" ' + " ".join(meds))
    optimizer = {"adamw": "AdamW", "sgd": "SGD"}
    title_opt = "/".join(optimizer.get(o, o) for o in args.get("optimizer", "adamw").split(","))
    cols = ", ".join(f"$d using {i + 2}:xtic(1) title '{c}'" for i, c in enumerate(configs))
    bc.gnuplot_png(path, "$d << EOD\n" + "\n".join(lines) + "\nEOD\n" + f"""
set title 'training samples/s (gpt: tokens/s){" on the GPU" if args.get("device") == "cuda" else ""}, micro {args["micro_batch"]} x accum {args["accum"]}, {title_opt} (median of {args["rounds"]} rounds)'
set ylabel 'samples/s (log scale)'
set logscale y
set yrange [500:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set bmargin 4
set grid y
plot {cols}
""")
    print(f"bench_train: plot {path}")


if __name__ == "__main__":
    sys.exit(main())
