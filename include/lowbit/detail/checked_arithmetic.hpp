// Checked arithmetic on sizes: every size derived from a number read from a file (a shape, a
// group size, an offset) is computed through these, so that a hostile value gives an error
// naming the file and tensor instead of a wrapped product that under-allocates. Hot loops keep
// their plain arithmetic: the sizes they use were checked once, where they entered.
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string>

#include "lowbit/error.hpp"

namespace lowbit::detail {

/// The most bytes one object may take: what std::vector and pointer differences can index. A size
/// past this cannot be allocated, so it is refused with the other overflows.
inline constexpr std::size_t max_object_bytes =
    static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());

/// a * b, or nullopt when it overflows std::size_t.
constexpr std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) noexcept {
  if (b != 0 && a > std::numeric_limits<std::size_t>::max() / b) return std::nullopt;
  return a * b;
}

/// a + b, or nullopt when it overflows std::size_t.
constexpr std::optional<std::size_t> checked_add(std::size_t a, std::size_t b) noexcept {
  if (a > std::numeric_limits<std::size_t>::max() - b) return std::nullopt;
  return a + b;
}

/// ceil(a / b) for b > 0, without the overflow of (a + b - 1) / b for a large a or b.
constexpr std::size_t ceil_div(std::size_t a, std::size_t b) noexcept {
  return a / b + (a % b != 0 ? 1 : 0);
}

/// A size computed step by step that remembers whether any step overflowed: the one way lowbit
/// derives a size from untrusted numbers. Ends in value() (throws) or get() (nullopt).
///
///   const std::size_t bytes = (CheckedSize(rows) * cols * 4).value("the codes", context);
///   // throws invalid_argument "the size of the codes overflows the address space"
class CheckedSize {
 public:
  constexpr CheckedSize(std::size_t value) noexcept : value_(value) {}  // NOLINT: implicit

  /// Whether every step so far stayed in range.
  constexpr bool valid() const noexcept { return valid_; }
  constexpr std::optional<std::size_t> get() const noexcept {
    return valid_ ? std::optional<std::size_t>(value_) : std::nullopt;
  }
  /// The size, or io_error / invalid_argument (Error) saying that the size of `what` overflows,
  /// with `context`.
  template <class Error = invalid_argument>
  std::size_t value(const std::string& what, const ErrorContext& context = {}) const {
    if (!valid_) throw Error("the size of " + what + " overflows the address space", context);
    return value_;
  }

  friend constexpr CheckedSize operator*(CheckedSize a, CheckedSize b) noexcept {
    const auto product = checked_mul(a.value_, b.value_);
    return combine(a, b, product);
  }
  friend constexpr CheckedSize operator+(CheckedSize a, CheckedSize b) noexcept {
    const auto sum = checked_add(a.value_, b.value_);
    return combine(a, b, sum);
  }
  /// ceil(a / divisor); a zero divisor makes the result invalid.
  friend constexpr CheckedSize ceil_div(CheckedSize a, std::size_t divisor) noexcept {
    if (divisor == 0) return invalid();
    CheckedSize result(ceil_div(a.value_, divisor));
    result.valid_ = a.valid_;
    return result;
  }
  /// The result is invalid unless it is at most `limit` (e.g. max_object_bytes).
  constexpr CheckedSize at_most(std::size_t limit) const noexcept {
    CheckedSize result = *this;
    if (value_ > limit) result.valid_ = false;
    return result;
  }

  static constexpr CheckedSize invalid() noexcept {
    CheckedSize result(0);
    result.valid_ = false;
    return result;
  }

 private:
  static constexpr CheckedSize combine(CheckedSize a, CheckedSize b,
                                       std::optional<std::size_t> value) noexcept {
    if (!a.valid_ || !b.valid_ || !value) return invalid();
    return CheckedSize(*value);
  }

  std::size_t value_ = 0;
  bool valid_ = true;
};

/// initial times the product of `factors` (a shape's element count times an element size).
/// Invalid when the product of the non-zero factors overflows, even if another factor is zero: a
/// shape such as [2^63, 2^63, 0] is refused, so that no partial product of it can wrap later.
constexpr CheckedSize checked_product(std::span<const std::size_t> factors,
                                      std::size_t initial = 1) noexcept {
  CheckedSize product(initial);
  bool zero = false;
  for (std::size_t factor : factors) {
    if (factor == 0)
      zero = true;
    else
      product = product * factor;
  }
  return zero && product.valid() ? CheckedSize(0) : product;
}

/// Bytes of `count` elements of `element_bytes` each, refused past max_object_bytes: the size of
/// something about to be allocated.
constexpr CheckedSize checked_bytes(CheckedSize count, std::size_t element_bytes) noexcept {
  return (count * element_bytes).at_most(max_object_bytes);
}

}  // namespace lowbit::detail
