// A Llama-family model from a GGUF file: the config from its metadata as llama.cpp reads it, and
// its tensors under lowbit's Llama names, the weights left in the ggml block format they were
// stored in.
//
// Architectures (general.architecture): "llama" (Llama 1-3, Mistral, SmolLM: rotary embedding on
// adjacent pairs, since llama.cpp's converter permutes Hugging Face's q and k rows), "qwen2" (q, k
// and v biases) and "qwen3" (per-head RMSNorm of q and k), both with rotary embedding on the two
// halves of a head (llama.cpp's NEOX style, Hugging Face's rotate-half), as llama.cpp runs them.
// Names map as llama.cpp's converter writes them: token_embd -> tok_embeddings,
// blk.N.attn_{q,k,v,output} -> layers.N.attention.w{q,k,v,o}, blk.N.ffn_{gate,down,up} ->
// layers.N.feed_forward.w{1,2,3}, attn_norm / ffn_norm / output_norm / output.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "lowbit/io/bpe_vocabulary.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/llama_config.hpp"
#include "lowbit/io/named_quantized.hpp"

namespace lowbit::io {

struct GgufLlama {
  LlamaConfig config;
  /// Float tensors: norms, biases, the token embedding (dequantized), and linear weights stored
  /// as F32 (or as a type lowbit has no block layout for: dequantized when lowbit decodes it).
  std::vector<NamedTensor> tensors;
  /// Linear weights stored in a ggml block layout (Q4_0, Q4_1, Q8_0, Q4_K, F16, BF16, ...), as
  /// stored. With a shared classifier, "output.weight" is the token embedding's blocks (what
  /// llama.cpp multiplies), the float embedding staying in `tensors` for the lookup.
  std::vector<NamedQuantized> block_weights;
};

/// The config general.architecture's keys describe (embedding_length, feed_forward_length,
/// block_count, attention.head_count(_kv), attention.key_length, attention.layer_norm_rms_epsilon,
/// rope.freq_base, context_length; the vocabulary from token_embd's rows). Throws io_error naming
/// the file and key for an architecture lowbit does not run, a missing or mistyped key, a value
/// llama_config_problem refuses, or a feature lowbit cannot honour (partial rotary dimensions,
/// rope scaling, value heads wider than key heads).
LlamaConfig read_gguf_llama_config(const GgufFile& file);

/// Every tensor of the file under lowbit's Llama name, in file order: (Llama name, GGUF name).
/// Throws io_error naming the file and tensor for a tensor lowbit's Llama model has no place for
/// (read_gguf_llama_config gives the block count the names are checked against).
std::vector<std::pair<std::string, std::string>> gguf_llama_names(const GgufFile& file,
                                                                  const LlamaConfig& config);

/// The config and every tensor; throws io_error naming the file and tensor for a missing,
/// misshapen, unexpected or undecodable tensor.
GgufLlama read_gguf_llama(const GgufFile& file);

/// The tokenizer.ggml.* keys as a BpeVocabulary (build a BpeTokenizer from it): model, pre,
/// tokens, merges, scores, token_type, the bos/eos/unknown/padding ids and the add_* flags.
/// Throws io_error naming the file and key for a missing tokens array or a key of the wrong type
/// (the tokenizer checks the arrays against each other when it is built).
BpeVocabulary read_gguf_vocabulary(const GgufFile& file);

}  // namespace lowbit::io
