// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header mapping tensor names to
// {dtype, shape, data_offsets}, then the raw little-endian tensor bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::io {

/// The element types safetensors names in its header.
enum class DType {
  F64,
  F32,
  F16,
  BF16,
  F8_E4M3,
  F8_E5M2,
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  BOOL
};

/// The header's spelling of a dtype ("F32", "BF16", ...).
std::string_view dtype_name(DType dtype) noexcept;
/// Bytes per element.
std::size_t dtype_size(DType dtype) noexcept;
/// The dtype a header string names, or nullopt for a string safetensors does not define.
std::optional<DType> dtype_from_name(std::string_view name) noexcept;

/// One tensor of an open file. `data` points into the file's mapping.
struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<std::size_t> shape;
  std::span<const std::byte> data;

  std::size_t element_count() const noexcept;
};

/// The size of the regular file at `path`. Throws lowbit::io_error naming it when it cannot be
/// opened or is not a regular file ("not a regular file (a FIFO)"): a directory, FIFO or device
/// would block, fail late or never end as a checkpoint.
std::uint64_t regular_file_size(const std::filesystem::path& path);

/// A safetensors file, memory-mapped read-only and validated on open; throws lowbit::io_error
/// naming the file (and the tensor) for anything malformed. As the reference implementation
/// requires, the data section must be indexed entirely: tensors contiguous from byte 0, the last
/// ending at the end of the file; a gap, overlap or trailing bytes are a "hole"/"overlap" error.
/// Also refused: a file that is not a regular file, a key repeated in one JSON object (a tensor
/// name twice), a shape whose byte size overflows.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  /// Tensor names in the order their data appears in the file.
  std::vector<std::string> names() const;
  std::size_t size() const noexcept { return tensors_.size(); }
  bool contains(std::string_view name) const;
  /// Throws io_error naming the tensor when there is no such tensor.
  const TensorInfo& info(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  /// The tensor's elements converted to float (wide integers and F64 round to nearest float).
  std::vector<float> to_float(std::string_view name) const;

 private:
  void unmap() noexcept;

  std::filesystem::path path_;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::vector<TensorInfo> tensors_;  // sorted by data offset
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

/// One tensor to write; `data` holds its little-endian bytes.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<std::size_t> shape;
  std::span<const std::byte> data;
};

/// The name, dtype and shape of one tensor a SafetensorsWriter will write.
struct TensorLayout {
  std::string name;
  DType dtype;
  std::vector<std::size_t> shape;
};

/// Streams a safetensors file: the layout (and metadata) is declared up front, so the header can be
/// written first; then each tensor's bytes in declared order. Writes to a temporary file
/// `<path>.tmp.XXXXXX` in the same directory; finish() fsyncs and renames into place; destroying
/// an unfinished writer removes the temporary, so no partial output ever appears under `path`.
/// Memory stays O(one tensor). The header has the same layout write_safetensors documents. Throws
/// io_error naming the file (and tensor) for a bad layout (empty, duplicate or reserved name, size
/// overflow) or an I/O error.
///
/// The output gets the permissions a plain create would: an existing destination's mode is kept,
/// a new file gets 0666 less the umask. While a writer is live, SIGINT and SIGTERM remove its
/// temporary: when a writer is created and a signal's action is still the default (the process
/// would die), a handler is installed that unlinks the live temporaries and re-raises the signal
/// with the default action. Where a program ignores or handles the signal itself, nothing is
/// installed: it keeps control, and the destructor removes the temporary when it unwinds.
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::filesystem::path path, std::vector<TensorLayout> layout,
                    std::map<std::string, std::string> metadata);
  SafetensorsWriter(SafetensorsWriter&& other) noexcept;
  SafetensorsWriter& operator=(SafetensorsWriter&&) = delete;
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  /// Removes the temporary file unless finish() succeeded.
  ~SafetensorsWriter();

  /// Writes the next declared tensor. io_error if `name` is not the next one in the layout, if
  /// `data` is not exactly the size its dtype and shape need, or after finish().
  void write(std::string_view name, std::span<const std::byte> data);
  /// fsyncs and renames the temporary into place. io_error if tensors are missing.
  void finish();

  const std::filesystem::path& path() const noexcept { return path_; }
  const std::vector<TensorLayout>& layout() const noexcept { return layout_; }
  /// How many tensors have been written so far.
  std::size_t written() const noexcept { return next_; }

 private:
  void abandon() noexcept;

  std::filesystem::path path_;
  std::string temp_path_;
  std::vector<TensorLayout> layout_;
  std::vector<std::size_t> sizes_;  // bytes of each layout entry
  std::size_t next_ = 0;
  int fd_ = -1;
  int signal_slot_ = -1;  // its place in the registry of temporaries removed on a signal
  bool finished_ = false;
};

/// Writes `tensors` (data contiguous, in the given order) to `path` atomically: a temporary in the
/// same directory is written, fsynced and renamed into place; on failure nothing is left behind.
/// The header lists "__metadata__" first (only when `metadata` is non-empty), then the tensors in
/// the given order, padded with spaces to a multiple of 8 bytes. The Python package orders tensors
/// by dtype size (largest first), then by name; pass them in that order for identical bytes.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// Sorts `tensors` into the order the reference (Rust/Python) writer uses: by its dtype ranking,
/// descending (U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, F8_E4M3, F8_E5M2, I8, U8, BOOL),
/// then by name. Writing in this order with at most one metadata key gives the package's bytes.
void order_like_reference(std::vector<TensorToWrite>& tensors);

/// A checkpoint split over several files, opened from its `model.safetensors.index.json`, whose
/// "weight_map" maps each tensor name to a shard file relative to the index's directory.
class ShardedSafetensors {
 public:
  explicit ShardedSafetensors(const std::filesystem::path& index_path);

  const std::filesystem::path& index_path() const noexcept { return index_path_; }
  /// Every tensor name, sorted.
  std::vector<std::string> names() const;
  bool contains(std::string_view name) const;
  /// The shard holding `name`; throws io_error naming the index and tensor when there is none.
  const SafetensorsFile& shard_of(std::string_view name) const;
  const TensorInfo& info(std::string_view name) const { return shard_of(name).info(name); }
  std::vector<float> to_float(std::string_view name) const { return shard_of(name).to_float(name); }
  const std::vector<SafetensorsFile>& shards() const noexcept { return shards_; }

 private:
  std::filesystem::path index_path_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, std::size_t, std::less<>> shard_index_;  // tensor name -> shards_ index
};

}  // namespace lowbit::io
