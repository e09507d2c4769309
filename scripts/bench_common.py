# @file scripts/bench_common.py @brief Shared by the training benchmark scripts: running ember-train and the PyTorch twin, steady-state samples/s, Markdown tables, machine description.
"""Helpers for scripts/bench_train.py and scripts/bench_memory.py (not a benchmark by itself)."""
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_TWIN = os.path.join(REPO, "scripts", "bench_torch_train.py")
TORCH_LM_TWIN = os.path.join(REPO, "scripts", "bench_torch_lm.py")
# The GPT both frameworks train in the benchmarks: ember-train-lm's default shape.
LM_SHAPE = ("--block-size", "64", "--layers", "4", "--heads", "4", "--dim", "128")
# The same BLAS for both frameworks: Ember links OpenBLAS built for OpenMP by path; PyTorch loads whatever
# libblas.so.3 resolves to, so the twin gets this directory first on its library path (see --torch-blas).
OPENBLAS_OPENMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


# The optimizers the throughput benchmarks train with, every hyperparameter written out and passed to both
# sides as flags (ember_optimizer_flags, torch_optimizer_flags), so the two cannot drift apart.
# sgd: what `ember-train --optimizer sgd` uses (examples/ember_train/cli.h: lr 0.05, momentum 0.9, weight
# decay 0; optim/sgd.h SGDOptions, which ember-train has no flags for: dampening 0, no nesterov).
# adamw: lr 1e-3 and weight decay 0.01 (ember-train's default lr is 3e-3; the benchmarks have always used
# 1e-3), betas and eps optim/adamw.h's AdamWOptions (ember-train has no flags for them).
# tests/scripts/test_bench_scripts.py checks these against the C++ sources.
OPTIMIZERS = {
    "adamw": {"lr": 1e-3, "weight_decay": 0.01, "betas": (0.9, 0.999), "eps": 1e-8},
    "sgd": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "dampening": 0.0, "nesterov": False},
}


def parse_optimizers(text):
    """`--optimizer`'s value: "sgd", "adamw" or a comma-separated list of them (in that order, no repeats)."""
    names = [n.strip() for n in text.split(",")]
    for n in names:
        if n not in OPTIMIZERS:
            fail(f"--optimizer: unknown optimizer {n!r} (choose from {', '.join(sorted(OPTIMIZERS))}, "
                 "or several comma-separated, e.g. sgd,adamw)")
    if len(set(names)) != len(names):
        fail(f"--optimizer: {text!r} names an optimizer twice")
    return names


def ember_optimizer_flags(name, hp=None):
    """ember-train's flags for optimizer `name` with hyperparameters `hp` (default OPTIMIZERS[name])."""
    hp = OPTIMIZERS[name] if hp is None else hp
    flags = ["--optimizer", name, "--lr", repr(hp["lr"]), "--weight-decay", repr(hp["weight_decay"])]
    if name == "sgd":
        flags += ["--momentum", repr(hp["momentum"])]
    return flags


def torch_optimizer_flags(name, hp=None):
    """The PyTorch twin's flags (scripts/bench_torch_train.py) for the same optimizer: also the values
    ember-train has no flags for (SGD's dampening and nesterov, AdamW's betas and eps)."""
    hp = OPTIMIZERS[name] if hp is None else hp
    flags = ["--optimizer", name, "--lr", repr(hp["lr"]), "--weight-decay", repr(hp["weight_decay"])]
    if name == "sgd":
        flags += ["--momentum", repr(hp["momentum"]), "--dampening", repr(hp["dampening"])]
        flags.append("--nesterov" if hp["nesterov"] else "--no-nesterov")
    else:
        flags += ["--betas", repr(hp["betas"][0]), repr(hp["betas"][1]), "--eps", repr(hp["eps"])]
    return flags


def fail(msg):
    print(f"{os.path.basename(sys.argv[0])}: error: {msg}", file=sys.stderr)
    sys.exit(1)


def thread_env(threads, blas_dir=None):
    """The environment of a run with `threads` threads. `blas_dir`: a folder put first on LD_LIBRARY_PATH
    (another OpenBLAS build), or a (folder or None, OPENBLAS_CORETYPE) pair."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    if isinstance(blas_dir, tuple):
        blas_dir, env["OPENBLAS_CORETYPE"] = blas_dir
    if blas_dir:
        env["LD_LIBRARY_PATH"] = blas_dir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def openblas_fallback_core(ember):
    """When OpenBLAS does not know this CPU and loads its generic Prescott (SSE3) kernels, the core Ember
    selects instead (kernels/cpu/blas_core.cpp): SkylakeX with AVX-512, Haswell with AVX2 + FMA. Else None."""
    env = dict(os.environ, OPENBLAS_VERBOSE="2")
    env.pop("OPENBLAS_CORETYPE", None)
    p = subprocess.run([ember, "--help"], env=env, capture_output=True, text=True)
    if "Core: Prescott" not in p.stdout + p.stderr:
        return None
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    if all(x in flags for x in ("avx512f", "avx512bw", "avx512dq", "avx512vl")):
        return "SkylakeX"
    return "Haswell" if "avx2" in flags and "fma" in flags else None


def steady_rate(samples, times, warmup):
    """Samples per second from the end of optimizer step `warmup` to the last step (start-up, the first
    steps' allocations and the final evaluation are left out)."""
    if len(times) < 2:
        fail("need at least 2 optimizer steps to measure a rate")
    w = min(warmup, len(times) - 2)
    return sum(samples[w + 1:]) / (times[-1] - times[w])


def run_ember(ember, model, micro, accum, steps, threads, warmup, norm="batch", extra=(), optimizer="adamw"):
    """One ember-train run (constant lr, OPTIMIZERS[optimizer]); returns its summary dict plus
    `steady_samples_per_s` from the metrics CSV."""
    return _run_ember([ember, "--model", model, "--norm", norm, "--micro-batch", str(micro), "--accum", str(accum),
                       "--steps", str(steps), "--threads", str(threads), *ember_optimizer_flags(optimizer),
                       "--schedule", "constant", *extra], threads, warmup, "samples")


def run_ember_lm(ember_lm, micro, accum, steps, threads, warmup, extra=()):
    """One ember-train-lm run (LM_SHAPE, AdamW, constant lr); its summary plus `steady_tokens_per_s`."""
    return _run_ember([ember_lm, *LM_SHAPE, "--micro-batch", str(micro), "--accum", str(accum), "--steps", str(steps),
                       "--threads", str(threads), "--optimizer", "adamw", "--lr", "1e-3", "--weight-decay", "0.01",
                       "--schedule", "constant", "--warmup", "0", "--clip-norm", "0", *extra], threads, warmup,
                      "tokens")


def _run_ember(cmd, threads, warmup, unit):
    """Runs an Ember trainer command with a metrics CSV and a summary; the summary dict plus
    `steady_<unit>_per_s` (the metrics' `unit` column over the step times) and `command`."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics, summary = os.path.join(tmp, "m.csv"), os.path.join(tmp, "s.json")
        cmd = [*cmd, "--no-progress", "--limit-test", "32", "--log-every", "1000000", "--metrics", metrics,
               "--summary", summary]
        p = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        with open(summary) as f:
            s = json.load(f)
        with open(metrics) as f:
            rows = list(csv.DictReader(f))
        s[f"steady_{unit}_per_s"] = steady_rate([int(r[unit]) for r in rows],
                                                [float(r["elapsed_s"]) for r in rows], warmup)
        s["command"] = " ".join(cmd)
        return s


def torch_python(blas_dir):
    """The Python a PyTorch run uses, and its BLAS setting: a {"python": path} variant (another
    interpreter with its own torch, e.g. a venv with PyPI's torch 2.x and its MKL) or this one."""
    if isinstance(blas_dir, dict):
        return blas_dir["python"], None
    return sys.executable, blas_dir


def _run_json(cmd, threads, blas_dir):
    """Runs a PyTorch twin; the JSON object of its last output line, plus `command`."""
    p = subprocess.run(cmd, env=thread_env(threads, blas_dir), capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["command"] = " ".join(cmd)
    return r


def run_torch_lm(micro, accum, steps, threads, warmup, blas_dir=None):
    """The PyTorch twin of run_ember_lm (scripts/bench_torch_lm.py); its JSON line."""
    python, blas_dir = torch_python(blas_dir)
    cmd = [python, TORCH_LM_TWIN, *LM_SHAPE, "--micro-batch", str(micro), "--accum", str(accum),
           "--steps", str(steps), "--threads", str(threads), "--warmup-steps", str(warmup)]
    return _run_json(cmd, threads, blas_dir)


def run_torch(model, micro, accum, steps, threads, warmup, blas_dir=None, foreach=False, norm="batch", device="cpu",
              data=None, optimizer="adamw"):
    """The PyTorch twin of run_ember (scripts/bench_torch_train.py, the same optimizer flags); its JSON line."""
    python, blas_dir = torch_python(blas_dir)
    cmd = [python, TORCH_TWIN, "--model", model, "--norm", norm, "--micro-batch", str(micro),
           "--accum", str(accum), "--steps", str(steps), "--threads", str(threads), "--warmup-steps", str(warmup),
           "--device", device, *torch_optimizer_flags(optimizer)]
    if foreach:
        cmd.append("--foreach")
    if data:
        cmd += ["--data", data]
    return _run_json(cmd, threads, blas_dir)


def gpu_name():
    """The first GPU's name as nvidia-smi gives it (None when there is no nvidia-smi or it fails)."""
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip().splitlines()[0] if p.returncode == 0 and p.stdout.strip() else None


# The ISA extensions that decide which kernels run (Ember's, OpenBLAS's, oneDNN's), in the order shown.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def parse_lscpu(text):
    """The CPU fields of `lscpu` output (LC_ALL=C): model name, vendor, family/model/stepping (ints where
    numeric) and the flags list. Missing fields are None (flags: [])."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first of repeated keys (lscpu lists some per cache/NUMA)
            fields[key.strip()] = value.strip()

    def number(key):
        v = fields.get(key)
        return int(v) if v is not None and v.isdigit() else v

    return {"cpu": fields.get("Model name"), "cpu_vendor": fields.get("Vendor ID"), "cpu_family": number("CPU family"),
            "cpu_model": number("Model"), "cpu_stepping": number("Stepping"), "cpu_flags": fields.get("Flags", "").split()}


def parse_cpuinfo(text):
    """The same fields from /proc/cpuinfo (first processor), where lscpu is missing."""
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    lscpu_names = {"model name": "Model name", "vendor_id": "Vendor ID", "cpu family": "CPU family",
                   "model": "Model", "stepping": "Stepping", "flags": "Flags"}
    return parse_lscpu("\n".join(f"{new}: {fields[old]}" for old, new in lscpu_names.items() if old in fields))


def cpu_info(lscpu_text=None):
    """parse_lscpu of this machine's `lscpu` (or of `lscpu_text`), plus `isa`: {flag: present} for ISA_FLAGS."""
    if lscpu_text is None:
        try:
            p = subprocess.run(["lscpu"], capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"), timeout=30)
            lscpu_text = p.stdout if p.returncode == 0 else ""
        except (OSError, subprocess.TimeoutExpired):
            lscpu_text = ""
    info = parse_lscpu(lscpu_text)
    if not info["cpu"] or not info["cpu_flags"]:
        try:
            with open("/proc/cpuinfo") as f:
                fallback = parse_cpuinfo(f.read())
            info.update({k: v for k, v in fallback.items() if not info.get(k)})
        except OSError:
            pass
    info["cpu"] = info["cpu"] or "unknown CPU"
    info["isa"] = {flag: flag in info["cpu_flags"] for flag in ISA_FLAGS}
    return info


def machine(lscpu_text=None):
    """What the JSON files record about the machine: the CPU (name, vendor, family/model/stepping, the ISA
    flags that matter and the full flags list), cores, kernel, load when the run started."""
    info = cpu_info(lscpu_text)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu": info["cpu"], "cpu_vendor": info["cpu_vendor"], "cpu_family": info["cpu_family"],
            "cpu_model": info["cpu_model"], "cpu_stepping": info["cpu_stepping"], "isa": info["isa"],
            "cores": os.cpu_count(), "kernel": platform.release(), "load_1min_at_start": load,
            "cpu_flags": info["cpu_flags"]}


def machine_line(info):
    """One line naming the CPU and its vector/matrix extensions, e.g. "machine: Intel(R) Xeon(R) Processor
    (family 6, model 207), 2 cores; AVX2+FMA yes, AVX-512 yes (bf16, fp16), AMX yes (bf16, int8)"."""
    isa = info.get("isa", {})

    def yes(*flags):
        return all(isa.get(f) for f in flags)

    def extras(pairs):
        have = [name for flag, name in pairs if isa.get(flag)]
        return f" ({', '.join(have)})" if have else ""

    fam = "" if info.get("cpu_family") is None else f" (family {info['cpu_family']}, model {info.get('cpu_model')})"
    avx512 = "yes" + extras([("avx512_vnni", "vnni"), ("avx512_bf16", "bf16"), ("avx512_fp16", "fp16")]) \
        if yes("avx512f") else "no"
    amx = "yes" + extras([("amx_bf16", "bf16"), ("amx_int8", "int8")]) if yes("amx_tile") else "no"
    return (f"machine: {info['cpu']}{fam}, {info.get('cores')} cores; AVX2+FMA {'yes' if yes('avx2', 'fma') else 'no'}, "
            f"AVX-512 {avx512}, AMX {amx}")


def markdown_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _default_mode(path):
    """mkstemp creates files 0600; give the result the mode a plain open() would (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_atomically(path, text):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    _default_mode(tmp)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def gnuplot_png(path, script):
    """Renders a gnuplot script (without terminal/output lines) to the PNG `path`, atomically."""
    if shutil.which("gnuplot") is None:
        fail("--plot: gnuplot is not installed (apt-get install gnuplot-nox)")
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".png")
    os.close(fd)
    _default_mode(tmp)
    head = f"set terminal pngcairo size 800,480 font ',10'\nset output '{tmp}'\n"
    p = subprocess.run(["gnuplot"], input=head + script, text=True, capture_output=True)
    if p.returncode != 0:
        os.unlink(tmp)
        fail(f"gnuplot failed: {p.stderr}")
    os.replace(tmp, path)
