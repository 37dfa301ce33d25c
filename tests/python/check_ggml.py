"""Bit-exact check of lowbit's ggml blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL,
IQ4_XS, and F16 / BF16 as blocks of one weight) against gguf-py, llama.cpp's Python package
(gguf.quants.quantize / dequantize).

- Q4_0, Q8_0: lowbit's quantized bytes equal gguf-py's, block for block, and lowbit's dequantized
  values equal gguf-py's dequantization of them, bit for bit.
- Q4_K: gguf-py has no Q4_K quantizer, so lowbit's bytes are compared with a numpy transcription of
  ggml's quantize_row_q4_K_ref below (float32 throughout, one rounding per operation, as ggml
  computes without FMA contraction); the dequantization is compared with gguf-py's bit for bit.
- Dequantization of random blocks (every byte random, the fp16 scales random finite values
  including subnormals) against gguf-py, for the three block types; for F16 and BF16, every one of
  the 65,536 bit patterns, NaN and Inf included.
- F16, BF16: the conversions of the same test matrices (those within F16's range for F16).
- Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS (lowbit reads and dequantizes them,
  it has no quantizer for them): random blocks (every byte random, every fp16 field a random
  finite value) and edge cases (zero, -0, negative, subnormal and the largest finite scales; code
  bytes all 0x00, 0xFF, 0x55, 0xAA), one block per row and rows of 64 blocks, bit for bit; and
  blocks with Inf and NaN scales, NaN where gguf-py has NaN and bit for bit elsewhere.

Two known divergences are accounted for. An F16 signaling NaN dequantizes to a quiet float32 NaN
in lowbit, as in ggml on x86 (F16C's conversion), while numpy keeps the quiet bit clear. And an
all-zero Q4_0 block whose first element is -0.0 gets d = +0 from gguf-py (it takes the sign of the
first largest element) and d = -0 from ggml, whose max starts at +0.0; lowbit follows ggml.

Usage: check_ggml.py path/to/lowbit_ggml_blocks"""
import importlib.metadata
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

F32 = np.float32
TYPES = {"q4_0": (T.Q4_0, 32, 18), "q8_0": (T.Q8_0, 32, 34), "q4_k": (T.Q4_K, 256, 144),
         "f16": (T.F16, 1, 2), "bf16": (T.BF16, 1, 2),
         # read and dequantized by lowbit, not quantized
         "q4_1": (T.Q4_1, 32, 20), "q5_0": (T.Q5_0, 32, 22), "q5_1": (T.Q5_1, 32, 24),
         "q2_k": (T.Q2_K, 256, 84), "q3_k": (T.Q3_K, 256, 110), "q5_k": (T.Q5_K, 256, 176),
         "q6_k": (T.Q6_K, 256, 210), "iq4_nl": (T.IQ4_NL, 32, 18), "iq4_xs": (T.IQ4_XS, 256, 136)}
# Byte offsets of each block's fp16 fields (d, then m or dmin), as ggml-common.h lays them out.
FP16_FIELDS = {"q4_0": [0], "q8_0": [0], "q4_k": [0, 2], "q4_1": [0, 2], "q5_0": [0],
               "q5_1": [0, 2], "q2_k": [80, 82], "q3_k": [108], "q5_k": [0, 2], "q6_k": [208],
               "iq4_nl": [0], "iq4_xs": [0]}
DEQUANTIZE_ONLY = ["q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs"]


def run(tool, mode, name, rows, cols, payload):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(np.array([rows, cols], "<u8").tobytes() + payload)
        path = f.name
    try:
        out = subprocess.run([tool, mode, name, path], check=True, capture_output=True).stdout
    finally:
        os.unlink(path)
    return out


def lowbit_quantize(tool, name, w):
    _, block, size = TYPES[name]
    rows, cols = w.shape
    out = run(tool, "quantize", name, rows, cols, w.astype("<f4").tobytes())
    n = rows * cols // block * size
    blocks = np.frombuffer(out[:n], np.uint8).reshape(rows, cols // block * size)
    return blocks, np.frombuffer(out[n:], "<f4").reshape(rows, cols)


def lowbit_dequantize(tool, name, blocks, rows, cols):
    out = run(tool, "dequantize", name, rows, cols, blocks.tobytes())
    return np.frombuffer(out, "<f4").reshape(rows, cols)


# --- Test matrices: one block per row, so every block is reported on its own. ---

def matrices(block, rng):
    n = 256 if block == 32 else 128  # rows (blocks) per kind
    g = lambda s=1.0: (rng.standard_normal((n, block)) * s).astype(F32)
    out = {
        "gaussian": g(0.02),
        "heavy": (rng.standard_t(3, (n, block)) * 0.01).astype(F32),
        "uniform": rng.uniform(-1, 1, (n, block)).astype(F32),
        "wide-range": (g() * np.exp2(rng.integers(-40, 12, (n, 1)))).astype(F32),
        # multiples of 1/4 and 1/2: codes land exactly on the .5 boundaries of both rounding rules
        "grid-quarter": (rng.integers(-8, 9, (n, block)) * 0.25).astype(F32),
        "grid-half": (rng.integers(-127, 128, (n, block)) * 0.5).astype(F32),
        # fp16-subnormal scales, and float32 values so small that 1/d overflows
        "fp16-subnormal": (g() * 1e-6).astype(F32),
        "tiny": (g() * 1e-39).astype(F32),
        "sparse": np.where(rng.random((n, block)) < 0.1, g(), 0).astype(F32),
        "one-sided+": (np.abs(g(0.1)) + 1).astype(F32),
        "one-sided-": (-np.abs(g(0.1))).astype(F32),
        "constant": np.full((n, block), 3.0, F32) * rng.choice([-1, 1], (n, 1)).astype(F32),
        "near-overflow": (g() * 2e4).astype(F32),
    }
    z = np.zeros((n, block), F32)
    z[n // 2:] = -0.0
    z[n // 4:n // 2, 1::2] = -0.0
    out["zeros"] = z
    # +-m ties for Q4_0's "first largest |x|": the same magnitude with both signs
    t = g(0.1)
    for r in range(n):
        i, j = rng.choice(block, 2, replace=False)
        m = F32(np.abs(t[r]).max() * 1.5)
        t[r, i], t[r, j] = m, -m
    out["sign-ties"] = t
    return out


def first_zero_is_negative(w):
    return np.all(w == 0, axis=1) & np.signbit(w[:, 0])


# --- A numpy transcription of ggml's quantize_row_q4_K_ref, vectorized over super-blocks. ---

def nearest_int(f):
    v = (f.astype(F32) + F32(12582912.0)).view(np.int32)
    return (v & 0x007FFFFF) - 0x00400000


def seq_sum(terms):  # left to right, as ggml's loops add
    acc = terms[:, 0].copy()
    for i in range(1, terms.shape[1]):
        acc = acc + terms[:, i]
    return acc


def make_qkx2_quants(x, w):  # nmax 15, rmin -1, rdelta 0.1, nstep 20, squared error
    nmax = F32(15)
    mn, mx = x.min(axis=1), x.max(axis=1)
    sum_w = seq_sum(w)
    sum_x = seq_sum(w * x)
    mn = np.where(mn > 0, F32(0), mn)
    flat = mx == mn
    iscale = nmax / (mx - mn)
    scale = F32(1) / iscale
    L = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None])), 0, 15)
    diff = scale[:, None] * L.astype(F32) + mn[:, None] - x
    best = seq_sum(w * (diff * diff))
    for step in range(21):  # min moves to the best fit so far, and the next grid starts from it
        iscale = (F32(-1) + F32(0.1) * F32(step) + nmax) / (mx - mn)
        laux = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None])), 0, 15)
        fl = laux.astype(F32)
        sum_l, sum_l2, sum_xl = seq_sum(w * fl), seq_sum(w * fl * fl), seq_sum(w * fl * x)
        D = sum_w * sum_l2 - sum_l * sum_l
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
        clamp = this_min > 0
        this_min = np.where(clamp, F32(0), this_min)
        this_scale = np.where(clamp, sum_xl / sum_l2, this_scale)
        diff = this_scale[:, None] * fl + this_min[:, None] - x
        cur = seq_sum(w * (diff * diff))
        take = (D > 0) & (cur < best) & ~flat
        L = np.where(take[:, None], laux, L)
        best = np.where(take, cur, best)
        scale = np.where(take, this_scale, scale)
        mn = np.where(take, this_min, mn)
    L = np.where(flat[:, None], 0, L)
    scale = np.where(flat, F32(0), scale)
    return scale.astype(F32), (-mn).astype(F32), L


def quantize_q4_k(w):
    with np.errstate(all="ignore"):  # flat sub-blocks divide by zero in lanes that are not used
        return quantize_q4_k_blocks(w)


def quantize_q4_k_blocks(w):
    nb = w.size // 256
    x = w.reshape(nb * 8, 32).astype(F32)
    sum_x2 = seq_sum(x * x)
    av = np.sqrt(sum_x2 / F32(32))
    scales, mins, L = make_qkx2_quants(x, av[:, None] + np.abs(x))
    scales, mins, L = scales.reshape(nb, 8), mins.reshape(nb, 8), L.reshape(nb, 256)
    max_scale = np.maximum(scales.max(axis=1), F32(0))
    max_min = np.maximum(mins.max(axis=1), F32(0))
    inv_scale = np.where(max_scale > 0, F32(63) / max_scale, F32(0))
    inv_min = np.where(max_min > 0, F32(63) / max_min, F32(0))
    ls = np.minimum(nearest_int(inv_scale[:, None] * scales) & 0xFF, 63)  # uint8, then min 63
    lm = np.minimum(nearest_int(inv_min[:, None] * mins) & 0xFF, 63)
    packed = np.zeros((nb, 12), np.int64)
    packed[:, 0:4] = ls[:, 0:4] | ((ls[:, 4:8] >> 4) << 6)
    packed[:, 4:8] = lm[:, 0:4] | ((lm[:, 4:8] >> 4) << 6)
    packed[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    d16 = (max_scale / F32(63)).astype(np.float16)
    dmin16 = (max_min / F32(63)).astype(np.float16)
    d = d16.astype(F32)[:, None] * ls.astype(F32)
    dm = dmin16.astype(F32)[:, None] * lm.astype(F32)
    xs = w.reshape(nb, 8, 32).astype(F32)
    requant = np.clip(nearest_int((xs + dm[:, :, None]) / d[:, :, None]), 0, 15)
    L = np.where((d != 0)[:, :, None], requant, L.reshape(nb, 8, 32)).reshape(nb, 256)
    q = L.reshape(nb, 4, 2, 32)
    qs = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(nb, 128)
    return np.concatenate([d16.view(np.uint8).reshape(nb, 2), dmin16.view(np.uint8).reshape(nb, 2),
                           packed.astype(np.uint8), qs.astype(np.uint8)], axis=1)


def set_fp16(blocks, name, bits):
    """Writes fp16 bits (one value for all, one per block, or [count, fields]) into the fp16
    fields."""
    bits = np.asarray(bits, np.uint16)
    if bits.ndim == 1:  # one value per block
        bits = bits[:, None]
    bits = np.broadcast_to(bits, (len(blocks), len(FP16_FIELDS[name])))
    for i, offset in enumerate(FP16_FIELDS[name]):
        blocks[:, offset:offset + 2] = bits[:, i].astype("<u2").view(np.uint8).reshape(-1, 2)
    return blocks


def random_fp16(rng, shape, exponents=(0, 31)):
    """Finite fp16 bits: random exponents (0: subnormals), mantissa and sign."""
    bits = rng.integers(*exponents, shape) << 10 | rng.integers(0, 1024, shape)
    return (bits | rng.integers(0, 2, shape) << 15).astype(np.uint16)


def random_blocks(name, rng, count):
    _, block, size = TYPES[name]
    b = rng.integers(0, 256, (count, size), dtype=np.uint8)
    return set_fp16(b, name, random_fp16(rng, (count, len(FP16_FIELDS[name]))))


def edge_blocks(name, rng):
    """Named sets of blocks at the edges: zero, negative and subnormal scales, the largest finite
    scale, and every other byte (codes, sub-block scales, high bits) all 0, all 1 or alternating."""
    _, _, size = TYPES[name]
    n, fields = 64, len(FP16_FIELDS[name])
    rand = lambda: rng.integers(0, 256, (n, size), dtype=np.uint8)
    out = {
        "zero scales": set_fp16(rand(), name, 0x0000),
        "-0 scales": set_fp16(rand(), name, 0x8000),
        "negative scales": set_fp16(rand(), name, random_fp16(rng, (n, fields)) | 0x8000),
        "subnormal scales": set_fp16(rand(), name, random_fp16(rng, (n, fields), (0, 1))),
        "smallest subnormal": set_fp16(rand(), name, 0x0001),
        "largest finite scales": set_fp16(rand(), name, rng.choice([0x7BFF, 0xFBFF], (n, fields))),
    }
    for label, byte in [("codes all 0", 0x00), ("codes all 1", 0xFF), ("codes 0x55", 0x55),
                        ("codes 0xAA", 0xAA)]:
        b = np.full((n, size), byte, np.uint8)
        out[label] = set_fp16(b, name, random_fp16(rng, (n, fields)))
        out[label + ", largest scales"] = set_fp16(b.copy(), name, 0x7BFF)
    return out


def nonfinite_blocks(name, rng):
    """Random blocks whose fp16 fields are Inf, -Inf or NaN (and finite ones mixed in)."""
    _, _, size = TYPES[name]
    n, fields = 64, len(FP16_FIELDS[name])
    bits = rng.choice([0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x3C00], (n, fields)).astype(np.uint16)
    return set_fp16(rng.integers(0, 256, (n, size), dtype=np.uint8), name, bits)


def same_bits(a, b):
    return np.array_equal(np.asarray(a, F32).view(np.uint32), np.asarray(b, F32).view(np.uint32))


def same_or_both_nan(a, b):
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    nan = np.isnan(a)
    return np.array_equal(nan, np.isnan(b)) and same_bits(a[~nan], b[~nan])


def gguf_dequantize(name, blocks):
    qtype, block, size = TYPES[name]
    with np.errstate(all="ignore"):  # Inf * 0 in the non-finite cases
        return np.array(quants.dequantize(blocks, qtype), F32).reshape(blocks.shape[0], -1)


def check_dequantize_only(tool, name, rng, report):
    """Random blocks and the edge cases, dequantized by lowbit and by gguf-py, bit for bit (NaN
    for NaN where a scale is not finite). One block per row, and rows of several blocks."""
    _, block, size = TYPES[name]
    failures = 0
    cases = {"random": random_blocks(name, rng, 4096), **edge_blocks(name, rng)}
    for label, blocks in cases.items():
        want = gguf_dequantize(name, blocks)
        got = lowbit_dequantize(tool, name, blocks, blocks.shape[0], block)
        ok = same_bits(got, want)
        failures += not ok
        report(ok, f"{name} dequantization of {blocks.shape[0]:4d} blocks: {label}")
        if not ok:
            bad = np.nonzero(np.any(got.view(np.uint32) != want.view(np.uint32), axis=1))[0]
            print("   blocks differ:", bad[:5].tolist())
    blocks = random_blocks(name, rng, 8 * 64)  # 8 rows of 64 blocks
    got = lowbit_dequantize(tool, name, blocks.reshape(8, -1), 8, 64 * block)
    ok = same_bits(got, gguf_dequantize(name, blocks).reshape(8, -1))
    failures += not ok
    report(ok, f"{name} dequantization of 8 rows of 64 blocks")
    blocks = nonfinite_blocks(name, rng)
    got = lowbit_dequantize(tool, name, blocks, blocks.shape[0], block)
    ok = same_or_both_nan(got, gguf_dequantize(name, blocks))
    failures += not ok
    report(ok, f"{name} dequantization of {blocks.shape[0]} blocks with Inf/NaN scales")
    return failures


def main():
    tool = sys.argv[1]
    rng = np.random.default_rng(0)
    failures = 0
    report = lambda ok, text: print(f"{'ok      ' if ok else 'MISMATCH'} {text}")
    for name in ["q4_0", "q8_0", "q4_k", "f16", "bf16"]:
        qtype, block, size = TYPES[name]
        blocks_total = bad_total = 0
        for kind, w in matrices(max(block, 32), rng).items():
            if name == "f16" and np.abs(w).max() >= 65520:  # Inf in F16: lowbit refuses it
                continue
            got, got_values = lowbit_quantize(tool, name, w)
            if name == "q4_k":
                want = quantize_q4_k(w)
            else:
                with np.errstate(all="ignore"):
                    want = quants.quantize(w, qtype).view(np.uint8).reshape(got.shape).copy()
                if name == "q4_0":  # the known divergence (see the top of this file)
                    want[first_zero_is_negative(w), 1] = 0x80
            bad = np.nonzero(np.any(got != want, axis=1))[0]
            dq = quants.dequantize(got.copy(), qtype).reshape(w.shape)
            ok = len(bad) == 0 and same_bits(got_values, dq)
            failures += not ok
            blocks_total += got.shape[0]
            bad_total += len(bad)
            report(ok, f"{name} {kind:15s} {got.shape[0]:4d} blocks: quantized bytes"
                       f"{' (numpy transcription of ggml)' if name == 'q4_k' else ''},"
                       f" dequantized values")
            if len(bad):
                print("   blocks differ:", bad[:5].tolist())
        if block == 1:  # every 16-bit pattern, NaN and Inf included
            blocks = np.arange(65536, dtype="<u2").view(np.uint8).reshape(2048, 64)
        else:
            blocks = random_blocks(name, rng, 4096)
        got = lowbit_dequantize(tool, name, blocks, blocks.shape[0], blocks.shape[1] // size * block)
        want = np.array(quants.dequantize(blocks, qtype), F32).reshape(got.shape)
        if name == "f16":  # signaling NaNs come out quiet, as from ggml's F16C conversion
            want.view(np.uint32)[np.isnan(want)] |= np.uint32(0x00400000)
        ok = same_bits(got, want)
        failures += not ok
        report(ok, f"{name} dequantization of {blocks.shape[0]} random blocks")
        print(f"   {name}: {blocks_total} quantized blocks compared, {bad_total} differ")
    for name in DEQUANTIZE_ONLY:
        failures += check_dequantize_only(tool, name, rng, report)
    print(f"gguf {importlib.metadata.version('gguf')}, numpy {np.__version__}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
