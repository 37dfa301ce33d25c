// libFuzzer harness: the index of a sharded safetensors checkpoint (model.safetensors.index.json),
// whose "weight_map" names a shard for each tensor. The input is the index; it sits in a temporary
// directory beside two valid shards made at start-up, so that a map naming them reaches the
// shard and tensor checks (the shards' own parsing is fuzz_safetensors' job). lowbit::error is
// the expected answer to a bad index; anything else (another exception, a crash, a sanitizer
// report, a broken invariant) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using namespace lowbit::io;

// The shards' names and tensors; tests/fuzz/make_fuzz_seeds.cpp writes indexes for these.
constexpr const char* first_shard = "model-00001-of-00002.safetensors";
constexpr const char* second_shard = "model-00002-of-00002.safetensors";

void require(bool invariant) {
  if (!invariant) std::abort();
}

fs::path shard_dir;

void remove_shard_dir() {
  std::error_code ignored;
  fs::remove_all(shard_dir, ignored);
}

void write_shards() {
  // On tmpfs where there is one: the index is rewritten for every input.
  const fs::path base =
      fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  std::string dir = (base / "lowbit-fuzz-shards-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) std::abort();
  shard_dir = dir;
  std::atexit(remove_shard_dir);
  const std::vector<float> embedding{0.5f, -1.0f, 2.0f, 0.25f, 1.5f, -0.75f, 3.0f, 0.0f};
  const std::vector<std::uint16_t> wq_bf16{0x3f80, 0xbf80, 0x4000, 0x0000};  // 1, -1, 2, 0
  const std::vector<std::uint16_t> norm_f16{0x3c00, 0x3800};                 // 1, 0.5
  write_safetensors(shard_dir / first_shard,
                    {{"tok_embeddings.weight",
                      DType::F32,
                      {4, 2},
                      std::as_bytes(std::span<const float>(embedding))},
                     {"layers.0.attention.wq.weight",
                      DType::BF16,
                      {2, 2},
                      std::as_bytes(std::span<const std::uint16_t>(wq_bf16))}},
                    {{"format", "pt"}});
  write_safetensors(
      shard_dir / second_shard,
      {{"norm.weight", DType::F16, {2}, std::as_bytes(std::span<const std::uint16_t>(norm_f16))},
       {"empty", DType::F32, {0, 3}, {}}},
      {{"format", "pt"}});
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  write_shards();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path index_path = shard_dir / "model.safetensors.index.json";
  {
    std::ofstream out(index_path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) std::abort();
  }
  try {
    const ShardedSafetensors checkpoint(index_path);
    for (const std::string& name : checkpoint.names()) {
      require(checkpoint.contains(name));
      const TensorInfo& info = checkpoint.info(name);
      require(checkpoint.to_float(name).size() == info.element_count());
      require(checkpoint.shard_of(name).contains(name));
    }
    require(checkpoint.shards().size() <= checkpoint.names().size());
  } catch (const lowbit::error&) {
  }
  return 0;
}
