// A LlamaModel from a checkpoint file, whatever io/ reader the file needs.
#pragma once

#include <filesystem>

#include "lowbit/model/llama.hpp"

namespace lowbit::model {

/// Loads a Llama-family model from a .safetensors file written by lowbit (float tensors, plus
/// quantized ones, which go through LlamaModel::set_linear), a llama2.c .bin checkpoint, or a
/// Hugging Face checkpoint (a model directory, its model.safetensors.index.json, or its
/// model.safetensors with config.json beside it: io/hf_checkpoint.hpp), chosen by content
/// (detect_checkpoint_format). Throws io_error naming the file for a bad file, and the
/// tensor and position for a NaN or infinite weight (float, or quantized once dequantized).
LlamaModel load_llama(const std::filesystem::path& path);

}  // namespace lowbit::model
