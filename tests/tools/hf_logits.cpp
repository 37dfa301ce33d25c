// Runs a model through lowbit's loader and forward pass and writes its logits, for
// tests/python/check_hf_models.py to compare with a numpy implementation of transformers' modeling
// code.
//
// Usage: lowbit_hf_logits MODEL OUT.f32 TOKEN...
// MODEL is anything model::load_llama reads (here: a Hugging Face model directory). OUT.f32 gets
// the logits of each token fed at positions 0, 1, ..., as little-endian float32, [tokens, vocab].
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "lowbit/model/load.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: lowbit_hf_logits MODEL OUT.f32 TOKEN...\n");
    return 2;
  }
  try {
    lowbit::model::LlamaModel model = lowbit::model::load_llama(argv[1]);
    std::ofstream out(argv[2], std::ios::binary);
    for (int i = 3; i < argc; ++i) {
      const auto logits = model.forward(std::stoi(argv[i]), i - 3);
      out.write(reinterpret_cast<const char*>(logits.data()),
                static_cast<std::streamsize>(logits.size() * sizeof(float)));
    }
    return out ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit_hf_logits: %s\n", e.what());
    return 1;
  }
}
