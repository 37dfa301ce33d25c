#!/usr/bin/env bash
# Installs every Debian package that lowbit's build, tests, examples and benchmarks need.
# Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  python3 python3-venv           # the reference-implementation tests (ml_dtypes, numpy) run in a venv
  libeigen3-dev libxsimd-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libpcre2-dev                   # the BPE tokenizers' pre-tokenizer regexes (JIT, Unicode properties)
  catch2 libbenchmark-dev
  clang-14 libclang-rt-14-dev libomp-14-dev llvm-14  # scripts/fuzz.sh: libFuzzer, its symbolizer
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
