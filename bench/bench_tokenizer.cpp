// Tokenizer::encode on text without spaces (one chunk as tokenize_corpus cuts text, so the whole
// text is one encode call), next to the same prose with its spaces cut into chunks by
// tokenize_corpus, the ordinary case. Text: Pride and Prejudice; vocabulary: stories260K's tok512.
// The argument is the text's length in bytes.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "lowbit/io/bpe_tokenizer.hpp"
#include "lowbit/io/hf_tokenizer.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/model/eval.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace {

const std::filesystem::path data_dir = LOWBIT_DATA_DIR;

const lowbit::io::Tokenizer& tok512() {
  static const auto tokenizer =
      lowbit::io::read_llama2c_tokenizer(data_dir / "stories260K" / "tok512.bin", 512);
  return tokenizer;
}

const std::string& prose() {
  static const std::string text = [] {
    std::ifstream in(data_dir / "text" / "pride-and-prejudice.txt", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }();
  return text;
}

std::string prose_without_spaces(std::size_t bytes) {
  std::string text;
  std::copy_if(prose().begin(), prose().end(), std::back_inserter(text),
               [](char c) { return c != ' '; });
  text.resize(std::min(bytes, text.size()));
  return text;
}

void BM_encode_without_spaces(benchmark::State& state) {
  const std::string text = prose_without_spaces(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(tok512().encode(text, false, false).data());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(text.size()));
}

// The baseline: prose of the same length with its spaces, cut at them by tokenize_corpus.
void BM_tokenize_corpus_prose(benchmark::State& state) {
  const std::string text = prose().substr(0, static_cast<std::size_t>(state.range(0)));
  for (auto _ : state)
    benchmark::DoNotOptimize(lowbit::model::tokenize_corpus(tok512(), text).data());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(text.size()));
}

// BpeTokenizer (SmolLM2's tokenizer.json, byte-level BPE) on the prose, and on the prose without
// its spaces (at most 560 kB: the whole book) (one pre-token: the merge heap's worst case).
const lowbit::io::BpeTokenizer& smollm2() {
  static const auto tokenizer =
      lowbit::io::read_hf_tokenizer(data_dir / "smollm2-135m" / "hf-tokenizer" / "tokenizer.json");
  return tokenizer;
}

void BM_bpe_encode_prose(benchmark::State& state) {
  const std::string text = prose().substr(0, static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(smollm2().encode(text).data());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(text.size()));
}

void BM_bpe_encode_without_spaces(benchmark::State& state) {
  const std::string text = prose_without_spaces(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(smollm2().encode(text).data());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(text.size()));
}

}  // namespace

BENCHMARK(BM_bpe_encode_prose)->Arg(65536)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bpe_encode_without_spaces)->Arg(65536)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_encode_without_spaces)->Arg(4096)->Arg(65536)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tokenize_corpus_prose)->Arg(4096)->Arg(65536)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
