#!/usr/bin/env python3
"""Tables and a plot of dequantize-GEMV speed against this machine's memory bandwidth.

Reads the Google Benchmark JSON output of bench_bandwidth and bench_gemv (running them first
with --run) and prints the Markdown tables of docs/benchmarks.md ("Dequantize-GEMV against
memory bandwidth"): the bandwidth, each GEMV's weight GB/s with its fraction of the read
bandwidth measured for the same thread count, and the GFLOP/s of the small-batch GEMMs. Writes
the plot (--svg) by hand as SVG, with the standard library only.

    python3 bench/report.py --run --build build              # run both programs, then report
    python3 bench/report.py --bandwidth BW.json --gemv GEMV.json
"""

import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

GB = 1e9
# A run whose wall time exceeds its main thread's CPU time by this factor lost a core to another
# process (with 2 threads, the fork-join waits for the descheduled one): its cell is starred.
CONTENDED_RATIO = 1.15
contended = set()  # keys of starred cells
GEMV_NAME = re.compile(
    r"^BM_gemv(?P<l3>_l3)?/(?P<format>[^/]+)/(?P<out>\d+)x(?P<inp>\d+)/batch:(?P<batch>\d+)"
    r"/isa:(?P<isa>[^/]+)/threads:(?P<threads>\d+)"
)
BANDWIDTH_NAME = re.compile(
    r"^BM_(?P<kernel>triad|read)/threads:(?P<threads>\d+)(/streams:(?P<streams>\d+))?")
ISA_ORDER = ["eigen", "avx512", "avx2", "scalar"]
FORMAT_LABELS = {
    "fp32": "fp32 (Eigen, baseline)",
    "int8_channel": "int8 per channel, f32 scales",
    "int4_asym_g128": "uint4 asym g128 (f16 scales, code zeros)",
    "int4_sym_g128": "int4 sym g128 (f16 scales)",
    "int8_channel_w8a8": "int8 per channel, int8 activations (W8A8)",
    "int4_sym_g128_w4a8": "int4 sym g128, int8 activations (W4A8)",
    "bf16": "bf16",
    "nf4_g64": "NF4 g64",
    "mxfp4": "MXFP4",
    "mxfp8_e4m3": "MXFP8 (FP8 E4M3)",
    "f16": "f16",
    "fp8_e4m3_channel": "FP8 E4M3, f32 scale per channel",
    "fp8_e4m3_b128": "FP8 E4M3, f32 scales per 128x128 block",
    "ggml_q4_0": "ggml Q4_0",
    "ggml_q8_0": "ggml Q8_0",
    "ggml_q4_k": "ggml Q4_K",
    "ggml_q4_1": "ggml Q4_1",
    "ggml_q5_0": "ggml Q5_0",
    "ggml_q5_1": "ggml Q5_1",
    "ggml_q6_k": "ggml Q6_K",
}


def run(program, output, repetitions, extra=()):
    command = [program, "--benchmark_format=console", "--benchmark_out_format=json",
               "--benchmark_out=" + output, *extra]
    if repetitions > 1:
        command += [f"--benchmark_repetitions={repetitions}",
                    "--benchmark_report_aggregates_only=true"]
    print("+ " + " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True, stdout=sys.stderr)


def load(paths):
    """Benchmark entries by run name: medians when a file has aggregates, else the mean of the
    iteration runs; a later file's entries replace an earlier one's. Skipped (errored) runs keep
    their message."""
    runs, medians, context = defaultdict(list), {}, {}
    entries = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        context = context or data.get("context", {})
        names = {e.get("run_name", e["name"]) for e in data["benchmarks"]}
        entries = [e for e in entries if e.get("run_name", e["name"]) not in names]
        entries += data["benchmarks"]
    for entry in entries:
        name = entry.get("run_name", entry["name"])
        if entry.get("run_type") == "aggregate":
            if entry.get("aggregate_name") == "median":
                medians[name] = entry
        else:
            runs[name].append(entry)
    result = dict(medians)
    for name, entries in runs.items():
        if name in medians:
            continue
        if entries[0].get("error_occurred"):
            result[name] = entries[0]
        else:
            merged = dict(entries[0])
            for key in ("bytes_per_second", "flops_per_second", "real_time", "cpu_time"):
                if key in merged:
                    merged[key] = sum(e[key] for e in entries) / len(entries)
            result[name] = merged
    return context, result


def is_contended(entry):
    return entry.get("real_time", 0) > CONTENDED_RATIO * entry.get("cpu_time", float("inf"))


def parse_bandwidth(entries):
    """GB/s by (kernel, threads) and, for the read kernel, ("read", threads, streams); ("read",
    threads) is the best of the stream counts: the reference the GEMV fractions are taken of."""
    bandwidth = {}
    for name, entry in entries.items():
        m = BANDWIDTH_NAME.match(name)
        if m and not entry.get("error_occurred"):
            key = (m["kernel"], int(m["threads"]))
            if m["streams"]:
                key += (int(m["streams"]),)
            bandwidth[key] = entry["bytes_per_second"] / GB
            if is_contended(entry):
                contended.add(key)
    for key in [k for k in bandwidth if len(k) == 3]:
        best = max(v for k, v in bandwidth.items() if len(k) == 3 and k[1] == key[1])
        if bandwidth.get(key[:2], 0) < best:
            bandwidth[key[:2]] = best
    return bandwidth


def parse_gemv(entries, l3=False):
    """BM_gemv (weights streamed from DRAM) or, with l3, BM_gemv_l3 (one copy, kept in the L3)."""
    gemv = {}
    for name, entry in entries.items():
        m = GEMV_NAME.match(name)
        if not m or bool(m["l3"]) != l3:
            continue
        key = (m["format"], int(m["out"]), int(m["inp"]), int(m["batch"]), m["isa"],
               int(m["threads"]))
        if entry.get("error_occurred"):
            gemv[key] = entry.get("error_message", "skipped")
        else:
            gemv[key] = (entry["bytes_per_second"] / GB, entry["flops_per_second"] / GB)
            if is_contended(entry):
                contended.add(("l3",) * l3 + key)
    return gemv


def ordered(values, order):
    return sorted(values, key=lambda v: (order.index(v) if v in order else len(order), v))


def formats_in(gemv):
    return ordered({k[0] for k in gemv}, list(FORMAT_LABELS))


def format_rows(gemv, shapes_batches):
    """(format, isa) rows in a stable order; a format skipped everywhere gets one row (isa None)
    with its message."""
    rows = []
    for fmt in formats_in(gemv):
        keys = [k for k in gemv if k[0] == fmt and (k[1], k[2], k[3]) in shapes_batches]
        if keys and all(isinstance(gemv[k], str) for k in keys):
            rows.append((fmt, None, gemv[keys[0]]))
            continue
        for isa in ordered({k[4] for k in keys}, ISA_ORDER):
            isa_keys = [k for k in keys if k[4] == isa]
            if all(isinstance(gemv[k], str) for k in isa_keys):
                rows.append((fmt, isa, gemv[isa_keys[0]]))
            else:
                rows.append((fmt, isa, None))
    return rows


def star(*keys):
    return "*" if any(k in contended for k in keys) else ""


def bandwidth_table(bandwidth):
    lines = ["| kernel (bytes counted) | 1 thread GB/s | 2 threads GB/s |", "|---|---:|---:|"]
    streams = sorted({k[2] for k in bandwidth if len(k) == 3})
    rows = [(("triad",), "triad a = b + s*c (24 B per element, as STREAM counts)")]
    rows += [(("read", n), f"read: sum of one array, {n} stream{'s' * (n > 1)} per thread")
             for n in streams]
    rows.append((("read",), "read: sum of one array (8 B per element)" +
                 (", best of the above: the reference" if streams else "")))
    for kernel, label in rows:
        cells = []
        for t in (1, 2):
            key = (kernel[0], t) + kernel[1:]
            cells.append(f"{bandwidth[key]:.1f}{star(key)}" if key in bandwidth else "-")
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def gemv_table(gemv, bandwidth):
    shapes = sorted({(k[1], k[2]) for k in gemv if k[3] == 1},
                    key=lambda s: (s[0] * s[1], s[0] > s[1]))
    header = "| format | ISA |" + "".join(
        f" {o}x{i} 1 thr | {o}x{i} 2 thr |" for o, i in shapes)
    lines = [header, "|---|---|" + "---:|" * (2 * len(shapes))]
    for fmt, isa, message in format_rows(gemv, {(o, i, 1) for o, i in shapes}):
        label = FORMAT_LABELS.get(fmt, fmt)
        if isa is None or message is not None:
            lines.append(f"| {label} | {isa or 'all'} | {message} |" + " |" * (2 * len(shapes) - 1))
            continue
        cells = []
        for o, i in shapes:
            for threads in (1, 2):
                value = gemv.get((fmt, o, i, 1, isa, threads))
                if value is None:
                    cells.append("-")
                elif isinstance(value, str):
                    cells.append(value)
                else:
                    read = bandwidth.get(("read", threads))
                    fraction = f" ({value[0] / read:.2f})" if read else ""
                    key = (fmt, o, i, 1, isa, threads)
                    cells.append(f"{value[0]:.1f}{fraction}{star(key, ('read', threads))}")
        lines.append(f"| {label} | {isa} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gemm_table(gemv):
    batched = sorted({(k[1], k[2]) for k in gemv if k[3] > 1})
    tables = []
    for o, i in batched:
        batches = sorted({k[3] for k in gemv if (k[1], k[2]) == (o, i)})
        header = "| format | ISA |" + "".join(
            f" batch {b} 1 thr | batch {b} 2 thr |" for b in batches)
        lines = [f"{o} x {i} (out x in), GFLOP/s:", "", header,
                 "|---|---|" + "---:|" * (2 * len(batches))]
        for fmt, isa, message in format_rows(gemv, {(o, i, b) for b in batches}):
            label = FORMAT_LABELS.get(fmt, fmt)
            if isa is None or message is not None:
                lines.append(f"| {label} | {isa or 'all'} | {message} |" +
                             " |" * (2 * len(batches) - 1))
                continue
            cells = []
            for b in batches:
                for threads in (1, 2):
                    key = (fmt, o, i, b, isa, threads)
                    value = gemv.get(key)
                    cells.append("-" if value is None else value if isinstance(value, str)
                                 else f"{value[1]:.1f}{star(key)}")
            lines.append(f"| {label} | {isa} | " + " | ".join(cells) + " |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def l3_table(l3, gemv):
    shapes = sorted({(k[1], k[2]) for k in l3})
    tables = []
    for o, i in shapes:
        lines = [f"{o} x {i}, batch 1, GB/s of weights: one copy kept in the L3, and streamed from "
                 "DRAM (the table above):", "",
                 "| format | ISA | L3, 1 thr | DRAM, 1 thr | L3, 2 thr | DRAM, 2 thr |",
                 "|---|---|---:|---:|---:|---:|"]
        for fmt, isa, message in format_rows(l3, {(o, i, 1)}):
            label = FORMAT_LABELS.get(fmt, fmt)
            if isa is None or message is not None:
                lines.append(f"| {label} | {isa or 'all'} | {message} | | | |")
                continue
            cells = []
            for threads in (1, 2):
                for source, prefix in ((l3, ("l3",)), (gemv, ())):
                    key = (fmt, o, i, 1, isa, threads)
                    value = source.get(key)
                    cells.append("-" if value is None else value if isinstance(value, str)
                                 else f"{value[0]:.1f}{star(prefix + key)}")
            lines.append(f"| {label} | {isa} | " + " | ".join(cells) + " |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_plot(gemv, bandwidth, path):
    """One panel per batch-1 shape: a pair of bars (1 and 2 threads) per format at the best ISA
    measured (the first of ISA_ORDER), and the read bandwidth of 1 and 2 threads as lines."""
    shapes = sorted({(k[1], k[2]) for k in gemv if k[3] == 1},
                    key=lambda s: (s[0] * s[1], s[0] > s[1]))
    fmts = formats_in(gemv)
    colors = {1: "#4878a8", 2: "#e08a3c"}
    peak = max([v for v in bandwidth.values()] +
               [v[0] for v in gemv.values() if not isinstance(v, str)] + [1.0])
    top = (int(peak / 5) + 1) * 5
    panel_w, panel_h, left, right, head, foot = 420, 300, 50, 10, 70, 160
    width = max(left + len(shapes) * (panel_w + right) + 90, 720)
    height = head + panel_h + foot
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">'
           'Dequantize-GEMV (batch 1): weight GB/s against the read bandwidth</text>',
           f'<rect x="{left}" y="28" width="10" height="10" fill="{colors[1]}"/>'
           f'<text x="{left + 14}" y="37">1 thread</text>',
           f'<rect x="{left + 80}" y="28" width="10" height="10" fill="{colors[2]}"/>'
           f'<text x="{left + 94}" y="37">2 threads</text>',
           f'<line x1="{left + 170}" y1="33" x2="{left + 195}" y2="33" stroke="black" '
           'stroke-dasharray="5,3"/>'
           f'<text x="{left + 199}" y="37">read bandwidth of 1 / 2 threads (bench_bandwidth, dashed in the '
           'bar colours)</text>']

    def y_of(value):
        return head + panel_h - value / top * panel_h

    for p, (o, i) in enumerate(shapes):
        x0 = left + p * (panel_w + right)
        out.append(f'<text x="{x0 + panel_w / 2}" y="{head - 8}" text-anchor="middle" '
                   f'font-size="12">{o} x {i} (out x in)</text>')
        for tick in range(0, top + 1, 5):
            y = y_of(tick)
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel_w}" y2="{y:.1f}" '
                       'stroke="#dddddd"/>')
            if p == 0:
                out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
        if p == 0:
            out.append(f'<text transform="translate(14,{head + panel_h / 2}) rotate(-90)" '
                       'text-anchor="middle">GB/s (1e9 bytes/s)</text>')
        slot = panel_w / max(len(fmts), 1)
        for f, fmt in enumerate(fmts):
            isas = ordered({k[4] for k in gemv if k[0] == fmt and (k[1], k[2], k[3]) == (o, i, 1)
                            and not isinstance(gemv[k], str)}, ISA_ORDER)
            cx = x0 + slot * (f + 0.5)
            label = fmt
            if isas:
                label += f" ({isas[0]})"
                for t, threads in enumerate((1, 2)):
                    value = gemv.get((fmt, o, i, 1, isas[0], threads))
                    if value is None or isinstance(value, str):
                        continue
                    bx = cx - slot * 0.38 + t * slot * 0.38
                    y = y_of(value[0])
                    out.append(f'<rect x="{bx:.1f}" y="{y:.1f}" width="{slot * 0.36:.1f}" '
                               f'height="{head + panel_h - y:.1f}" fill="{colors[threads]}">'
                               f'<title>{escape(fmt)} {threads} thread(s): {value[0]:.1f} GB/s'
                               '</title></rect>')
            else:
                out.append(f'<text x="{cx:.1f}" y="{head + panel_h - 4}" text-anchor="middle" '
                           f'font-size="9" fill="#888888">n/a</text>')
            out.append(f'<text transform="translate({cx + 3:.1f},{head + panel_h + 6}) '
                       f'rotate(45)" font-size="10">{escape(label)}</text>')
        for threads in (1, 2):
            read = bandwidth.get(("read", threads))
            if read:
                y = y_of(read)
                out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel_w}" y2="{y:.1f}" '
                           f'stroke="{colors[threads]}" stroke-width="1.5" '
                           'stroke-dasharray="5,3"/>')
        out.append(f'<line x1="{x0}" y1="{head + panel_h}" x2="{x0 + panel_w}" '
                   f'y2="{head + panel_h}" stroke="black"/>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true",
                        help="run bench_bandwidth and bench_gemv first (JSON next to them)")
    parser.add_argument("--build", default="build", help="the build directory (with --run)")
    parser.add_argument("--bandwidth", help="bench_bandwidth JSON (default: BUILD/bench/...)")
    parser.add_argument("--gemv", action="append",
                        help="bench_gemv JSON (default: BUILD/bench/...); again for more files, "
                        "whose runs replace the same runs of the earlier ones")
    parser.add_argument("--svg", default="docs/gemv_bandwidth.svg", help="the plot to write")
    parser.add_argument("--repetitions", type=int, default=1,
                        help="runs of each benchmark (with --run); the tables take the median")
    parser.add_argument("--filter", help="--benchmark_filter for bench_gemv (with --run)")
    args = parser.parse_args()
    bench = os.path.join(args.build, "bench")
    bandwidth_json = args.bandwidth or os.path.join(bench, "bench_bandwidth.json")
    gemv_json = args.gemv or [os.path.join(bench, "bench_gemv.json")]
    if args.run:
        run(os.path.join(bench, "bench_bandwidth"), bandwidth_json, args.repetitions)
        run(os.path.join(bench, "bench_gemv"), gemv_json[-1], args.repetitions,
            ["--benchmark_filter=" + args.filter] if args.filter else [])

    context, bandwidth_entries = load([bandwidth_json])
    bandwidth = parse_bandwidth(bandwidth_entries)
    gemv_entries = load(gemv_json)[1]
    gemv, l3 = parse_gemv(gemv_entries), parse_gemv(gemv_entries, l3=True)
    print(f"Measured {context.get('date', '?')}, {context.get('num_cpus', '?')} CPUs at "
          f"{context.get('mhz_per_cpu', '?')} MHz, load average "
          f"{', '.join(f'{x:.2f}' for x in context.get('load_avg', []))} at the start.\n")
    print("Memory bandwidth (bench_bandwidth):\n")
    print(bandwidth_table(bandwidth))
    print("\nGEMV (batch 1), GB/s of weights streamed, and (in brackets) the fraction of the read "
          "bandwidth for the same thread count:\n")
    print(gemv_table(gemv, bandwidth))
    print("\nGEMM (small batches):\n")
    print(gemm_table(gemv))
    if l3:
        print("\nThe kernels' own speed, weights in the L3 (BM_gemv_l3):\n")
        print(l3_table(l3, gemv))
    if contended:
        print(f"\n\\* {len(contended)} runs took more than {CONTENDED_RATIO} x their CPU time: "
              "another process had a core. Rerun them when the machine is quiet.")
    if args.svg:
        svg_plot(gemv, bandwidth, args.svg)
        print(f"\n(plot written to {args.svg})", file=sys.stderr)


if __name__ == "__main__":
    main()
