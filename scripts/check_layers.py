#!/usr/bin/env python3
"""Fails when an #include points up lowbit's layers (docs/design.md, "Layers").

Every file of the library belongs to one layer, by where it lives:

  0 base      config.hpp, error.hpp, matrix_view.hpp, cpu_features.hpp, threads.hpp, detail/
  1 format    format/
  2 currency  scheme.hpp, quantized_matrix.hpp
  3 quant     quant/
  4 algo      algo/
  5 kernels   kernels/ (public headers, src/kernels/, and the kernels/cpu, kernels/cuda sources)
  6 io        io/
  7 model     model/
  8 pipeline  pipeline/
  9 tools     tools/lowbit/

for a header under include/lowbit/ and for its body under src/ alike. A file may include files of
its own layer and of the layers below it, never above. Public headers (include/lowbit/) may include
only public headers: what src/ holds is private to the compiled library. The umbrella header
lowbit.hpp includes everything and is not checked; tests, benchmarks and examples may include
anything public.

Usage: scripts/check_layers.py [repository root]   (exit status 1 on a violation)
"""
import pathlib
import re
import sys

LAYERS = ["base", "format", "currency", "quant", "algo", "kernels", "io", "model", "pipeline",
          "tools"]
BASE_FILES = {"config.hpp", "error.hpp", "matrix_view.hpp", "cpu_features.hpp", "threads.hpp"}
CURRENCY_FILES = {"scheme.hpp", "quantized_matrix.hpp"}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def layer_of_library_path(parts):
    """The layer of a path relative to include/lowbit/ or src/, or None when it has none."""
    if len(parts) == 1:
        name = parts[0]
        stem = name.rsplit(".", 1)[0]
        if name in BASE_FILES or stem + ".hpp" in BASE_FILES:
            return "base"
        if name in CURRENCY_FILES or stem + ".hpp" in CURRENCY_FILES:
            return "currency"
        return None
    folder = parts[0]
    if folder == "detail":
        return "base"
    return folder if folder in LAYERS else None


def layer_of(path, root):
    rel = path.relative_to(root).parts
    if rel[:2] == ("include", "lowbit"):
        return layer_of_library_path(rel[2:])
    if rel[0] == "src":
        return layer_of_library_path(rel[1:])
    if rel[0] == "kernels":
        return "kernels"
    if rel[:2] == ("tools", "lowbit"):
        return "tools"
    return None


def resolve(include, source, root):
    """The file an #include "..." names: beside the source, then include/, then src/."""
    for base in (source.parent, root / "include", root / "src"):
        candidate = (base / include).resolve()
        if candidate.is_file():
            return candidate
    return None


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    sources = [p for folder in ("include/lowbit", "src", "kernels", "tools/lowbit")
               for p in sorted((root / folder).rglob("*"))
               if p.suffix in {".hpp", ".cpp", ".cu", ".cuh", ".h"}]
    problems = []
    checked = 0
    for source in sources:
        if source == root / "include/lowbit/lowbit.hpp":
            continue
        own = layer_of(source, root)
        if own is None:
            problems.append(f"{source.relative_to(root)}: lies in no layer")
            continue
        public = source.is_relative_to(root / "include")
        for include in INCLUDE.findall(source.read_text(encoding="utf-8")):
            target = resolve(include, source, root)
            if target is None or not target.is_relative_to(root):
                continue  # a system or third-party header
            checked += 1
            where = f"{source.relative_to(root)}: #include \"{include}\""
            if public and not target.is_relative_to(root / "include"):
                problems.append(f"{where}: a public header includes a private one")
                continue
            theirs = layer_of(target, root)
            if theirs is None:
                problems.append(f"{where}: the included file lies in no layer")
            elif LAYERS.index(theirs) > LAYERS.index(own):
                problems.append(f"{where}: {own} includes {theirs}, a layer above it")
    for problem in problems:
        print(problem)
    print(f"check_layers: {len(sources)} files, {checked} includes, {len(problems)} violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
