// libFuzzer harness: a Hugging Face config.json (io::parse_hf_config), the text transformers'
// config classes read. lowbit::error is the expected answer to a bad config; anything else (another
// exception, a crash, a sanitizer report, a broken invariant) is a finding. An accepted config must
// describe a model the forward pass can build: llama_config_problem finds nothing, and the rotary
// frequencies it implies are finite and positive.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_input.hpp"
#include "lowbit/error.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/model/llama.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lowbit::fuzz::require;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const lowbit::io::HfConfig config = lowbit::io::parse_hf_config(text, "config.json");
    const lowbit::io::LlamaConfig& c = config.llama;
    require(lowbit::io::llama_config_problem(c).empty());
    require(c.rope_style == lowbit::io::RopeStyle::rotate_half);
    require(c.head_size() > 0 && c.head_size() % 2 == 0);
    require(c.q_dim() == c.n_heads * c.head_size() && c.n_heads % c.n_kv_heads == 0);
    require(!config.architecture.empty());
    for (const int id : config.bos_token_ids) require(id >= 0);
    for (const int id : config.eos_token_ids) require(id >= 0);
    for (const float f : lowbit::model::rope_inverse_frequencies(c))
      require(std::isfinite(f) && f > 0.0f);
  } catch (const lowbit::error&) {
  }
  return 0;
}
