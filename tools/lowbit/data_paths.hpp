// Where the bundled real data lives: $LOWBIT_DATA, else ../shared/data from the current directory
// (the repository root, as the README runs it), else the copy beside the source tree this program
// was built from.
#pragma once

#include <cstdlib>
#include <filesystem>

#ifndef LOWBIT_SOURCE_DATA_DIR
#define LOWBIT_SOURCE_DATA_DIR "../shared/data"
#endif

namespace lowbit::cli {

inline std::filesystem::path data_dir() {
  if (const char* dir = std::getenv("LOWBIT_DATA"); dir != nullptr && *dir != '\0') return dir;
  const std::filesystem::path relative = "../shared/data";
  if (std::filesystem::exists(relative / "README.md")) return relative;
  return LOWBIT_SOURCE_DATA_DIR;
}

inline std::filesystem::path default_model() {
  return data_dir() / "stories260K" / "stories260K.bin";
}
inline std::filesystem::path default_tokenizer() {
  return data_dir() / "stories260K" / "tok512.bin";
}
inline std::filesystem::path default_text() {
  return data_dir() / "text" / "pride-and-prejudice.txt";
}

}  // namespace lowbit::cli
