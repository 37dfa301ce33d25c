// Lookups in the constexpr traits tables that describe lowbit's enumerations (ggml's type_traits
// habit): one row per value, with a `value` and a stable `name` field, and whatever else the
// enumeration needs. to_string, parsing and the per-value properties read the row; no switch over
// the enumeration is written twice.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace lowbit::detail {

/// The row of `value`, or nullptr when the table has none (a value cast from a bad integer).
template <class Row, std::size_t N, class Enum>
constexpr const Row* row_of(const Row (&table)[N], Enum value) noexcept {
  for (const Row& row : table)
    if (row.value == value) return &row;
  return nullptr;
}

/// The row whose name is `name`, or nullptr.
template <class Row, std::size_t N>
constexpr const Row* row_named(const Row (&table)[N], std::string_view name) noexcept {
  for (const Row& row : table)
    if (name == row.name) return &row;
  return nullptr;
}

// The lookups below that constant expressions use (static_assert on a table) return fields, not
// row pointers: GCC rejects comparing a pointer into a constexpr table with null in a constant
// expression when built with -fsanitize=undefined.

/// Field `field` of `value`'s row, or `fallback` for a value outside the table.
template <class Row, std::size_t N, class Enum, class Field>
constexpr Field field_of(const Row (&table)[N], Enum value, Field Row::*field,
                         Field fallback) noexcept {
  for (const Row& row : table)
    if (row.value == value) return row.*field;
  return fallback;
}

/// The name of `value`'s row, or "?" (what to_string returns for a value outside the table).
template <class Row, std::size_t N, class Enum>
constexpr const char* name_of(const Row (&table)[N], Enum value) noexcept {
  return field_of(table, value, &Row::name, static_cast<const char*>("?"));
}

/// The value of the row named `name`, or nullopt (what the parse_* functions return).
template <class Row, std::size_t N>
constexpr auto value_named(const Row (&table)[N], std::string_view name) noexcept
    -> std::optional<decltype(Row::value)> {
  for (const Row& row : table)
    if (name == row.name) return row.value;
  return std::nullopt;
}

/// The names of a table's rows joined by ", " (for the messages that list what is accepted).
template <class Row, std::size_t N>
std::string names_of(const Row (&table)[N]) {
  std::string text;
  for (const Row& row : table) {
    if (!text.empty()) text += ", ";
    text += row.name;
  }
  return text;
}

}  // namespace lowbit::detail
