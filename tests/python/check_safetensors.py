"""Cross-check of lowbit's safetensors writer and quantized layout against the official package.

Usage: python check_safetensors.py /path/to/lowbit_safetensors_sample

The tool writes a safetensors file with lowbit (float tensors of several dtypes and quantized
weights of several schemes, see tests/tools/safetensors_sample.cpp) and a manifest of what it
wrote. This script then checks, with the `safetensors` package (the Rust parser) and numpy:
  * the file parses, with exactly the manifest's tensors, dtypes, shapes and bytes, and its
    metadata (also through safe_open, and numpy-capable dtypes through get_tensor);
  * every quantized weight, dequantized here from its qweight/scales/qzeros|zeros tensors by an
    independent numpy implementation of the documented layout (low_first bit stream or AWQ nibble
    order, scale grid, packed zero codes), equals lowbit's dequantize() bit for bit.
Exits non-zero on any mismatch.
"""

import json
import os
import subprocess
import sys
import tempfile

import ml_dtypes
import numpy as np
import safetensors
from safetensors import safe_open
from safetensors.numpy import _TYPES as NUMPY_TYPES

FLOAT_VIEWS = {
    "F32": np.float32,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
    "F8_E4M3": ml_dtypes.float8_e4m3fn,
}
SCALE_VIEWS = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16,
               "e4m3": ml_dtypes.float8_e4m3fn, "e8m0": ml_dtypes.float8_e8m0fnu}
ZERO_VIEWS = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]

failures = []


def fail(message):
    failures.append(message)
    print("MISMATCH:", message, file=sys.stderr)


def unpack_low_first(words, count, bits):
    """[n, w] uint32 words -> [n, count] codes of a little-endian bit stream."""
    words = np.ascontiguousarray(words, dtype="<u4")
    bitstream = np.unpackbits(words.view(np.uint8).reshape(words.shape[0], -1), axis=1, bitorder="little")
    bitstream = bitstream[:, : count * bits].reshape(words.shape[0], count, bits).astype(np.uint32)
    return (bitstream << np.arange(bits, dtype=np.uint32)).sum(axis=2).astype(np.uint8)


def unpack_awq(words, count):
    words = np.asarray(words, dtype=np.uint32)
    nibbles = np.stack([(words >> (4 * s)) & 15 for s in range(8)], axis=2)  # [n, w, slot]
    codes = np.empty_like(nibbles)
    for slot, element in enumerate(AWQ_ORDER):
        codes[:, :, element] = nibbles[:, :, slot]
    return codes.reshape(words.shape[0], -1)[:, :count].astype(np.uint8)


def element_values(codes, scheme):
    bits, element = scheme["bits"], scheme["element"]
    if element == "int":
        c = codes.astype(np.int32)
        return np.where(c >= 1 << (bits - 1), c - (1 << bits), c).astype(np.float32)
    if element == "uint":
        return codes.astype(np.float32)
    views = {"e2m1": ml_dtypes.float4_e2m1fn, "e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2}
    if element in views:
        return codes.astype(np.uint8).view(views[element]).astype(np.float32)
    raise ValueError(f"no reference for element {element}")


def dequantize(tensors, name, entry):
    scheme = entry["scheme"]
    rows, cols = entry["shape"]
    base = name[: -len(".weight")] if name.endswith(".weight") else name
    bits = scheme["bits"]
    qweight = np.frombuffer(tensors[base + ".qweight"]["data"], dtype="<u4").reshape(tensors[base + ".qweight"]["shape"])
    if scheme["pack_order"] == "awq_interleaved":
        codes = unpack_awq(qweight, cols)
    else:
        codes = unpack_low_first(qweight, cols, bits)
    values = element_values(codes, scheme)

    s = tensors[base + ".scales"]
    scales = np.frombuffer(s["data"], dtype=SCALE_VIEWS[scheme["scale_format"]]).astype(np.float32).reshape(s["shape"])
    grid_rows, grid_cols = scales.shape
    group = scheme.get("group_size", cols) if scheme["granularity"] == "group" else max(cols, 1)
    row_index = np.arange(rows) if grid_rows > 1 else np.zeros(rows, dtype=int)
    col_index = np.arange(cols) // group
    full_scales = scales[row_index][:, col_index]

    full_zeros = np.zeros((rows, cols), dtype=np.float32)
    if scheme["element"] == "uint":
        if scheme["zero_format"] == "code":
            z = tensors[base + ".qzeros"]
            zwords = np.frombuffer(z["data"], dtype="<u4").reshape(z["shape"])
            zeros = unpack_low_first(zwords, grid_cols, bits).astype(np.float32)
        else:
            z = tensors[base + ".zeros"]
            zeros = np.frombuffer(z["data"], dtype=ZERO_VIEWS[scheme["zero_format"]]).astype(np.float32).reshape(z["shape"])
        full_zeros = zeros[row_index][:, col_index]
    return ((values - full_zeros) * full_scales).astype(np.float32)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sample.safetensors")
        manifest_path = os.path.join(tmp, "manifest.json")
        subprocess.run([sys.argv[1], path, manifest_path], check=True)
        with open(manifest_path) as f:
            manifest = json.load(f)
        with open(path, "rb") as f:
            raw = f.read()

        # The Rust parser: every tensor, with its dtype, shape and bytes.
        tensors = {name: info for name, info in safetensors.deserialize(raw)}
        expected = manifest["tensors"]
        if set(tensors) != set(expected):
            fail(f"tensor names differ: package {sorted(tensors)}, lowbit {sorted(expected)}")
        for name, want in expected.items():
            got = tensors.get(name)
            if got is None:
                continue
            if got["dtype"].upper() != want["dtype"]:
                fail(f"{name}: dtype {got['dtype']} vs {want['dtype']}")
            if list(got["shape"]) != want["shape"]:
                fail(f"{name}: shape {got['shape']} vs {want['shape']}")
            if bytes(got["data"]).hex() != want["hex"]:
                fail(f"{name}: bytes differ")

        with safe_open(path, framework="numpy") as f:
            if f.metadata() != manifest["metadata"]:
                fail(f"metadata differs: {f.metadata()} vs {manifest['metadata']}")
            for name, want in expected.items():
                if want["dtype"] not in NUMPY_TYPES:
                    continue
                array = f.get_tensor(name)
                if list(array.shape) != want["shape"] or array.tobytes().hex() != want["hex"]:
                    fail(f"{name}: numpy get_tensor differs")

        quant = json.loads(manifest["metadata"]["lowbit.quantization"])
        if set(quant) != set(manifest["quantized"]):
            fail("lowbit.quantization metadata lists other names than the manifest")
        for name, entry in manifest["quantized"].items():
            if quant.get(name) != {"scheme": entry["scheme"], "shape": entry["shape"]}:
                fail(f"{name}: metadata entry {quant.get(name)} vs {entry}")
            ours = dequantize(tensors, name, quant[name])
            theirs = np.frombuffer(bytes.fromhex(entry["dequantized_hex"]), dtype="<f4").reshape(entry["shape"])
            if ours.tobytes() != theirs.tobytes():
                bad = np.argwhere(ours.view(np.uint32) != theirs.view(np.uint32))
                r, c = bad[0]
                fail(f"{name}: dequantized differs at {len(bad)} elements, first ({r}, {c}): "
                     f"numpy {ours[r, c]!r}, lowbit {theirs[r, c]!r}")
        checked = len(manifest["quantized"])
    if failures:
        print(f"{len(failures)} mismatches", file=sys.stderr)
        return 1
    print(f"ok: {len(expected)} tensors and {checked} quantized weights agree with safetensors "
          f"{safetensors.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
