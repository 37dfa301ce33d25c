"""lowbit's GGUF reader against gguf-py (the gguf package on PyPI, llama.cpp's own Python library).

1. A file written by gguf-py's GGUFWriter with every metadata value type (arrays of arrays too),
   a custom alignment and tensors of the plain and block types: lowbit must read back exactly the
   values written, the tensor infos gguf-py's GGUFReader sees, and the floats gguf.quants
   dequantizes.
2. The real SmolLM2-135M file of ../shared/data: every metadata value and tensor info as GGUFReader
   reads them, and one tensor of each type lowbit decodes dequantized as gguf.quants does
   (bit for bit). Q8_0 (the embedding), Q4_1 (the linear weights) and F32 (the norms) must be
   among them.
3. Damaged copies of the file of 1 (truncated at every offset of its header, counts and lengths
   set huge): lowbit must refuse each with its error, naming the file, never crash.

Usage: check_gguf.py LOWBIT_GGUF_DUMP [DATA_DIR]
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGUFReader, GGUFValueType as VT, GGMLQuantizationType as QT

dump_tool = sys.argv[1]
data_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "data")
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def run_dump(path, tensors=()):
    """lowbit's view of `path`: (json, {tensor: float32 array}), or (None, stderr) on an error."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "dump.json")
        args = [dump_tool, path, out]
        for i, name in enumerate(tensors):
            args += [name, os.path.join(tmp, f"{i}.f32")]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            return None, result.returncode, result.stderr
        with open(out) as f:
            dump = json.load(f)
        values = {name: np.fromfile(os.path.join(tmp, f"{i}.f32"), dtype=np.float32)
                  for i, name in enumerate(tensors)}
        return dump, values, None


# --- How lowbit's dump encodes a value, computed from Python values and value types ----------

SCALAR_FORMATS = {VT.UINT8: "<B", VT.INT8: "<b", VT.UINT16: "<H", VT.INT16: "<h",
                  VT.UINT32: "<I", VT.INT32: "<i", VT.UINT64: "<Q", VT.INT64: "<q",
                  VT.FLOAT32: "<f", VT.FLOAT64: "<d"}
TYPE_NAMES = {VT.UINT8: "uint8", VT.INT8: "int8", VT.UINT16: "uint16", VT.INT16: "int16",
              VT.UINT32: "uint32", VT.INT32: "int32", VT.FLOAT32: "float32", VT.BOOL: "bool",
              VT.STRING: "string", VT.ARRAY: "array", VT.UINT64: "uint64", VT.INT64: "int64",
              VT.FLOAT64: "float64"}


def expected_scalar(value, vtype):
    if vtype == VT.BOOL:
        return bool(value)
    if vtype == VT.STRING:
        return {"hex": (value.encode() if isinstance(value, str) else bytes(value)).hex()}
    if vtype == VT.FLOAT32:
        return {"bits": struct.unpack("<I", struct.pack("<f", value))[0]}
    if vtype == VT.FLOAT64:
        return {"bits": struct.unpack("<Q", struct.pack("<d", value))[0]}
    if vtype in (VT.UINT64,) and value > 2**63 - 1:
        return {"uint": int(value)}
    return {"int": int(value)}


def expected_array(items, sub_type):
    """An array as lowbit dumps it; nested lists are arrays whose type gguf-py infers."""
    if sub_type == VT.ARRAY:
        return {"element_type": "array",
                "items": [expected_array(item, VT.get_type(item[0])) for item in items]}
    return {"element_type": TYPE_NAMES[sub_type],
            "items": [expected_scalar(item, sub_type) for item in items]}


# --- 1. A file written by gguf-py ----------------------------------------------------------

rng = np.random.default_rng(7)
# The types lowbit converts to float without a block layout, and the types it must decode.
PLAIN_TYPES = {"f32", "f64", "i8", "i16", "i32", "i64"}
REQUIRED_TYPES = {"f32", "f16", "bf16", "f64", "i8", "i32", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"}


def write_sample(path):
    writer = gguf.GGUFWriter(path, arch="llama")
    values = []  # (key, value, vtype, sub_type)

    def add(key, value, vtype, sub_type=None):
        writer.add_key_value(key, value, vtype, sub_type)
        values.append((key, value, vtype, sub_type))

    add("test.u8", 255, VT.UINT8)
    add("test.i8", -128, VT.INT8)
    add("test.u16", 65535, VT.UINT16)
    add("test.i16", -32768, VT.INT16)
    add("test.u32", 4294967295, VT.UINT32)
    add("test.i32", -2147483648, VT.INT32)
    add("test.u64", 18446744073709551615, VT.UINT64)
    add("test.i64", -9223372036854775808, VT.INT64)
    add("test.f32", 3.1415927410125732, VT.FLOAT32)
    add("test.f32_inf", float("inf"), VT.FLOAT32)
    add("test.f32_subnormal", 1e-45, VT.FLOAT32)
    add("test.f64", -2.5e-300, VT.FLOAT64)
    add("test.bool_true", True, VT.BOOL)
    add("test.bool_false", False, VT.BOOL)
    add("test.string", "héllo, 世界 🦙", VT.STRING)
    add("test.empty_string", "", VT.STRING)
    add("test.array_i32", [1, -2, 3, 2**31 - 1], VT.ARRAY, VT.INT32)
    add("test.array_u8", [0, 1, 255], VT.ARRAY, VT.UINT8)
    add("test.array_f32", [0.5, -1.25, 1e30], VT.ARRAY, VT.FLOAT32)
    add("test.array_f64", [0.1, -0.2], VT.ARRAY, VT.FLOAT64)
    add("test.array_bool", [True, False, True], VT.ARRAY, VT.BOOL)
    add("test.array_strings", ["a", "", "ĠPar", "is"], VT.ARRAY, VT.STRING)
    add("test.array_of_arrays", [[1, 2, 3], [4], [5, 6]], VT.ARRAY, VT.ARRAY)
    add("test.array_of_arrays_of_strings", [["x", "y"], ["z"]], VT.ARRAY, VT.ARRAY)
    writer.add_custom_alignment(64)
    values.append(("general.alignment", 64, VT.UINT32, None))

    tensors = {}  # name -> (ggml type, float32 values gguf.quants gives back)

    def add_tensor(name, shape, qtype):
        data = rng.standard_normal(shape).astype(np.float32)
        if qtype == QT.F32:
            raw = data
        elif qtype == QT.F16:
            raw = data.astype(np.float16)
        elif qtype == QT.F64:
            raw = data.astype(np.float64)
        elif qtype == QT.I8:
            raw = (data * 40).astype(np.int8)
        elif qtype == QT.I32:
            raw = (data * 1e6).astype(np.int32)
        else:
            raw = gguf.quants.quantize(data, qtype)
        writer.add_tensor(name, raw, raw_dtype=qtype if qtype not in
                          (QT.F32, QT.F16, QT.F64, QT.I8, QT.I32) else None)
        tensors[name] = (qtype, raw)

    add_tensor("plain.f32", (3, 5), QT.F32)
    add_tensor("plain.f16", (2, 7), QT.F16)
    add_tensor("plain.f64", (4,), QT.F64)
    add_tensor("plain.i8", (2, 3), QT.I8)
    add_tensor("plain.i32", (5,), QT.I32)
    add_tensor("blocks.bf16", (3, 64), QT.BF16)
    add_tensor("blocks.q8_0", (4, 64), QT.Q8_0)
    add_tensor("blocks.q4_0", (2, 96), QT.Q4_0)
    add_tensor("blocks.q4_1", (3, 32), QT.Q4_1)
    add_tensor("blocks.q5_0", (2, 32), QT.Q5_0)
    add_tensor("blocks.q5_1", (2, 64), QT.Q5_1)
    add_tensor("rank3.f32", (2, 3, 4), QT.F32)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return values, tensors


def reference_floats(qtype, raw):
    if qtype in (QT.F32, QT.F16, QT.F64, QT.I8, QT.I32):
        return np.asarray(raw, dtype=np.float32).reshape(-1)
    return gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)


def compare_tensor_infos(dump, reader, label):
    lowbit_tensors = {t["name"]: t for t in dump["tensors"]}
    check(len(lowbit_tensors) == len(reader.tensors),
          f"{label}: {len(lowbit_tensors)} tensors, gguf-py reads {len(reader.tensors)}")
    for tensor in reader.tensors:
        mine = lowbit_tensors.get(tensor.name)
        if mine is None:
            check(False, f"{label}: lowbit lacks tensor {tensor.name}")
            continue
        check(mine["type"] == int(tensor.tensor_type),
              f"{label}: {tensor.name} type {mine['type']} != {int(tensor.tensor_type)}")
        check(mine["dims"] == [int(d) for d in tensor.shape],
              f"{label}: {tensor.name} dims {mine['dims']} != {list(tensor.shape)}")
        check(dump["data_offset"] + mine["offset"] == int(tensor.data_offset),
              f"{label}: {tensor.name} data at {dump['data_offset'] + mine['offset']}, "
              f"gguf-py {tensor.data_offset}")
        check(mine["bytes"] == int(tensor.n_bytes),
              f"{label}: {tensor.name} {mine['bytes']} bytes, gguf-py {tensor.n_bytes}")


def compare_floats(name, mine, reference, label):
    if mine.shape != reference.shape:
        check(False, f"{label}: {name}: {mine.shape} values, reference {reference.shape}")
        return
    same = mine.view(np.uint32) == reference.astype(np.float32).view(np.uint32)
    check(bool(same.all()), f"{label}: {name}: {int((~same).sum())} of {same.size} values differ "
          f"(first at {int(np.argmin(same))})")


with tempfile.TemporaryDirectory() as tmp:
    sample = os.path.join(tmp, "sample.gguf")
    values, tensors = write_sample(sample)
    dump, _, error = run_dump(sample)
    decodable = set()
    if dump is not None:
        decodable = {t["name"] for t in dump["tensors"]
                     if t["block_layout"] or t["type_name"] in PLAIN_TYPES}
        decoded_types = {t["type_name"] for t in dump["tensors"] if t["name"] in decodable}
        check(REQUIRED_TYPES <= decoded_types,
              f"sample: lowbit decodes {sorted(decoded_types)}, not all of {sorted(REQUIRED_TYPES)}")
        dump, floats, error = run_dump(sample, sorted(decodable))
    if dump is None:
        check(False, f"sample: lowbit refused gguf-py's file: {error}")
    else:
        check(dump["version"] == 3, f"sample: version {dump['version']}")
        check(dump["alignment"] == 64, f"sample: alignment {dump['alignment']}")
        lowbit_values = {m["key"]: m for m in dump["metadata"]}
        for key, value, vtype, sub_type in values:
            mine = lowbit_values.get(key)
            if mine is None:
                check(False, f"sample: lowbit lacks metadata {key}")
                continue
            check(mine["type"] == TYPE_NAMES[vtype], f"sample: {key} is {mine['type']}")
            expected = (expected_array(value, sub_type) if vtype == VT.ARRAY
                        else expected_scalar(value, vtype))
            check(mine["value"] == expected, f"sample: {key}: lowbit {mine['value']} != {expected}")
        compare_tensor_infos(dump, GGUFReader(sample), "sample")
        for name, (qtype, raw) in tensors.items():
            if name in decodable:
                compare_floats(name, floats[name], reference_floats(qtype, raw), "sample")
        print(f"sample: {len(values)} metadata values and {len(tensors)} tensor infos as written; "
              f"{len(decodable)} tensors ({sorted(decoded_types)}) decoded as gguf.quants does")

    # --- 3. Damaged copies: every one refused with an error that names the file -------------
    with open(sample, "rb") as f:
        original = f.read()
    reader = GGUFReader(sample)
    header_end = min(int(t.data_offset) for t in reader.tensors)
    damaged = os.path.join(tmp, "damaged.gguf")
    cases = [(f"truncated at {n}", original[:n]) for n in range(0, header_end + 1)]
    data_end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    cases.append(("last tensor cut short", original[:data_end - 1]))
    for label, offset, value in [("tensor count huge", 8, 2**62), ("metadata count huge", 16, 2**62),
                                 ("first key length huge", 24, 2**63)]:
        cases.append((label, original[:offset] + struct.pack("<Q", value) + original[offset + 8:]))
    cases.append(("version 1", original[:4] + struct.pack("<I", 1) + original[8:]))
    cases.append(("big-endian", original[:4] + struct.pack(">I", 3) + original[8:]))
    refused = 0
    for label, content in cases:
        with open(damaged, "wb") as f:
            f.write(content)
        result = subprocess.run([dump_tool, damaged, os.path.join(tmp, "d.json")],
                                capture_output=True, text=True, timeout=60)
        if result.returncode == 1 and damaged in result.stderr:
            refused += 1
        else:
            check(False, f"damaged ({label}): exit {result.returncode}, stderr {result.stderr!r}")
    print(f"damaged copies: {refused} of {len(cases)} refused with an error naming the file")


# --- 2. The real SmolLM2 file ------------------------------------------------------------

def reader_value(field):
    """A GGUFReader field as lowbit's dump encodes it (arrays of scalars and strings)."""
    main = field.types[0]
    if main == VT.ARRAY:
        sub = field.types[-1]
        if len(field.types) > 2:
            return None  # gguf-py does not read arrays of arrays
        items = field.contents()
        return {"element_type": TYPE_NAMES[sub],
                "items": [expected_scalar(item, sub) if sub != VT.STRING
                          else {"hex": bytes(field.parts[idx]).hex()}
                          for item, idx in zip(items, field.data)]}
    if main == VT.STRING:
        return {"hex": bytes(field.parts[-1]).hex()}
    return expected_scalar(field.contents(), main)


smollm = os.path.join(data_dir, "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
if not os.path.exists(smollm):
    check(False, f"the real model is missing: {smollm}")
else:
    reader = GGUFReader(smollm)
    dump, _, error = run_dump(smollm)
    if dump is None:
        check(False, f"smollm2: lowbit refused the file: {error}")
    else:
        lowbit_values = {m["key"]: m for m in dump["metadata"]}
        fields = [f for name, f in reader.fields.items() if not name.startswith("GGUF.")]
        check(len(lowbit_values) == len(fields),
              f"smollm2: {len(lowbit_values)} metadata keys, gguf-py {len(fields)}")
        for field in fields:
            mine = lowbit_values.get(field.name)
            if mine is None:
                check(False, f"smollm2: lowbit lacks {field.name}")
                continue
            expected = reader_value(field)
            check(mine["type"] == TYPE_NAMES[field.types[0]], f"smollm2: {field.name} type")
            check(mine["value"] == expected, f"smollm2: {field.name} differs")
        compare_tensor_infos(dump, reader, "smollm2")
        # One tensor of every type lowbit decodes.
        by_type = {}
        for t in dump["tensors"]:
            if t["block_layout"] or t["type_name"] in PLAIN_TYPES:
                by_type.setdefault(t["type_name"], t["name"])
        check({"q8_0", "q4_1", "f32"} <= set(by_type),
              f"smollm2: lowbit decodes only {sorted(by_type)}")
        names = list(by_type.values())
        dump, floats, error = run_dump(smollm, names)
        if dump is None:
            check(False, f"smollm2: dequantizing {names}: {error}")
        else:
            reader_tensors = {t.name: t for t in reader.tensors}
            for type_name, name in by_type.items():
                tensor = reader_tensors[name]
                reference = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
                compare_floats(name, floats[name], np.asarray(reference).reshape(-1), "smollm2")
            print(f"smollm2: {len(fields)} metadata values, {len(reader.tensors)} tensor infos, "
                  f"tensors of types {sorted(by_type)} dequantized, all as gguf-py reads them")

if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print("check_gguf: lowbit reads GGUF as gguf-py does")
