// Evaluation speed on a real model: SmolLM2-135M (../shared/data, GGUF, Q4_1 and Q8_0 weights run
// in their blocks) scoring windows of 512 tokens of held-out text, each window one forward_batch
// (the prefill llama-perplexity runs), at 1 and 2 threads. Tokens per second are reported as the
// items_per_second counter; scripts/bench_eval_vs_llama_cpp.py runs this beside llama.cpp on the
// same tokens (docs/benchmarks.md).
//
// Usage: bench_eval [--tokens FILE] [Google Benchmark flags]
//   FILE: whitespace-separated token ids, cut to whole windows (without it: one window of a fixed
//   made-up sequence).
#include <benchmark/benchmark.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lowbit/model/load.hpp"
#include "lowbit/threads.hpp"

namespace {

constexpr int window = 512;

const std::filesystem::path model_path =
    std::filesystem::path(LOWBIT_DATA_DIR) / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf";
std::vector<int> tokens;  // a whole number of windows

lowbit::model::LlamaModel& model() {
  static lowbit::model::LlamaModel loaded = lowbit::model::load_llama(model_path);
  return loaded;
}

void BM_eval_smollm2(benchmark::State& state) {
  lowbit::set_threads(static_cast<int>(state.range(0)));
  lowbit::model::LlamaModel& m = model();
  const std::size_t windows = tokens.size() / window;
  std::size_t w = 0;
  for (auto _ : state) {
    const std::span<const int> batch = std::span<const int>(tokens).subspan(w * window, window);
    benchmark::DoNotOptimize(m.forward_batch(batch, 0).data());
    w = (w + 1) % windows;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * window);
  lowbit::set_threads(0);
}
BENCHMARK(BM_eval_smollm2)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  // --tokens FILE, before Google Benchmark sees the arguments.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) {
      std::ifstream in(argv[++i]);
      for (int token; in >> token;) tokens.push_back(token);
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (tokens.size() < window)
    for (int i = 0; i < window; ++i) tokens.push_back((i * 7919 + 11) % 49152);
  tokens.resize(tokens.size() / window * window);
  int rest_count = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_count, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
