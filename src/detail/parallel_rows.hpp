// A row loop on OpenMP threads that lets its body throw: an exception must not leave an OpenMP
// region (it would call std::terminate), so the first one is kept and rethrown after the loop.
// Private to the compiled library (OpenMP pragmas stay out of public headers).
#pragma once

#include <cstddef>
#include <exception>

namespace lowbit::detail {

/// Runs body(row, scratch) for row = 0 .. rows - 1, each thread with its own make_scratch(), on
/// OpenMP threads when `threaded`. Rows after a failure may still run; the first exception thrown
/// (in any row) is rethrown here.
template <class MakeScratch, class Body>
void for_each_row(std::size_t rows, bool threaded, MakeScratch&& make_scratch, Body&& body) {
  std::exception_ptr failure;
  const auto count = static_cast<std::ptrdiff_t>(rows);
#pragma omp parallel if (threaded)
  {
    auto scratch = make_scratch();
#pragma omp for schedule(static)
    for (std::ptrdiff_t r = 0; r < count; ++r) {
      try {
        body(static_cast<std::size_t>(r), scratch);
      } catch (...) {
#pragma omp critical(lowbit_for_each_row_failure)
        if (!failure) failure = std::current_exception();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace lowbit::detail
