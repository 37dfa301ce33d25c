"""Bit-exact comparison of lowbit's float32 -> element-format encoders with ml_dtypes.

Usage: python check_formats.py /path/to/lowbit_format_codes

For every format, a float32 sweep (every binade, mantissa edges, random mantissas, random bit
patterns, and for the format itself every value, every midpoint between neighbouring values and
one float32 ulp either side of both) goes through lowbit_format_codes and through ml_dtypes'
astype; the codes must agree bit for bit, in the overflow mode ml_dtypes implements:

  format  ml_dtypes type          mode compared
  e4m3    float8_e4m3fn           to_nonfinite (and saturate, derived: see below)
  e5m2    float8_e5m2             to_nonfinite (and saturate, derived)
  e2m1    float4_e2m1fn           saturate and to_nonfinite (the same: no Inf, no NaN)
  e2m3    float6_e2m3fn           saturate and to_nonfinite
  e3m2    float6_e3m2fn           saturate and to_nonfinite
  e8m0    float8_e8m0fnu          to_nonfinite (and saturate, derived)
  f16     numpy float16           to_nonfinite (and saturate, derived)
  bf16    bfloat16                to_nonfinite (and saturate, derived)

"Derived saturate": ml_dtypes has no saturating astype; where its result is Inf, or NaN from a
non-NaN input, lowbit's saturate mode must give the largest finite value with the input's sign,
and everywhere else the same code.

Input classes where ml_dtypes' behaviour is not a specification, compared differently:
  * NaN into formats without NaN (e2m1, e2m3, e3m2): ml_dtypes returns a zero with the sign
    flipped (+NaN -> -0); lowbit refuses (encode not ok, 0xFFFF from the tool). Checked: lowbit
    refuses every NaN.
  * NaN into ieee formats (e5m2, f16, bf16): ml_dtypes' float8_e5m2 and bfloat16 drop the payload
    (canonical quiet NaN), numpy's float16 keeps it but does not quiet a signalling NaN; lowbit
    keeps the payload's top bits and sets the quiet bit. Checked: a NaN code with the input's
    sign, and bit-exact agreement on the canonical quiet NaNs (0x7FC00000, 0xFFC00000).
  * e8m0, zero and negative inputs: ml_dtypes gives its NaN code 0xFF; lowbit refuses (0xFFFF),
    as they have no E8M0 value. Checked as agreement.
  * e8m0, float32 subnormals in (2^-127, 1.5 * 2^-127) (bits 0x00400001..0x005FFFFF): ml_dtypes
    (0.6) rounds them to 2^-126 (code 1), as if code 0 were zero rather than 2^-127; the nearest
    value is 2^-127 (code 0), which lowbit gives. Checked: lowbit gives code 0 there.
Exits non-zero on any mismatch, listing the first few (input bits, expected, got).
"""

import subprocess
import sys
import warnings

import ml_dtypes
import numpy as np

NOT_OK = 0xFFFF
F32_SIGN = np.uint32(0x80000000)
F32_ABS = np.uint32(0x7FFFFFFF)
F32_INF = np.uint32(0x7F800000)

FORMATS = {
    # name: (numpy dtype, code bits, has NaN, has Inf, modes ml_dtypes implements)
    "e4m3": (ml_dtypes.float8_e4m3fn, 8, True, False, ["to_nonfinite"]),
    "e5m2": (ml_dtypes.float8_e5m2, 8, True, True, ["to_nonfinite"]),
    "e2m1": (ml_dtypes.float4_e2m1fn, 4, False, False, ["saturate", "to_nonfinite"]),
    "e2m3": (ml_dtypes.float6_e2m3fn, 6, False, False, ["saturate", "to_nonfinite"]),
    "e3m2": (ml_dtypes.float6_e3m2fn, 6, False, False, ["saturate", "to_nonfinite"]),
    "e8m0": (ml_dtypes.float8_e8m0fnu, 8, True, False, ["to_nonfinite"]),
    "f16": (np.float16, 16, True, True, ["to_nonfinite"]),
    "bf16": (ml_dtypes.bfloat16, 16, True, True, ["to_nonfinite"]),
}


def sorted_unique(a):
    """np.unique, without its hash-based path (slow for millions of uint32 in numpy 2.x)."""
    a = np.sort(a)
    return a[np.concatenate([[True], a[1:] != a[:-1]])] if a.size else a


def as_float32(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def common_sweep(rng):
    """Every float32 binade with edge and random mantissas, both signs, plus random bit patterns."""
    edges = np.array([0, 1, 2, 3, 0x1FFFFF, 0x200000, 0x3FFFFF, 0x400000, 0x400001, 0x5FFFFF,
                      0x600000, 0x600001, 0x7FFFFE, 0x7FFFFF, 0x1000, 0xFFF, 0x1001, 0x8000,
                      0x7FFF, 0x8001, 0x18000, 0x3000, 0x80000, 0x7FFFF, 0x80001, 0x100000],
                     dtype=np.uint32)
    exponents = np.arange(256, dtype=np.uint32) << np.uint32(23)
    random_mantissas = rng.integers(0, 1 << 23, size=(256, 256), dtype=np.uint32)
    parts = [(exponents[:, None] | edges[None, :]).ravel(),
             (exponents[:, None] | random_mantissas).ravel(),
             rng.integers(0, 1 << 32, size=1_000_000, dtype=np.uint32)]
    bits = np.concatenate(parts)
    return np.concatenate([bits, bits | F32_SIGN])


def format_sweep(dtype, code_bits):
    """Every value of the format, the midpoints between neighbours, and one ulp either side."""
    codes = np.arange(1 << code_bits, dtype=code_dtype(code_bits))
    with np.errstate(all="ignore"):
        values = codes.view(dtype).astype(np.float64)
    values = sorted_unique(np.abs(values[np.isfinite(values)]))
    step = np.diff(values)
    beyond = values[-1] + step[-1]  # one step past the largest finite value
    points = np.concatenate([values, values[:-1] + step / 2, [values[-1] + step[-1] / 2, beyond]])
    points = points[points <= np.finfo(np.float32).max]
    as32 = points.astype(np.float32)
    assert np.all(as32.astype(np.float64) == points), "midpoints must be float32 values"
    bits = as32.view(np.uint32)
    bits = np.concatenate([bits, bits + np.uint32(1), bits[bits > 0] - np.uint32(1)])
    return np.concatenate([bits, bits | F32_SIGN])


def code_dtype(code_bits):
    return np.uint16 if code_bits > 8 else np.uint8


def max_finite_code(dtype, code_bits):
    """The positive code with the largest finite value."""
    codes = np.arange(1 << (code_bits - 1), dtype=code_dtype(code_bits))  # sign bit clear
    with np.errstate(all="ignore"):
        values = codes.view(dtype).astype(np.float64)
    values[~np.isfinite(values)] = -np.inf
    return int(codes[np.argmax(values)])


def run_tool(tool, fmt, mode, bits):
    data = np.ascontiguousarray(bits, dtype="<u4").tobytes()
    result = subprocess.run([tool, fmt, mode], input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{tool} {fmt} {mode} failed ({result.returncode}): "
                           f"{result.stderr.decode(errors='replace')}")
    codes = np.frombuffer(result.stdout, dtype="<u2")
    if codes.size != bits.size:
        raise RuntimeError(f"{tool} {fmt} {mode}: {codes.size} codes for {bits.size} inputs")
    return codes.astype(np.uint32)


def ml_dtypes_codes(dtype, code_bits, bits):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = as_float32(bits).astype(dtype)
    raw = converted.view(code_dtype(code_bits))
    return raw.astype(np.uint32)


def describe(bits, expected, got, limit=8):
    lines = []
    for b, e, g in list(zip(bits, expected, got))[:limit]:
        value = float(as_float32(np.array([b]))[0])
        lines.append(f"    input 0x{int(b):08X} ({value!r}): expected 0x{int(e):04X}, got 0x{int(g):04X}")
    return "\n".join(lines)


def check_format(tool, fmt, rng_sweep):
    dtype, code_bits, has_nan, has_inf, modes = FORMATS[fmt]
    bits = sorted_unique(np.concatenate([rng_sweep, format_sweep(dtype, code_bits)]))
    abs_bits = bits & F32_ABS
    is_nan_input = abs_bits > F32_INF
    negative = (bits & F32_SIGN) != 0
    expected_all = ml_dtypes_codes(dtype, code_bits, bits)
    sign_bit = 1 << (code_bits - 1) if fmt != "e8m0" else 0
    failures = []
    summary = []

    # Codes of ml_dtypes' non-finite results, for the derived saturate check and NaN checks.
    with np.errstate(all="ignore"):
        finite_values = np.isfinite(
            expected_all.astype(code_dtype(code_bits)).view(dtype).astype(np.float32))

    # Which inputs are compared bit for bit, and how the others are checked.
    compared = ~is_nan_input
    special = np.zeros_like(compared)
    if fmt == "e8m0":
        unrepresentable = negative | (abs_bits == 0)
        quirk = ~negative & (abs_bits > np.uint32(0x00400000)) & (abs_bits < np.uint32(0x00600000))
        special = unrepresentable | quirk
        compared = ~is_nan_input & ~special

    mode_list = list(modes)
    if "saturate" not in mode_list:
        mode_list.append("saturate")  # derived from ml_dtypes, see the module docstring
    for mode in mode_list:
        got = run_tool(tool, fmt, mode, bits)
        expected = expected_all.copy()
        derived = mode not in modes
        if derived:
            overflowed = ~finite_values & ~is_nan_input
            if fmt == "e8m0":
                overflowed &= ~special
                max_code = 0xFE
                expected[overflowed] = max_code
            else:
                max_code = max_finite_code(dtype, code_bits)
                expected[overflowed] = max_code | np.where(negative[overflowed], sign_bit, 0)
        label = f"{fmt} ({np.dtype(dtype).name}, {mode}{', derived' if derived else ''})"

        mismatch = compared & (got != expected)
        if mismatch.any():
            idx = np.nonzero(mismatch)[0]
            failures.append(f"  {label}: {idx.size} mismatches on non-NaN inputs\n"
                            + describe(bits[idx], expected[idx], got[idx]))
        notes = []

        # NaN inputs.
        nan_idx = np.nonzero(is_nan_input)[0]
        if not has_nan:
            bad = got[nan_idx] != NOT_OK
            if bad.any():
                failures.append(f"  {label}: NaN inputs not refused\n" + describe(
                    bits[nan_idx][bad], np.full(bad.sum(), NOT_OK), got[nan_idx][bad]))
            notes.append(f"{nan_idx.size} NaN inputs refused")
        elif fmt in ("e4m3", "e8m0"):
            bad = got[nan_idx] != expected[nan_idx]
            if bad.any():
                failures.append(f"  {label}: NaN mismatches\n" + describe(
                    bits[nan_idx][bad], expected[nan_idx][bad], got[nan_idx][bad]))
            notes.append(f"{nan_idx.size} NaN inputs bit-exact")
        else:
            mantissa_bits = {"e5m2": 2, "f16": 10, "bf16": 7}[fmt]
            inf_code = ((1 << (code_bits - 1 - mantissa_bits)) - 1) << mantissa_bits
            g = got[nan_idx]
            # 16-bit encodes are always ok, so 0xFFFF is a code there (a negative NaN).
            ok = (g & (sign_bit - 1)) > inf_code
            if code_bits <= 8:
                ok &= g != NOT_OK
            ok &= ((g & sign_bit) != 0) == negative[nan_idx]
            canonical = (abs_bits[nan_idx] == np.uint32(0x7FC00000))
            ok &= ~canonical | (g == expected[nan_idx])
            if not ok.all():
                failures.append(f"  {label}: NaN inputs not encoded as NaN of the same sign\n"
                                + describe(bits[nan_idx][~ok], expected[nan_idx][~ok], g[~ok]))
            notes.append(f"{nan_idx.size} NaN inputs checked as NaN + sign "
                         f"({int(canonical.sum())} canonical, bit-exact)")

        if fmt == "e8m0":
            unrep_idx = np.nonzero(unrepresentable & ~is_nan_input)[0]
            bad = (got[unrep_idx] != NOT_OK) | (expected_all[unrep_idx] != 0xFF)
            if bad.any():
                failures.append(f"  {label}: zero/negative inputs not refused\n" + describe(
                    bits[unrep_idx][bad], expected_all[unrep_idx][bad], got[unrep_idx][bad]))
            quirk_idx = np.nonzero(quirk)[0]
            bad = got[quirk_idx] != 0
            if bad.any():
                failures.append(f"  {label}: (2^-127, 1.5*2^-127) not rounded to 2^-127\n"
                                + describe(bits[quirk_idx][bad], np.zeros(bad.sum()), got[quirk_idx][bad]))
            differs = int((expected_all[quirk_idx] != 0).sum())
            notes.append(f"{unrep_idx.size} zero/negative inputs refused (ml_dtypes: NaN)")
            notes.append(f"{quirk_idx.size} inputs in (2^-127, 1.5*2^-127) give 2^-127 "
                         f"(ml_dtypes differs on {differs})")

        status = "ok" if not mismatch.any() else "MISMATCH"
        summary.append(f"{label}: {bits.size} inputs, {int(compared.sum())} compared bit for bit, "
                       f"{int(mismatch.sum())} mismatches; " + "; ".join(notes) + f" [{status}]")
    return summary, failures


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tool = sys.argv[1]
    rng = np.random.default_rng(20240611)
    sweep = common_sweep(rng)
    print(f"ml_dtypes {ml_dtypes.__version__}, numpy {np.__version__}")
    all_failures = []
    for fmt in FORMATS:
        summary, failures = check_format(tool, fmt, sweep)
        for line in summary:
            print(line)
        all_failures += failures
    if all_failures:
        print("FAILED:\n" + "\n".join(all_failures))
        return 1
    print("all formats agree with ml_dtypes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
