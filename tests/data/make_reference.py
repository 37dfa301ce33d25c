# Writes reference.safetensors with the official `safetensors` package (0.8.0 was used):
#   /work/main/.venv/bin/python tests/data/make_reference.py
# tests/test_safetensors.cpp checks every tensor of it and that lowbit writes the same bytes.
import numpy as np
from safetensors import TensorSpec, serialize_file

keep_alive = []  # TensorSpec holds a raw pointer; the buffers must outlive serialize_file


def raw(dtype, shape, data):
    spec_dtype = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
                  "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "I64": "int64",
                  "I32": "int32", "I16": "int16", "I8": "int8", "U64": "uint64", "U32": "uint32",
                  "U16": "uint16", "U8": "uint8", "BOOL": "bool"}[dtype]
    buffer = np.frombuffer(bytes(data), dtype=np.uint8).copy()
    keep_alive.append(buffer)
    return TensorSpec(dtype=spec_dtype, shape=shape, data_ptr=buffer.ctypes.data, data_len=buffer.size)


tensors = {
    "f64": raw("F64", [2], np.array([1.5, -0.25], "<f8").tobytes()),
    "i64": raw("I64", [1], np.array([-3], "<i8").tobytes()),
    "u64": raw("U64", [1], np.array([7], "<u8").tobytes()),
    "f32": raw("F32", [2, 3], (np.arange(6, dtype="<f4") * 0.5 - 1).tobytes()),
    "i32": raw("I32", [2], np.array([-7, 100000], "<i4").tobytes()),
    "u32": raw("U32", [1], np.array([4000000000], "<u4").tobytes()),
    "f16": raw("F16", [3], np.array([1.0, -2.0, 0.5], "<f2").tobytes()),
    "bf16": raw("BF16", [3], np.array([0x3F80, 0xC000, 0x7F80], "<u2").tobytes()),  # 1, -2, inf
    "i16": raw("I16", [2], np.array([-300, 300], "<i2").tobytes()),
    "u16": raw("U16", [1], np.array([65535], "<u2").tobytes()),
    "f8_e4m3": raw("F8_E4M3", [3], [0x38, 0xC0, 0x7E]),  # 1, -2, 448
    "f8_e5m2": raw("F8_E5M2", [3], [0x3C, 0xC0, 0x7C]),  # 1, -2, inf
    "i8": raw("I8", [2, 2], np.array([-128, -1, 0, 127], "<i1").tobytes()),
    "u8": raw("U8", [2], [0, 255]),
    "bool": raw("BOOL", [3], [1, 0, 1]),
    "empty": raw("F32", [0, 3], b""),
    "scalar": raw("U8", [], [42]),
}
# One metadata key only: the Rust writer emits metadata in HashMap (random) order.
serialize_file(tensors, "reference.safetensors", metadata={"format": "pt"})
