#!/usr/bin/env python3
# @file tests/scripts/test_bench_scripts.py @brief ctest ember.scripts.bench: the training benchmarks' pure logic without PyTorch or training: the optimizer flags against the C++ defaults, argument errors, the targets bar, lscpu parsing, the time-to-accuracy bookkeeping over a fake ember-train; takes seconds.
"""Run with any python3 >= 3.9 (no torch needed): python3 tests/scripts/test_bench_scripts.py [-v]."""
import io
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts"))

import bench_common as bc  # noqa: E402
import bench_time_to_accuracy as tta  # noqa: E402
import bench_torch_train as twin  # noqa: E402
import bench_train as bt  # noqa: E402


def read(path):
    with open(os.path.join(REPO, path)) as f:
        return f.read()


def fails(fn, *args):
    """Calls fn(*args), which must exit (bc.fail or argparse); returns what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            fn(*args)
        except SystemExit as e:
            assert e.code not in (0, None), f"exit code {e.code}"
            return err.getvalue()
    raise AssertionError(f"{fn.__name__}{args} did not exit")


# lscpu (LC_ALL=C) of a 2-core Intel Xeon with AVX-512 and AMX, shortened, and of an AMD EPYC without AVX-512.
LSCPU_XEON = """Architecture:                            x86_64
CPU op-mode(s):                          32-bit, 64-bit
Vendor ID:                               GenuineIntel
Model name:                              Intel(R) Xeon(R) Processor
CPU family:                              6
Model:                                   207
Thread(s) per core:                      1
Stepping:                                2
Flags:                                   fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
L1d cache:                               96 KiB (2 instances)
NUMA node0 CPU(s):                       0,1
"""
LSCPU_EPYC = """Architecture:            x86_64
Vendor ID:               AuthenticAMD
  Model name:            AMD EPYC 7B13
    CPU family:          25
    Model:               1
    Stepping:            0
    Flags:               fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 sha_ni
"""
CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C
stepping\t: 8
flags\t\t: fpu avx2 fma avx512f amx_tile

processor\t: 1
model name\t: another
"""


class Optimizers(unittest.TestCase):
    def test_sgd_is_ember_trains_default(self):
        """bench_common.OPTIMIZERS["sgd"] is what `ember-train --optimizer sgd` uses (cli.h, optim/sgd.h)."""
        cli, sgd = read("examples/ember_train/cli.h"), read("optim/sgd.h")
        hp = bc.OPTIMIZERS["sgd"]
        self.assertIn(f"optimizer == OptimizerKind::SGD ? {hp['lr']!r}", cli)
        self.assertRegex(cli, rf"resolved_momentum\(\) const {{ return momentum.value_or\(optimizer == "
                              rf"OptimizerKind::SGD \? {hp['momentum']!r} :")
        self.assertRegex(cli, r"resolved_weight_decay\(\) const { return weight_decay.value_or\(optimizer == "
                              r"OptimizerKind::SGD \? 0\.0 :")
        self.assertEqual(hp["weight_decay"], 0.0)
        self.assertRegex(sgd, rf"double dampening = {hp['dampening']!r};")
        self.assertRegex(sgd, rf"bool nesterov = {str(hp['nesterov']).lower()};")

    def test_adamw_constants_and_make_train(self):
        """AdamW's betas/eps (optim/adamw.h) and make train's defaults (cli.h) as the scripts write them out."""
        adamw, cli = read("optim/adamw.h"), read("examples/ember_train/cli.h")
        for hp in (bc.OPTIMIZERS["adamw"], tta.MAKE_TRAIN):
            self.assertIn(f"betas = {{{hp['betas'][0]!r}, {hp['betas'][1]!r}}}", adamw)
            self.assertIn(f"double eps = {hp['eps']!r}".replace("1e-08", "1e-8"), adamw)
        mt = tta.MAKE_TRAIN
        for field, value in (("ModelKind model", "ModelKind::CNN"), ("NormKind norm", "NormKind::Batch"),
                             ("int64_t micro_batch", str(mt["micro_batch"])), ("int64_t accum", str(mt["accum"])),
                             ("int64_t epochs", str(mt["epochs"])), ("OptimizerKind optimizer", "OptimizerKind::AdamW"),
                             ("ScheduleKind schedule", "ScheduleKind::Cosine"), ("int64_t warmup", str(mt["warmup"])),
                             ("uint64_t seed", str(mt["seed"]))):
            self.assertRegex(cli, rf"{re.escape(field)} = {re.escape(value)};", field)
        self.assertEqual((mt["model"], mt["norm"], mt["optimizer"], mt["schedule"]), ("cnn", "batch", "adamw", "cosine"))
        self.assertIn(": model == ModelKind::GPT ? 1e-3 : 3e-3);", cli)
        self.assertEqual(mt["lr"], 3e-3)
        self.assertIn("weight_decay.value_or(optimizer == OptimizerKind::SGD ? 0.0 : 1e-2)", cli)
        self.assertEqual(mt["weight_decay"], 1e-2)

    def test_flags_of_both_sides(self):
        self.assertEqual(bc.ember_optimizer_flags("sgd"),
                         ["--optimizer", "sgd", "--lr", "0.05", "--weight-decay", "0.0", "--momentum", "0.9"])
        self.assertEqual(bc.torch_optimizer_flags("sgd"),
                         ["--optimizer", "sgd", "--lr", "0.05", "--weight-decay", "0.0", "--momentum", "0.9",
                          "--dampening", "0.0", "--no-nesterov"])
        self.assertEqual(bc.ember_optimizer_flags("adamw"), ["--optimizer", "adamw", "--lr", "0.001",
                                                             "--weight-decay", "0.01"])
        # The twin parses what it is given into the same values.
        for name in bc.OPTIMIZERS:
            a = twin.parse_args(["--model", "mlp", "--threads", "1", "--steps", "2", *bc.torch_optimizer_flags(name)])
            hp = bc.OPTIMIZERS[name]
            self.assertEqual((a.optimizer, a.lr, a.weight_decay), (name, hp["lr"], hp["weight_decay"]))
            if name == "sgd":
                self.assertEqual((a.momentum, a.dampening, a.nesterov), (hp["momentum"], hp["dampening"], hp["nesterov"]))
            else:
                self.assertEqual((tuple(a.betas), a.eps), (hp["betas"], hp["eps"]))

    def test_parse_optimizers(self):
        self.assertEqual(bc.parse_optimizers("adamw"), ["adamw"])
        self.assertEqual(bc.parse_optimizers("sgd,adamw"), ["sgd", "adamw"])
        self.assertIn("unknown optimizer 'rmsprop'", fails(bc.parse_optimizers, "rmsprop"))
        self.assertIn("unknown optimizer ''", fails(bc.parse_optimizers, "sgd,"))
        self.assertIn("names an optimizer twice", fails(bc.parse_optimizers, "sgd,sgd"))

    def test_bench_train_rejects_bad_arguments_before_running(self):
        """Through the real command line, with an ember-train that does not exist: the errors come first."""
        for args, msg in ((["--optimizer", "adam"], "--optimizer: unknown optimizer 'adam'"),
                          (["--models", "gpt", "--optimizer", "sgd"], "trains with AdamW only"),
                          (["--models", "rnn"], "--models: unknown model 'rnn'")):
            p = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "bench_train.py"),
                                "--ember", "/nonexistent/ember-train", *args], capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(msg, p.stderr)

    def test_twin_arguments_and_schedule(self):
        self.assertIn("--steps or --epochs is required", fails(twin.parse_args, ["--model", "cnn", "--threads", "1"]))
        self.assertIn("more than --epochs", fails(twin.parse_args, ["--model", "cnn", "--threads", "1", "--epochs", "2",
                                                                    "--max-epochs", "3"]))
        self.assertIn("invalid choice: 'adam'", fails(twin.parse_args, ["--model", "cnn", "--threads", "1", "--steps",
                                                                        "1", "--optimizer", "adam"]))
        # ember-train's CosineWithWarmup / ConstantWithWarmup (optim/lr_scheduler.cpp).
        self.assertEqual(twin.lr_factor("cosine", 0, 0, 10), 1.0)
        self.assertAlmostEqual(twin.lr_factor("cosine", 5, 0, 10), 0.5)
        self.assertEqual(twin.lr_factor("cosine", 10, 0, 10), 0.0)
        self.assertEqual(twin.lr_factor("cosine", 1, 4, 10), 0.5)  # warm-up: (s + 1) / warmup
        self.assertEqual(twin.lr_factor("constant", 7, 0, 0), 1.0)
        # Fashion-MNIST's 60000 samples in micro-batches of 32, windows of 4: the last window has 3 (96 samples).
        sizes, window_of = twin.window_sizes(60000, 32, 4)
        self.assertEqual((len(sizes), window_of[0], window_of[-1], window_of[-4]), (1875, 128, 96, 128))
        sizes, window_of = twin.window_sizes(100, 32, 2)
        self.assertEqual((sizes, window_of), ([32, 32, 32, 4], [64, 64, 36, 36]))


def summary_row(model, opt, ratio):
    return {"model": model, "optimizer": opt, "ratio": ratio}


class Targets(unittest.TestCase):
    def test_bar(self):
        bar = bt.targets([summary_row("mlp", "adamw", 2.05), summary_row("cnn", "adamw", 1.18),
                          summary_row("cnn", "sgd", 1.5), summary_row("gpt", "adamw", 3.0)])
        self.assertEqual([(t["model"], t["optimizer"], t["target"], t["met"]) for t in bar],
                         [("mlp", "adamw", 2.0, True), ("cnn", "adamw", 1.5, False), ("cnn", "sgd", 1.5, True)])
        lines, md = bt.targets_text(bar, {"cpu": "Test CPU", "cores": 2})
        self.assertIn("target mlp-bn adamw >= 2.0x: met (2.05x)", lines)
        self.assertIn("target cnn-bn adamw >= 1.5x: NOT met (1.18x)", lines)
        self.assertIn("target cnn-bn sgd >= 1.5x: met (1.50x)", lines)
        self.assertIn("| cnn-bn adamw >= 1.5x | 1.18x | **no** |", md)
        self.assertIn("| mlp-bn adamw >= 2.0x | 2.05x | yes |", md)
        self.assertEqual(bt.targets_text([], {"cpu": "x", "cores": 1})[1], "")

    def test_a_near_miss_is_not_printed_as_the_target(self):
        bar = bt.targets([summary_row("mlp", "sgd", 1.9962)])
        self.assertFalse(bar[0]["met"])
        self.assertIn("target mlp-bn sgd >= 2.0x: NOT met (1.996x)", bt.targets_text(bar, {"cpu": "c", "cores": 2})[0])

    def test_summarize_takes_the_best_config_and_thread_count_per_optimizer(self):
        runs = []
        for opt, ember, torch in (("sgd", {1: 100, 2: 150}, {("pytorch a", 1): 80, ("pytorch b", 2): 100}),
                                  ("adamw", {1: 90, 2: 80}, {("pytorch a", 1): 30, ("pytorch b", 2): 45})):
            for rnd, noise in enumerate((0, 10, -10)):  # medians over the rounds
                for t, rate in ember.items():
                    runs.append({"model": "mlp", "optimizer": opt, "config": "ember", "threads": t,
                                 "samples_per_s": rate + noise})
                for (cfg, t), rate in torch.items():
                    runs.append({"model": "mlp", "optimizer": opt, "config": cfg, "threads": t,
                                 "samples_per_s": rate + noise})
        summary, rows = bt.summarize(runs, ["mlp"], ["sgd", "adamw"], [1, 2], ["ember", "pytorch a", "pytorch b"])
        self.assertEqual([(s["optimizer"], s["ember_best_threads"], s["pytorch_best_config"], s["pytorch_best_threads"],
                           s["ratio"]) for s in summary],
                         [("sgd", 2, "pytorch b", 2, 1.5), ("adamw", 1, "pytorch b", 2, 2.0)])
        self.assertIn(["mlp-bn", "adamw", "ember", 1, "90 samples/s", "2.00"], rows)
        self.assertEqual([t["met"] for t in bt.targets(summary)], [False, True])


class Machine(unittest.TestCase):
    def test_lscpu_xeon(self):
        m = bc.machine(LSCPU_XEON)
        self.assertEqual((m["cpu"], m["cpu_vendor"], m["cpu_family"], m["cpu_model"], m["cpu_stepping"]),
                         ("Intel(R) Xeon(R) Processor", "GenuineIntel", 6, 207, 2))
        self.assertTrue(all(m["isa"][f] for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_int8")))
        self.assertFalse(m["isa"]["avx_vnni"])
        self.assertIn("ssse3", m["cpu_flags"])  # the full list is kept
        self.assertEqual(len(m["cpu_flags"]), 20)
        for key in ("cores", "kernel", "load_1min_at_start"):
            self.assertIn(key, m)
        line = bc.machine_line(m)
        self.assertTrue(line.startswith("machine: Intel(R) Xeon(R) Processor (family 6, model 207), "), line)
        self.assertIn("AVX2+FMA yes, AVX-512 yes (vnni, bf16, fp16), AMX yes (bf16, int8)", line)
        self.assertNotIn("\n", line)

    def test_lscpu_epyc_indented(self):
        """Newer lscpu indents the per-model fields."""
        m = bc.machine(LSCPU_EPYC)
        self.assertEqual((m["cpu"], m["cpu_family"], m["cpu_model"]), ("AMD EPYC 7B13", 25, 1))
        self.assertTrue(m["isa"]["avx2"] and not m["isa"]["avx512f"] and not m["isa"]["amx_tile"])
        self.assertIn("AVX2+FMA yes, AVX-512 no, AMX no", bc.machine_line(m))

    def test_cpuinfo_fallback(self):
        c = bc.parse_cpuinfo(CPUINFO)
        self.assertEqual((c["cpu"], c["cpu_family"], c["cpu_model"], c["cpu_stepping"]),
                         ("Intel(R) Xeon(R) Platinum 8481C", 6, 143, 8))
        self.assertEqual(c["cpu_flags"], ["fpu", "avx2", "fma", "avx512f", "amx_tile"])

    def test_this_machine(self):
        m = bc.machine()
        self.assertTrue(m["cpu"])
        self.assertTrue(bc.machine_line(m).startswith("machine: "))


class TimeToAccuracy(unittest.TestCase):
    def test_arguments(self):
        self.assertIn("--max-epochs: must be in [1, --epochs = 5], got 6", fails(tta.parse_args, ["--max-epochs", "6"]))
        self.assertIn("--target: a test accuracy in (0, 1]", fails(tta.parse_args, ["--target", "91"]))
        a = tta.parse_args([])
        self.assertEqual((a.target, a.max_epochs, a.epochs), (0.91, 5, 5))

    def test_both_commands_carry_the_same_settings(self):
        cfg = tta.MAKE_TRAIN
        e = tta.ember_command("ember-train", cfg, 5, 2)
        t = tta.torch_command("python3", cfg, 5, 3, 2)
        for flag, value in (("--model", "cnn"), ("--norm", "batch"), ("--micro-batch", "32"), ("--accum", "4"),
                            ("--epochs", "5"), ("--optimizer", "adamw"), ("--lr", "0.003"), ("--weight-decay", "0.01"),
                            ("--schedule", "cosine"), ("--warmup", "0"), ("--seed", "0"), ("--threads", "2")):
            for cmd in (e, t):
                self.assertEqual(cmd[cmd.index(flag) + 1], value, (flag, cmd))
        self.assertIn("--eval", t)
        self.assertEqual(t[t.index("--max-epochs") + 1], "3")
        a = twin.parse_args(t[2:])  # the twin accepts it
        self.assertEqual((a.schedule, a.epochs, a.max_epochs, a.eval), ("cosine", 5, 3, True))

    def test_line_parsing(self):
        self.assertEqual(tta.parse_ember_line("epoch 3/5: test accuracy 0.9012, test loss 0.2750"),
                         {"epoch": 3, "test_accuracy": 0.9012, "test_loss": 0.275})
        self.assertIsNone(tta.parse_ember_line("epoch 3/5  step 1407/2345  loss 0.2  5000 samples/s"))
        self.assertEqual(tta.parse_torch_line('{"event": "epoch", "epoch": 1, "test_accuracy": 0.5}')[0], "epoch")
        self.assertEqual(tta.parse_torch_line("not json"), (None, None))

    def test_summary_and_speedup(self):
        def run(fw, accs, times):
            epochs = [{"epoch": i + 1, "test_accuracy": a, "wall_s": t} for i, (a, t) in enumerate(zip(accs, times))]
            hit = tta.first_reaching(epochs, 0.91)
            return {"framework": fw, "epochs": epochs, "ready_s": 1.0, "reached": hit is not None,
                    "epoch_to_target": hit and hit["epoch"], "wall_s_to_target": hit and hit["wall_s"],
                    "best_accuracy": max(accs)}
        runs = [run("ember", [0.88, 0.905, 0.912], [10, 20, 30]), run("pytorch a", [0.87, 0.91], [15, 30]),
                run("pytorch b", [0.86, 0.90, 0.909], [14, 28, 42])]
        s = tta.summarize(runs, ["ember", "pytorch a", "pytorch b"], 0.91)
        self.assertEqual([(x["reached"], x["epoch_to_target"], x["wall_s_to_target"]) for x in s],
                         [(1, 3, 30), (1, 2, 30), (0, None, None)])
        self.assertEqual(tta.speedup(s), {"pytorch_best": "pytorch a", "ratio": 1.0})
        self.assertIsNone(tta.speedup([x for x in s if x["framework"] != "pytorch a"]))

    def test_watch_stops_a_run_at_the_target(self):
        """A fake ember-train that prints an evaluation every 0.1 s and would go on for a minute: watch
        timestamps the lines from the launch and stops the process at the first epoch reaching the target."""
        with tempfile.TemporaryDirectory() as tmp:
            fake = os.path.join(tmp, "ember-train")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho 'ember-train: cnn norm=batch optimizer=adamw lr=0.003 on cpu'\n"
                        "for a in 0.8500 0.8900 0.9120 0.9200 0.9300; do sleep 0.1\n"
                        "  echo \"epoch x/5  step 1/1  loss 0.3\"\n"
                        "  echo \"epoch $((n=${n:-0}+1))/5: test accuracy $a, test loss 0.3000\"; done\nsleep 60\n")
            os.chmod(fake, 0o755)
            with contextlib.redirect_stdout(io.StringIO()):
                r = tta.watch([fake], dict(os.environ), "ember", 0.91, 5, keep_going=False)
                self.assertEqual(([e["epoch"] for e in r["epochs"]], r["epoch_to_target"], r["stopped_early"]),
                                 ([1, 2, 3], 3, True))
                self.assertTrue(0 < r["ready_s"] < r["epochs"][0]["wall_s"] < r["wall_s_to_target"] < 30)
                r = tta.watch([fake], dict(os.environ), "ember", 0.99, 2, keep_going=False)  # --max-epochs 2
                self.assertEqual((len(r["epochs"]), r["reached"], r["best_accuracy"]), (2, False, 0.89))
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho 'ember-train: error: --data: no such folder' >&2\nexit 1\n")
            self.assertIn("--data: no such folder", fails(tta.watch, [fake], dict(os.environ), "ember", 0.91, 5, False))


if __name__ == "__main__":
    unittest.main()
