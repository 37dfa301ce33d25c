// Runs a model through lowbit's loader and forward pass and writes its logits, for the Python
// checks against other implementations (check_hf_models.py: numpy versions of transformers'
// modeling code; check_llama_cpp.py: llama.cpp itself).
//
// Usage: lowbit_model_logits MODEL OUT.f32 [--batch N] [--threads N] [--ggml-activations]
//                            (--tokens FILE | TOKEN...)
// MODEL is anything model::load_llama reads. The tokens are fed at positions 0, 1, ... token by
// token (forward), or N at a time (forward_batch) with --batch; FILE holds them as whitespace-
// separated ids. --ggml-activations rounds the inputs of ggml-block layers as llama.cpp does
// (LlamaModel::set_ggml_activation_rounding). OUT.f32 gets the logits of every position,
// little-endian float32, [tokens, vocab].
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "lowbit/model/load.hpp"
#include "lowbit/threads.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: lowbit_model_logits MODEL OUT.f32 [--batch N] [--threads N] "
                 "[--ggml-activations] (--tokens FILE | TOKEN...)\n");
    return 2;
  }
  try {
    std::size_t batch = 0;
    bool ggml_activations = false;
    std::vector<int> tokens;
    for (int i = 3; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--ggml-activations") {
        ggml_activations = true;
      } else if ((arg == "--batch" || arg == "--threads" || arg == "--tokens") && i + 1 < argc) {
        const std::string value = argv[++i];
        if (arg == "--batch") batch = std::stoul(value);
        if (arg == "--threads") lowbit::set_threads(std::stoi(value));
        if (arg == "--tokens") {
          std::ifstream in(value);
          for (int token; in >> token;) tokens.push_back(token);
        }
      } else {
        tokens.push_back(std::stoi(arg));
      }
    }
    lowbit::model::LlamaModel model = lowbit::model::load_llama(argv[1]);
    model.set_ggml_activation_rounding(ggml_activations);
    std::ofstream out(argv[2], std::ios::binary);
    auto write = [&](std::span<const float> logits) {
      out.write(reinterpret_cast<const char*>(logits.data()),
                static_cast<std::streamsize>(logits.size() * sizeof(float)));
    };
    const std::span<const int> all(tokens);
    if (batch == 0) {
      for (std::size_t i = 0; i < all.size(); ++i)
        write(model.forward(all[i], static_cast<int>(i)));
    } else {
      for (std::size_t i = 0; i < all.size(); i += batch)
        write(model.forward_batch(all.subspan(i, std::min(batch, all.size() - i)),
                                  static_cast<int>(i)));
    }
    return out ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit_model_logits: %s\n", e.what());
    return 1;
  }
}
