#!/usr/bin/env python3
# @file fuzz/make_seed_corpus.py @brief Writes the hand-made seed inputs of fuzz/corpus/ (valid files and one-defect variants); inputs the fuzzer found sit beside them.
"""Run from anywhere: python3 fuzz/make_seed_corpus.py. Rewrites only the seed-*.bin / seed-*.txt files."""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(entries, metadata=None, pad=True, extra=b""):
    """entries: list of (name, dtype, shape, raw bytes)."""
    header, data, off = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, shape, raw in entries:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data + extra


def raw_header(text, data=b""):
    h = text.encode()
    return struct.pack("<Q", len(h)) + h + data


f32 = lambda *v: struct.pack("<%df" % len(v), *v)
f64 = lambda *v: struct.pack("<%dd" % len(v), *v)
i64 = lambda *v: struct.pack("<%dq" % len(v), *v)

# ---- safetensors
put("fuzz_safetensors", "seed-empty.bin", safetensors([]))
put("fuzz_safetensors", "seed-one-f32.bin", safetensors([("w", "F32", [2, 2], f32(1, 2, 3, 4))]))
put("fuzz_safetensors", "seed-checkpoint.bin", safetensors(
    [("fc1.weight", "F32", [2, 3], f32(*range(6))), ("fc1.bias", "F32", [2], f32(0.5, -0.5)),
     ("bn1.running_var", "F64", [2], f64(1, 2)), ("bn1.num_batches_tracked", "I64", [], i64(7)),
     ("optim.fc1.weight.exp_avg", "F32", [2, 3], f32(*[0.0] * 6)), ("empty", "F32", [0, 4], b"")],
    metadata={"format": "ember-train-checkpoint/1", "epoch": "0", "micro_step": "3", "config.model": "mlp"}))
put("fuzz_safetensors", "seed-scalar-f64.bin", safetensors([("s", "F64", [], f64(3.5))]))
put("fuzz_safetensors", "seed-bf16.bin", safetensors([("h", "BF16", [2], b"\0\0\0\0")]))
put("fuzz_safetensors", "seed-unpadded.bin", safetensors([("w", "F32", [1], f32(1))], pad=False))
put("fuzz_safetensors", "seed-trailing.bin", safetensors([("w", "F32", [1], f32(1))], extra=b"xx"))
put("fuzz_safetensors", "seed-truncated.bin", safetensors([("w", "F32", [4], f32(1, 2, 3, 4))])[:-3])
put("fuzz_safetensors", "seed-overlap.bin", raw_header(
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
    f32(1)))
put("fuzz_safetensors", "seed-hole.bin", raw_header('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2)))
put("fuzz_safetensors", "seed-bad-meta.bin", raw_header('{"__metadata__":{"k":1}}'))
put("fuzz_safetensors", "seed-neg-shape.bin", raw_header('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'))
put("fuzz_safetensors", "seed-huge-shape.bin", raw_header(
    '{"a":{"dtype":"F64","shape":[2305843009213693952,1],"data_offsets":[0,0]}}'))
put("fuzz_safetensors", "seed-big-dim.bin", raw_header(
    '{"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}}', f32(1)))
put("fuzz_safetensors", "seed-header-too-long.bin", struct.pack("<Q", 1 << 40) + b"{}")
put("fuzz_safetensors", "seed-nested.bin", raw_header('{"a":' + "[" * 200 + "]" * 200 + "}"))

# ---- IDX (unsigned-byte arrays; gzip variants go through read_idx)
idx1 = bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes([1, 2, 9])
idx3 = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 2, 3) + bytes(range(12))
put("fuzz_idx", "seed-idx1.bin", idx1)
put("fuzz_idx", "seed-idx3.bin", idx3)
put("fuzz_idx", "seed-idx3.gz", gzip.compress(idx3, mtime=0))
put("fuzz_idx", "seed-idx1-truncated.gz", gzip.compress(idx1, mtime=0)[:-5])
put("fuzz_idx", "seed-float-type.bin", bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + f32(1)[::-1])
put("fuzz_idx", "seed-zero-dims.bin", bytes([0, 0, 8, 0]))
put("fuzz_idx", "seed-huge-dims.bin", bytes([0, 0, 8, 3]) + struct.pack(">III", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF))
put("fuzz_idx", "seed-zero-dim.bin", bytes([0, 0, 8, 2]) + struct.pack(">II", 0, 5))
put("fuzz_idx", "seed-trailing.bin", idx1 + b"\0")

# ---- ember-train command lines (one argument per line)
lines = {
    "seed-default.txt": "",
    "seed-help.txt": "--help",
    "seed-mlp.txt": "--model\nmlp\n--norm\nnone\n--micro-batch\n16\n--accum\n2\n--epochs\n1",
    "seed-sgd.txt": "--optimizer\nsgd\n--momentum\n0.5\n--lr\n0.1\n--weight-decay\n1e-4\n--schedule\nconstant",
    "seed-checkpoints.txt": "--save\nck.safetensors\n--checkpoint-every\n2\n--resume\nold.safetensors",
    "seed-window.txt": "--bn-stats\nwindow\n--norm\nbatch\n--clip-norm\n1.5\n--warmup\n10",
    "seed-hidden.txt": "--limit-train\n96\n--limit-test\n50\n--no-shuffle\n--no-progress\n--threads\n2",
    "seed-bad-lr.txt": "--lr\nnan",
    "seed-equals.txt": "--micro-batch=8\n--accum=3\n--seed=18446744073709551615\n--device=cpu",
    "seed-overflow.txt": "--micro-batch\n9223372036854775807\n--accum\n-1",
    # make fuzz, 2026-12 (issue 15): a negated flag given a number beyond int64 made CLI11 throw
    # std::out_of_range (std::stoll) out of parse_cli; now an ember::Error naming the flag and the value.
    "crash-flag-stoll.txt": "--no-progress=99999999999999999999999",
    "seed-flag-stoll-mid.txt": "--micro-batch\n8\n--no-shuffle=-99999999999999999999999\n--accum\n2",
    "seed-flag-values.txt": "--progress=99999999999999999999999\n--shuffle=off\n--no-progress=0",
}
for name, text in lines.items():
    put("fuzz_cli", name, text)
