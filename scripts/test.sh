#!/usr/bin/env bash
# The whole test suite: configures and builds lowbit with its tests (in build/, or
# $LOWBIT_BUILD_DIR), sets up the Python reference environment, and runs ctest.
# Extra arguments go to CMake, e.g. scripts/test.sh -DLOWBIT_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${LOWBIT_BUILD_DIR:-build}
python=$(bash scripts/python-env.sh)
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_PYTHON="$python" "$@"
cmake --build "$build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
