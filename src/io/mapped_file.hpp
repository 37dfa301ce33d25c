// A regular file mapped read-only into memory: what the checkpoint readers parse in place. Opening
// refuses anything but a regular file (a FIFO or device would block or never end) with an io_error
// naming the file; the mapping lives as long as the object.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>

namespace lowbit::detail {

/// "not a regular file (a FIFO)": the reason given for a file of mode `mode` that is not a regular
/// file (a directory, FIFO or device would block, fail late or never end as a checkpoint).
std::string not_regular_file(unsigned mode);

class MappedFile {
 public:
  MappedFile() = default;
  /// Maps `path`; throws io_error naming it ("cannot open: ...", "not a regular file (a FIFO)").
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const noexcept {
    return {static_cast<const std::byte*>(map_), size_};
  }
  std::size_t size() const noexcept { return size_; }

 private:
  void unmap() noexcept;

  void* map_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace lowbit::detail
