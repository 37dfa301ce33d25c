"""Bit-exact check of lowbit's MXFP4/MXFP8/NVFP4 quantizers against an independent numpy
implementation whose conversions are ml_dtypes' (float4_e2m1fn, float8_e4m3fn, float8_e5m2,
float8_e8m0fnu). Usage: check_microscaling.py path/to/lowbit_microscaling_codes"""
import os
import subprocess
import sys
import tempfile

import ml_dtypes
import numpy as np

F32 = np.float32
ELEMENT = {"mxfp4": (ml_dtypes.float4_e2m1fn, 2, 6.0),
           "mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 8, 448.0),
           "mxfp8_e5m2": (ml_dtypes.float8_e5m2, 15, 57344.0)}


def blocks(w, size):
    rows, cols = w.shape
    for r in range(rows):
        for start in range(0, cols, size):
            yield r, start, w[r, start:start + size]


def to_codes(values, dtype, limit):
    # Saturate first (ml_dtypes overflows to NaN/Inf), then ml_dtypes rounds to nearest even.
    return np.clip(values, -limit, limit).astype(dtype).view(np.uint8) & (0xF if dtype == ml_dtypes.float4_e2m1fn else 0xFF)


def reference_mx(w, fmt):
    dtype, emax, limit = ELEMENT[fmt]
    codes = np.zeros(w.shape, np.uint8)
    scales = []
    for r, start, part in blocks(w, 32):
        amax = np.max(np.abs(part))
        exponent = -127 if amax == 0 else int(np.clip(np.frexp(amax)[1] - 1 - emax, -127, 127))
        scale = np.array(2.0 ** exponent, np.float32)
        # float8_e8m0fnu's code of an exact power of two is its biased exponent.
        code = int(np.array(scale).astype(ml_dtypes.float8_e8m0fnu).view(np.uint8)) if exponent > -127 else 0
        assert code == exponent + 127
        scales.append(code)
        codes[r, start:start + len(part)] = to_codes((part / scale).astype(F32), dtype, limit)
    return codes, np.array(scales, np.uint8), F32(1.0)


def reference_nvfp4(w):
    amax = np.max(np.abs(w))
    tensor_scale = F32(1.0) if amax == 0 else max(F32(amax / F32(2688.0)), F32(2.0 ** -149))
    codes = np.zeros(w.shape, np.uint8)
    scales = []
    for r, start, part in blocks(w, 16):
        wanted = np.clip(F32(F32(np.max(np.abs(part)) / F32(6.0)) / tensor_scale), F32(2.0 ** -6), F32(448.0))
        scale8 = np.array(wanted, np.float32).astype(ml_dtypes.float8_e4m3fn)
        scales.append(int(scale8.view(np.uint8)))
        total = F32(F32(scale8.astype(np.float32)) * tensor_scale)
        codes[r, start:start + len(part)] = to_codes((part / total).astype(F32), ml_dtypes.float4_e2m1fn, 6.0)
    return codes, np.array(scales, np.uint8), tensor_scale


def run(tool, fmt, w):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(np.array(w.shape, "<u8").tobytes() + w.astype("<f4").tobytes())
        path = f.name
    try:
        out = subprocess.run([tool, fmt, path], check=True, capture_output=True).stdout
    finally:
        os.unlink(path)
    n = w.size
    codes = np.frombuffer(out[:n], np.uint8).reshape(w.shape)
    scales = np.frombuffer(out[n:-4], np.uint8)
    return codes, scales, np.frombuffer(out[-4:], "<f4")[0]


def main():
    tool = sys.argv[1]
    rng = np.random.default_rng(0)
    matrices = {
        "gaussian": (rng.standard_normal((64, 512)) * 0.02).astype(F32),
        "heavy": (rng.standard_t(3, (37, 172)) * 0.01).astype(F32),
        "wide-range": (rng.standard_normal((16, 100)) * np.exp(rng.uniform(-30, 30, (16, 100)))).astype(F32),
    }
    special = (rng.standard_normal((8, 100)) * 0.02).astype(F32)
    special[:, :32] = 0
    special[:, 40] = 1e4
    special[:, 64:80] = np.arange(-8, 8, dtype=F32) * F32(1e-40)
    matrices["special"] = special
    failures = 0
    for name, w in matrices.items():
        for fmt in ["mxfp4", "mxfp8_e4m3", "mxfp8_e5m2", "nvfp4"]:
            want = reference_nvfp4(w) if fmt == "nvfp4" else reference_mx(w, fmt)
            got = run(tool, fmt, w)
            ok = (np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
                  and np.float32(got[2]).view(np.uint32) == np.float32(want[2]).view(np.uint32))
            print(f"{name:10s} {fmt:11s} {'ok' if ok else 'MISMATCH'}")
            if not ok:
                failures += 1
                bad = np.argwhere(got[0] != want[0])[:5]
                print("  codes differ at", bad.tolist(), "scales differ at",
                      np.argwhere(got[1] != want[1])[:5].ravel().tolist())
    print(f"ml_dtypes {ml_dtypes.__version__}, numpy {np.__version__}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
