// Reading a Hugging Face tokenizer.json (the `tokenizers` library's file) into a BpeTokenizer.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "lowbit/io/bpe_tokenizer.hpp"

namespace lowbit::io {

/// Reads a tokenizer.json with a BPE model. Supported: normalizers Prepend, Replace (string
/// patterns), Sequence; pre-tokenizers ByteLevel, Split (regex or string; every behaviour but
/// invert), Digits, Metaspace, Sequence; the BPE model with merges as "a b" strings or pairs,
/// byte_fallback, unk_token, fuse_unk, ignore_merges; added tokens (lstrip, rstrip, normalized);
/// post-processors TemplateProcessing, ByteLevel, Sequence; decoders ByteLevel, Metaspace,
/// Replace, ByteFallback, Fuse, Strip, Sequence. The file is untrusted: a malformed field (wrong
/// JSON type, a merge naming an unknown token, a huge, negative or repeated id, a repeated key)
/// is a lowbit::io_error naming the file and the field; a component lowbit does not implement
/// (another model, a Unicode normalizer) is lowbit::unsupported, naming it.
BpeTokenizer read_hf_tokenizer(const std::filesystem::path& path);

/// The same from the file's text; `source` names it in errors.
BpeTokenizer parse_hf_tokenizer(std::string_view json, const std::string& source);

}  // namespace lowbit::io
