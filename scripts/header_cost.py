#!/usr/bin/env python3
"""What including each public header costs a consumer: CPU seconds and peak memory of
`g++ -std=c++20 -O2 -fsyntax-only` on a translation unit that includes only that header.

Usage: scripts/header_cost.py [--root DIR] [--repeat N] [--extra-flags "..."] [header ...]
Headers are paths under include/ (default: lowbit/lowbit.hpp and every public header). Each is
compiled N times (default 3) and the smallest CPU time is kept, so that a busy machine disturbs the
figures less. Prints a Markdown table, slowest first.
"""
import argparse
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile


def measure(root, header, flags):
    """(CPU seconds, peak MB) of one compile, as /usr/bin/time reports the compiler's process."""
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as tu:
        tu.write(f'#include "{header}"\n')
    try:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%U %S %M", "g++", "-std=c++20", "-O2", "-fsyntax-only",
             f"-I{root / 'include'}", *flags, tu.name], capture_output=True, text=True)
    finally:
        os.unlink(tu.name)
    if proc.returncode != 0:
        raise SystemExit(f"{header} does not compile alone:\n{proc.stderr[:2000]}")
    user, system, kilobytes = proc.stderr.strip().splitlines()[-1].split()
    return float(user) + float(system), int(kilobytes) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=".", type=pathlib.Path)
    parser.add_argument("--repeat", default=3, type=int)
    parser.add_argument("--extra-flags", default="")
    parser.add_argument("headers", nargs="*")
    args = parser.parse_args()
    root = args.root.resolve()
    flags = shlex.split(args.extra_flags)
    headers = args.headers or ["lowbit/lowbit.hpp"] + sorted(
        str(p.relative_to(root / "include")) for p in (root / "include/lowbit").rglob("*.hpp")
        if "detail" not in p.parts and p.name != "lowbit.hpp")
    rows = []
    for header in headers:
        seconds, megabytes = min(measure(root, header, flags) for _ in range(args.repeat))
        rows.append((seconds, megabytes, header))
        print(f"{header}: {seconds:.2f} s", file=sys.stderr)
    rows.sort(reverse=True)
    print("| header | CPU s | peak MB |")
    print("|---|---:|---:|")
    for seconds, megabytes, header in rows:
        print(f"| {header} | {seconds:.2f} | {megabytes:.0f} |")


if __name__ == "__main__":
    main()
