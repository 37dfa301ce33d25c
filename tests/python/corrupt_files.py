"""Runs `lowbit inspect` and `lowbit eval` on a generated corpus of corrupt checkpoints, each under an
address-space limit and a timeout, and requires every one to fail cleanly: exit status 1 (a lowbit
error, not 2 for an escaped std::exception, nor a signal or a timeout) and a message naming the file.

The corpus is derived from the bundled model (a llama2.c checkpoint), its safetensors conversion and
a 4-bit quantization of it: truncations at many offsets; safetensors headers with overflowing
shapes, out-of-range, reversed and overlapping offsets, unknown and wrong dtypes, duplicate names,
wrong JSON types and bad header lengths; quantization metadata with overflowing shapes, group sizes
and vector dimensions; model configs with zero or huge dimensions and non-finite values; NaN and
infinite weights; llama2.c headers with absurd fields; and things that are not regular files.

argv: lowbit program, llama2.c model, scratch directory [--no-memory-limit] (sanitizer builds
reserve terabytes of address space, so they run without the limit).
"""
import json
import math
import os
import resource
import shutil
import struct
import subprocess
import sys
import time

MEMORY_LIMIT = 1 << 30  # bytes of address space per run
TIMEOUT = 30  # seconds per run


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(command, memory_limit):
    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env,
                          preexec_fn=limit_memory if memory_limit else None)


def split_safetensors(data):
    (length,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + length])
    return header, data[8 + length:]


def join_safetensors(header_text, body, length=None):
    raw = header_text.encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + body


def tensors_of(header):
    return [name for name in header if name != "__metadata__"]


def with_header(data, mutate):
    """The file with its header JSON changed by mutate(header) (which may return raw text)."""
    header, body = split_safetensors(data)
    result = mutate(header)
    text = result if isinstance(result, str) else json.dumps(header)
    return join_safetensors(text, body)


def with_metadata_json(data, key, mutate):
    """The file with the JSON value of metadata `key` changed by mutate(value) (or replaced by the
    raw text it returns)."""
    def change(header):
        value = json.loads(header["__metadata__"][key])
        result = mutate(value)
        header["__metadata__"][key] = result if isinstance(result, str) else json.dumps(value)
    return with_header(data, change)


def truncations(data, header_end):
    offsets = {0, 1, 7, 8, 9, 16, 27, 28, 29, 40, header_end - 1, header_end, header_end + 1,
               len(data) - 1}
    offsets.update(len(data) * k // 13 for k in range(1, 13))
    return sorted(o for o in offsets if 0 <= o < len(data))


def main():
    lowbit, model, scratch = sys.argv[1:4]
    memory_limit = "--no-memory-limit" not in sys.argv[4:]
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    float_path = os.path.join(scratch, "float.safetensors")
    quantized_path = os.path.join(scratch, "int4.safetensors")
    subprocess.run([lowbit, "convert", model, float_path], check=True, capture_output=True)
    subprocess.run([lowbit, "quantize", model, quantized_path, "--bits", "4", "--group", "32"],
                   check=True, capture_output=True)
    llama2c = open(model, "rb").read()
    float_bytes = open(float_path, "rb").read()
    quantized_bytes = open(quantized_path, "rb").read()

    cases = []  # (name, bytes, commands that must fail)

    def case(name, data, must_fail=("inspect", "eval")):
        cases.append((name, data, must_fail))

    # Truncations.
    for offset in truncations(llama2c, 28):
        case(f"truncated-{offset}.bin", llama2c[:offset])
    for label, data in (("float", float_bytes), ("int4", quantized_bytes)):
        (length,) = struct.unpack_from("<Q", data, 0)
        for offset in truncations(data, 8 + length):
            case(f"{label}-truncated-{offset}.safetensors", data[:offset])

    # llama2.c headers.
    fields = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"]
    for index, field in enumerate(fields):
        for value in (0, -1, 7, 2**31 - 1, -2**31):
            data = bytearray(llama2c)
            struct.pack_into("<i", data, 4 * index, value)
            case(f"llama2c-{field}-{value}.bin", bytes(data))
    for value, label in ((math.nan, "nan"), (math.inf, "inf")):
        data = bytearray(llama2c)
        struct.pack_into("<f", data, 28 + 4 * 100, value)
        case(f"llama2c-weight-{label}.bin", bytes(data))

    # safetensors headers (of the quantized file: every reader of it runs).
    first = tensors_of(split_safetensors(quantized_bytes)[0])[0]
    second = tensors_of(split_safetensors(quantized_bytes)[0])[1]
    body_size = len(split_safetensors(quantized_bytes)[1])

    def entry_change(name, key, value):
        return lambda h: h[name].__setitem__(key, value)

    header_cases = {
        "shape-overflow": entry_change(first, "shape", [2**63, 2**63, 0]),
        "shape-product-overflow": entry_change(first, "shape", [2**32, 2**32, 2**32]),
        "shape-huge": entry_change(first, "shape", [2**62, 32]),
        "shape-negative": entry_change(first, "shape", [-1, 4]),
        "shape-float": entry_change(first, "shape", [1.5, 4]),
        "shape-string": entry_change(first, "shape", "abc"),
        "offsets-past-end": lambda h: h[first].__setitem__(
            "data_offsets", [h[first]["data_offsets"][0], body_size + 4]),
        "offsets-reversed": lambda h: h[first].__setitem__(
            "data_offsets", list(reversed(h[first]["data_offsets"]))),
        "offsets-overlap": lambda h: h[second].__setitem__("data_offsets", h[first]["data_offsets"]),
        "offsets-huge": entry_change(first, "data_offsets", [2**64 - 8, 2**64 - 1]),
        "offsets-object": entry_change(first, "data_offsets", {"a": 1}),
        "offsets-one": entry_change(first, "data_offsets", [0]),
        "dtype-unknown": entry_change(first, "dtype", "F99"),
        "dtype-number": entry_change(first, "dtype", 5),
        "dtype-wrong-size": entry_change(first, "dtype", "F64"),
        "entry-not-object": lambda h: h.__setitem__(first, 3),
        "metadata-list": lambda h: h.__setitem__("__metadata__", ["x"]),
        "metadata-number": lambda h: h["__metadata__"].__setitem__("format", 5),
        "header-array": lambda h: "[]",
        "header-not-json": lambda h: "{" + json.dumps(h)[1:-1],
        "header-trailing": lambda h: json.dumps(h) + "}",
        "duplicate-name": lambda h: json.dumps(h).replace(
            json.dumps(first) + ":", json.dumps(first) + ":" + json.dumps(h[first]) + ","
            + json.dumps(first) + ":", 1),
        "duplicate-field": lambda h: json.dumps(h).replace('"dtype": ', '"dtype": "U8", "dtype": ', 1),
    }
    for label, mutate in header_cases.items():
        case(f"header-{label}.safetensors", with_header(quantized_bytes, mutate))
    (length,) = struct.unpack_from("<Q", quantized_bytes, 0)
    header_text = quantized_bytes[8:8 + length].decode()
    body = quantized_bytes[8 + length:]
    for label, value in (("zero", 0), ("one", 1), ("max", 2**64 - 1), ("over-limit", 100_000_001),
                         ("long", length + 1), ("short", length - 1)):
        case(f"length-{label}.safetensors", join_safetensors(header_text, body, value))

    # Quantization metadata.
    names = sorted(json.loads(split_safetensors(quantized_bytes)[0]["__metadata__"][
        "lowbit.quantization"]))
    weight = names[0]

    def scheme_change(key, value):
        return lambda q: q[weight]["scheme"].__setitem__(key, value)

    quantization_cases = {
        "group-max": scheme_change("group_size", 2**64 - 1),
        "group-2^63": scheme_change("group_size", 2**63),
        "group-2^33": scheme_change("group_size", 2**33),
        "group-zero": scheme_change("group_size", 0),
        "group-negative": scheme_change("group_size", -1),
        "group-string": scheme_change("group_size", "32"),
        "bits-zero": scheme_change("bits", 0),
        "bits-huge": scheme_change("bits", 99),
        "bits-float": scheme_change("bits", 3.5),
        "element-unknown": scheme_change("element", "int7"),
        "vector-dim-huge": lambda q: q[weight]["scheme"].update(
            element="codebook", bits=2, vector_dim=2**40, codebook_granularity="tensor",
            codebook_format="f16"),
        "shape-2^62": lambda q: q[weight].__setitem__("shape", [32, 2**62]),
        "shape-2^40": lambda q: q[weight].__setitem__("shape", [2**40, 2**40]),
        "shape-negative": lambda q: q[weight].__setitem__("shape", [-1, 64]),
        "shape-one": lambda q: q[weight].__setitem__("shape", [64]),
        "scheme-number": lambda q: q[weight].__setitem__("scheme", 5),
        "rotation-huge": lambda q: q[weight].__setitem__(
            "rotation", {"size": 2**63, "seed": 1, "randomized": True}),
        "not-json": lambda q: "{",
        "not-object": lambda q: "[]",
    }
    for label, mutate in quantization_cases.items():
        case(f"quantization-{label}.safetensors",
             with_metadata_json(quantized_bytes, "lowbit.quantization", mutate))

    # Model configs, in the float file (and two in the quantized one).
    config_cases = {
        "seq-len-2^31": ("seq_len", 2**31 - 1), "seq-len-2^24": ("seq_len", 2**24),
        "n-heads-zero": ("n_heads", 0), "n-heads-odd": ("n_heads", 3), "dim-zero": ("dim", 0),
        "dim-huge": ("dim", 2**30), "vocab-huge": ("vocab_size", 2**30),
        "hidden-negative": ("hidden_dim", -1), "layers-huge": ("n_layers", 2**20),
        "rope-theta-1e300": ("rope_theta", 1e300), "rope-theta-zero": ("rope_theta", 0),
        "norm-eps-zero": ("norm_eps", 0), "dim-string": ("dim", "64"),
    }
    for label, (key, value) in config_cases.items():
        change = (lambda k, v: lambda c: c.__setitem__(k, v))(key, value)
        case(f"config-{label}.safetensors",
             with_metadata_json(float_bytes, "lowbit.llama.config", change))
    for label in ("seq-len-2^31", "n-heads-zero"):
        key, value = config_cases[label]
        change = (lambda k, v: lambda c: c.__setitem__(k, v))(key, value)
        case(f"int4-config-{label}.safetensors",
             with_metadata_json(quantized_bytes, "lowbit.llama.config", change))
    case("config-missing-field.safetensors",
         with_metadata_json(float_bytes, "lowbit.llama.config", lambda c: c.pop("dim") and None))

    # Non-finite float weights: inspect lists them; eval refuses them.
    header, body = split_safetensors(float_bytes)
    (length,) = struct.unpack_from("<Q", float_bytes, 0)
    target = "layers.0.attention.wq.weight"
    begin = 8 + length + header[target]["data_offsets"][0]
    for value, label in ((math.nan, "nan"), (-math.inf, "inf")):
        data = bytearray(float_bytes)
        struct.pack_into("<f", data, begin + 4 * 70, value)
        case(f"float-weight-{label}.safetensors", bytes(data), must_fail=("eval",))

    # Write the corpus, then the things that are not regular files.
    paths = []
    for name, data, must_fail in cases:
        path = os.path.join(scratch, name)
        with open(path, "wb") as out:
            out.write(data)
        paths.append((path, must_fail, True))
    fifo = os.path.join(scratch, "fifo.safetensors")
    os.mkfifo(fifo)
    paths.append((fifo, ("inspect", "eval"), True))
    paths.append(("/dev/null", ("inspect", "eval"), True))
    directory = os.path.join(scratch, "directory.safetensors")
    os.makedirs(directory)
    paths.append((directory, ("inspect", "eval"), False))  # refused by the argument parser

    failures = []
    start = time.monotonic()
    for path, must_fail, named in paths:
        for command in ("inspect", "eval"):
            argv = [lowbit, command, path] + (["--max-windows", "1"] if command == "eval" else [])
            try:
                result = run(argv, memory_limit)
            except subprocess.TimeoutExpired:
                failures.append(f"{' '.join(argv)}: no answer in {TIMEOUT} s")
                continue
            message = result.stderr.strip()
            if "Sanitizer" in message or "runtime error:" in message:
                failures.append(f"{' '.join(argv)}: sanitizer report: {message[-600:]}")
            elif result.returncode < 0:
                failures.append(f"{' '.join(argv)}: killed by signal {-result.returncode}: "
                                f"{message[-300:]}")
            elif command in must_fail and result.returncode == 0:
                failures.append(f"{' '.join(argv)}: accepted")
            elif result.returncode not in (0, 1) and named:
                failures.append(f"{' '.join(argv)}: exit status {result.returncode} (not a lowbit "
                                f"error): {message[-300:]}")
            elif result.returncode != 0 and named and path not in message:
                failures.append(f"{' '.join(argv)}: the message does not name the file: "
                                f"{message[-300:]}")
    elapsed = time.monotonic() - start
    print(f"{len(paths)} files, {2 * len(paths)} runs in {elapsed:.1f} s"
          f"{'' if memory_limit else ' (no memory limit)'}")
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
