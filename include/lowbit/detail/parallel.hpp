// When lowbit's row loops use OpenMP threads.
#pragma once

#include <cstddef>

namespace lowbit::detail {

/// Below this many elements a parallel region costs more than it saves; on a busy machine
/// OpenMP's spin-waiting threads make small regions far slower than a serial loop.
inline constexpr std::size_t parallel_min_elements = std::size_t{1} << 16;

constexpr bool worth_threads(std::size_t elements) noexcept {
  return elements >= parallel_min_elements;
}

}  // namespace lowbit::detail
