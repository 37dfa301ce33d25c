#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz (clang++, AddressSanitizer and
# UndefinedBehaviorSanitizer) in build-fuzz/, writes their seed corpora with lowbit's own writers
# and quantizers, and runs each harness for a bounded time. Fails when any harness reports a
# finding (docs/fuzzing.md).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_HARNESS [HARNESS... | all]]
#   SECONDS_PER_HARNESS  default 60
#   HARNESS...           default: ci_harnesses below; "all": every harness built
# Environment: LOWBIT_FUZZ_BUILD_DIR (default build-fuzz), LOWBIT_FUZZ_CXX (default clang++-14,
# else clang++), LOWBIT_FUZZ_ARGS (more libFuzzer flags, e.g. "-fork=2": two fuzzing processes),
# LOWBIT_DATA_DIR (default ../shared/data).
# Outputs under the build directory: seeds/<name>/ (regenerated each run), corpus/<name>/ (what the
# fuzzer found interesting; kept between runs), findings/<name>/ (crash-*, leak-*, oom-*,
# timeout-* reproducers), logs/<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

# The harnesses CI runs: those with no known open finding. The others run with "all" or by name;
# a harness joins this list once it is committed and the bugs it finds are fixed (docs/fuzzing.md).
ci_harnesses=(fuzz_safetensors fuzz_sharded_index fuzz_quantized fuzz_llama2c fuzz_tokenizer
              fuzz_gguf fuzz_hf_config fuzz_hf_tokenizer)

seconds=${1:-60}
shift || true
build=${LOWBIT_FUZZ_BUILD_DIR:-build-fuzz}
data=${LOWBIT_DATA_DIR:-../shared/data}
cxx=${LOWBIT_FUZZ_CXX:-$(command -v clang++-14 || command -v clang++ || echo clang++)}

# Per harness: its seed directory under seeds/ and the longest input (bytes) the fuzzer tries.
declare -A seed_dir=([fuzz_safetensors]=safetensors [fuzz_sharded_index]=sharded_index
                     [fuzz_quantized]=quantized [fuzz_llama2c]=llama2c [fuzz_tokenizer]=tokenizer
                     [fuzz_gguf]=gguf [fuzz_hf_tokenizer]=hf_tokenizer [fuzz_hf_config]=hf_config)
declare -A max_len=([fuzz_safetensors]=65536 [fuzz_sharded_index]=4096 [fuzz_quantized]=65536
                    [fuzz_llama2c]=65536 [fuzz_tokenizer]=8192 [fuzz_gguf]=16384
                    [fuzz_hf_tokenizer]=65536 [fuzz_hf_config]=8192)
# The harnesses whose input is JSON, or holds it, take the dictionary the seed writer makes.
declare -A json_input=([fuzz_hf_tokenizer]=1 [fuzz_safetensors]=1 [fuzz_sharded_index]=1 [fuzz_quantized]=1
                       [fuzz_hf_config]=1)

# Instrumented for coverage and sanitized; asserts and the standard library's checks stay on (-O1).
# The library, the harnesses and the seed writer only: tests, tools and the rest are not built.
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Debug \
  "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g -D_GLIBCXX_ASSERTIONS" -DLOWBIT_FUZZ=ON \
  -DLOWBIT_ENABLE_CUDA=OFF -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_BENCH=OFF \
  -DLOWBIT_BUILD_EXAMPLES=OFF -DLOWBIT_BUILD_TOOLS=OFF -DLOWBIT_INSTALL=OFF >/dev/null
cmake --build "$build"

built=()
for harness in "${!seed_dir[@]}"; do
  [ -x "$build/tests/fuzz/$harness" ] && built+=("$harness")
done
if [ $# -eq 0 ]; then
  harnesses=("${ci_harnesses[@]}")
elif [ "$1" = all ]; then
  mapfile -t harnesses < <(printf '%s\n' "${built[@]}" | sort)
else
  harnesses=("$@")
fi

# Seeds: written afresh by lowbit itself (the tokenizer's around ../shared/data's tok512.bin); the
# real sharded index of ../shared/data joins them.
rm -rf "$build/seeds"
"$build/tests/fuzz/lowbit_fuzz_seeds" "$build/seeds" "$data"
hf_index=$data/stories260K-hf/bf16-sharded/model.safetensors.index.json
cp "$hf_index" "$build/seeds/sharded_index/stories260K-hf.json"

export OMP_NUM_THREADS=1
export UBSAN_OPTIONS=print_stacktrace=1
symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer"

failed=()
summary=()
for harness in "${harnesses[@]}"; do
  binary="$build/tests/fuzz/$harness"
  [ -x "$binary" ] || { echo "fuzz.sh: no harness $binary"; exit 2; }
  corpus="$build/corpus/$harness"
  findings="$build/findings/$harness"
  log="$build/logs/$harness.log"
  mkdir -p "$corpus" "$findings" "$build/logs"
  printf '\n==== %s: %s s ====\n' "$harness" "$seconds"
  # -rss_limit_mb also caps single allocations (malloc_limit_mb defaults to it): a small file
  # that makes lowbit allocate gigabytes is a finding. -timeout: seconds per input.
  flags=()
  [ -n "${json_input[$harness]:-}" ] && flags+=(-dict="$build/seeds/json.dict")
  status=0
  # shellcheck disable=SC2086  # LOWBIT_FUZZ_ARGS is a list of flags
  "$binary" "$corpus" "$build/seeds/${seed_dir[$harness]}" "${flags[@]}" \
    -max_total_time="$seconds" -max_len="${max_len[$harness]}" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$findings/" ${LOWBIT_FUZZ_ARGS:-} >"$log" 2>&1 ||
    status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  # The last status line, "#N DONE cov: C ft: F corp: U/S ...", or the last before a crash.
  coverage=$(grep -E '^#[0-9]+' "$log" | tail -n 1 |
    grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || true)
  verdict=$([ $status -eq 0 ] && echo clean || echo FINDING)
  summary+=("$(printf '%-20s %-8s %10s execs %7s/s  %s' "$harness" "$verdict" "${execs:-?}" \
    "${rate:-?}" "${coverage:-?}")")
  if [ $status -ne 0 ]; then
    failed+=("$harness")
    # The report: the sanitizer's or libFuzzer's error and the reproducer it saved.
    grep -m 1 -B 2 -A 30 -E '^==[0-9]+==|runtime error:|^ERROR: libFuzzer|terminate called' \
      "$log" || tail -n 40 "$log"
    grep -E 'Test unit written to' "$log" || true
  else
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || true
  fi
done

printf '\n==== fuzzing summary (%s s per harness; logs in %s/logs) ====\n' "$seconds" "$build"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: findings in ${failed[*]} (reproducers in $build/findings/; docs/fuzzing.md)"
  exit 1
fi
