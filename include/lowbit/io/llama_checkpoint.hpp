// Llama checkpoints in lowbit's safetensors layout: float tensors under their Llama names,
// quantized ones as quantized_safetensors stores them, and the model config in the metadata.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "lowbit/io/llama_config.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit::io {

/// The metadata key holding the model config.
inline constexpr std::string_view llama_config_metadata_key = "lowbit.llama.config";

/// Model config stored in safetensors metadata as "lowbit.llama.config" (JSON with every
/// LlamaConfig field: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
/// norm_eps, rope_theta, shared_classifier, and the Llama family's head_dim, rope_style
/// ("adjacent" or "rotate_half"), qkv_bias, output_bias, qk_norm, sliding_window and rope_scaling
/// (null, or {"type": "llama3", factor, low_freq_factor, high_freq_factor,
/// original_max_position_embeddings}); a file without the family's fields reads as llama2.c's
/// layout: adjacent pairs, no biases, no q/k norm, head_dim dim / n_heads).
void add_llama_config(std::map<std::string, std::string>& metadata, const LlamaConfig& config);

/// The config a file's metadata holds; io_error naming the file when absent or malformed, or when
/// llama_config_problem finds a value out of bounds (seq_len above 2^21, n_heads 0, rope_theta
/// not finite, ...).
LlamaConfig read_llama_config(const SafetensorsFile& file);

/// llama2.c checkpoint -> safetensors (F32, the same Llama tensor names read_llama2c gives, config
/// in metadata), written through SafetensorsWriter one tensor at a time.
void convert_llama2c_to_safetensors(const std::filesystem::path& in,
                                    const std::filesystem::path& out);

/// Tells what a file is, for `lowbit inspect` and model::load_llama: "gguf" (GGUF's magic number,
/// or any file named .gguf), "huggingface" (a model
/// directory with config.json, a *.safetensors.index.json, or a .safetensors file with config.json
/// beside it and no lowbit config in its metadata: io/hf_checkpoint.hpp), "safetensors" (an 8-byte
/// little-endian header length that fits the file, followed by '{'; or any file named
/// .safetensors, so that opening it reports what is wrong with it as safetensors), "llama2c" (a
/// plausible llama2.c header whose sizes match the file's length), or throws io_error naming the
/// file: "not a regular file" for a FIFO, device or a directory without config.json, else
/// "neither a safetensors file nor a llama2.c checkpoint" with what is wrong with it as each.
std::string detect_checkpoint_format(const std::filesystem::path& path);

}  // namespace lowbit::io
