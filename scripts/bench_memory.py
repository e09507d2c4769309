#!/usr/bin/env python3
# @file scripts/bench_memory.py @brief Peak memory vs accumulation steps: ember-train's (and ember-train-lm's) allocator peak at micro-batch 32 x accum 1..16 and for the large batch each one emulates; table + gnuplot PNG.
"""For each model and accumulation count N, runs ember-train twice for a few optimizer steps:
  accumulated:  --micro-batch B --accum N         (effective batch B*N, memory of one micro-batch)
  large batch:  --micro-batch B*N --accum 1       (the batch it emulates, all at once)
and reads `peak_bytes` (the CPU allocator's peak during training, core/allocator.h) from --summary.
The accumulated peak should be flat in N; the large batch's grows with B*N.

    scripts/bench_memory.py --ember build/ember-train [--accum 1,2,4,8,16] [--plot docs/images/bench_memory.png]
"""
import argparse
import json
import sys

import bench_common as bc

MIB = 1024.0 * 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ember", default=f"{bc.REPO}/build/ember-train")
    ap.add_argument("--ember-lm", help="the ember-train-lm binary (--models gpt) [default: beside --ember]")
    ap.add_argument("--models", default="mlp,cnn", help="mlp, cnn and gpt (ember-train-lm's default GPT, micro-batch "
                                                       "in sequences of 64 bytes)")
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--accum", default="1,2,4,8,16")
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps per run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--markdown", help="write the table here as Markdown")
    ap.add_argument("--plot", help="draw peak MiB vs effective batch to this PNG (gnuplot)")
    a = ap.parse_args()

    accums = [int(n) for n in a.accum.split(",")]
    info = bc.machine()
    print(bc.machine_line(info), flush=True)
    rows, data = [], {}
    for model in a.models.split(","):
        data[model] = []
        for n in accums:
            if model == "gpt":
                lm = a.ember_lm or a.ember + "-lm"
                acc = bc.run_ember_lm(lm, a.micro_batch, n, a.steps, a.threads, 0)
                big = bc.run_ember_lm(lm, a.micro_batch * n, 1, a.steps, a.threads, 0)
            else:
                acc = bc.run_ember(a.ember, model, a.micro_batch, n, a.steps, a.threads, 0)
                big = bc.run_ember(a.ember, model, a.micro_batch * n, 1, a.steps, a.threads, 0)
            rec = {"accum": n, "effective_batch": a.micro_batch * n, "accumulated_peak_bytes": acc["peak_bytes"],
                   "large_batch_peak_bytes": big["peak_bytes"], "accumulated_command": acc["command"],
                   "large_batch_command": big["command"]}
            data[model].append(rec)
            rows.append([model if model == "gpt" else f"{model}-bn", n, a.micro_batch * n, f"{acc['peak_bytes'] / MIB:.2f}",
                         f"{big['peak_bytes'] / MIB:.2f}", f"{big['peak_bytes'] / acc['peak_bytes']:.2f}x"])
            print(f"  {model} accum {n:2d}: {acc['peak_bytes'] / MIB:8.2f} MiB accumulated, "
                  f"{big['peak_bytes'] / MIB:8.2f} MiB as one batch of {a.micro_batch * n}", flush=True)
        base = data[model][0]["accumulated_peak_bytes"]
        spread = max(r["accumulated_peak_bytes"] for r in data[model]) / base
        print(f"  {model}: accumulated peak max/min over accum {a.accum} = {spread:.4f}", flush=True)

    table = bc.markdown_table(["model", "accum", "effective batch", f"peak MiB (micro {a.micro_batch} x accum)",
                               "peak MiB (one large batch)", "large / accumulated"], rows)
    print("\n" + table, end="")
    if a.markdown:
        bc.write_atomically(a.markdown, table)
    if a.json:
        bc.write_atomically(a.json, json.dumps({"machine": info, "args": vars(a), "models": data}, indent=2) + "\n")
    if a.plot:
        plot(a.plot, data, a.micro_batch)
    return 0


def plot(path, data, micro):
    blocks, series = [], []
    for i, (model, recs) in enumerate(data.items()):
        pts = "\n".join(f"{r['effective_batch']} {r['accumulated_peak_bytes'] / MIB} {r['large_batch_peak_bytes'] / MIB}"
                        for r in recs)
        blocks.append(f"$d{i} << EOD\n{pts}\nEOD\n")
        label = model if model == "gpt" else model + "-bn"
        series.append(f"$d{i} using 1:2 with linespoints lw 2 title '{label}: micro {micro} x accum'")
        series.append(f"$d{i} using 1:3 with linespoints lw 2 dt 2 title '{label}: one batch of that size'")
    bc.gnuplot_png(path, "".join(blocks) + f"""
set title 'ember-train peak allocator memory vs effective batch (CPU)'
set xlabel 'effective batch (samples per optimizer step)'
set ylabel 'peak MiB during training'
set logscale x 2
set logscale y 2
set key top left
set grid
plot {", ".join(series)}
""")
    print(f"bench_memory: plot {path}")


if __name__ == "__main__":
    sys.exit(main())
