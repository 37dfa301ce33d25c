// What every file-reading harness of tests/fuzz shares: the fuzz input as a file the readers can
// open, and the check that turns a broken invariant into a finding.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace lowbit::fuzz {

// The readers take a path: the input goes into an anonymous in-memory file, reached through
// /proc/self/fd, so that nothing touches the disk or outlives the process.
class InputFile {
 public:
  InputFile() : fd_(::memfd_create("fuzz-input", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::filesystem::path& write(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    for (std::size_t done = 0; done < size;) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::filesystem::path path_;
};

/// A broken invariant is a finding: abort, so that libFuzzer records the input.
inline void require(bool invariant) {
  if (!invariant) std::abort();
}

}  // namespace lowbit::fuzz
