// UTF-8 as the tokenizers need it: validation with Unicode's "maximal subpart" rule (the one
// Python's decode(errors="replace"), Rust's from_utf8_lossy and WHATWG use), and stepping through
// code points. Private to the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit::io::utf8 {

/// The length of the well-formed sequence at text[at] (Unicode's Table 3-7), or 0 when it is
/// ill-formed; then `*subpart` (when given) is the length of its maximal subpart (at least 1):
/// the bytes one U+FFFD replaces.
inline std::size_t well_formed_length(std::string_view text, std::size_t at,
                                      std::size_t* subpart = nullptr) {
  const auto lead = static_cast<unsigned char>(text[at]);
  if (lead < 0x80) return 1;
  std::size_t continuation = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuation = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    continuation = 2;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    continuation = 3;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;  // nothing past U+10FFFF
  } else {
    if (subpart) *subpart = 1;
    return 0;
  }
  for (std::size_t n = 1; n <= continuation; ++n) {
    const bool in_range = at + n < text.size() && [&] {
      const auto byte = static_cast<unsigned char>(text[at + n]);
      return n == 1 ? byte >= low && byte <= high : byte >= 0x80 && byte <= 0xBF;
    }();
    if (!in_range) {
      if (subpart) *subpart = n;
      return 0;
    }
  }
  return continuation + 1;
}

inline bool is_valid(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length = well_formed_length(text, at);
    if (length == 0) return false;
    at += length;
  }
  return true;
}

/// `text` with each maximal subpart of an ill-formed sequence replaced by U+FFFD.
inline std::string replace_invalid(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (std::size_t at = 0; at < text.size();) {
    std::size_t subpart = 0;
    const std::size_t length = well_formed_length(text, at, &subpart);
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      at += subpart;
      continue;
    }
    out.append(text, at, length);
    at += length;
  }
  return out;
}

/// The bytes of the code point at text[at]: its sequence's length, or 1 for an ill-formed byte.
inline std::size_t sequence_length(std::string_view text, std::size_t at) {
  const std::size_t length = well_formed_length(text, at);
  return length == 0 ? 1 : length;
}

/// The code point at text[at]; an ill-formed byte reads as U+FFFD.
inline std::uint32_t decode_at(std::string_view text, std::size_t at) {
  const std::size_t length = well_formed_length(text, at);
  const auto byte = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(text[at + i]));
  };
  switch (length) {
    case 1:
      return byte(0);
    case 2:
      return (byte(0) & 0x1F) << 6 | (byte(1) & 0x3F);
    case 3:
      return (byte(0) & 0x0F) << 12 | (byte(1) & 0x3F) << 6 | (byte(2) & 0x3F);
    case 4:
      return (byte(0) & 0x07) << 18 | (byte(1) & 0x3F) << 12 | (byte(2) & 0x3F) << 6 |
             (byte(3) & 0x3F);
    default:
      return 0xFFFD;
  }
}

/// The start of the code point that ends just before text[at] (at > 0), in valid UTF-8.
inline std::size_t previous_start(std::string_view text, std::size_t at) {
  std::size_t start = at - 1;
  while (start > 0 && at - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
    --start;
  return start;
}

/// The UTF-8 bytes of code point `c` (at most U+10FFFF).
inline std::string encode(std::uint32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | c >> 6);
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | c >> 12);
    out += static_cast<char>(0x80 | (c >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | c >> 18);
    out += static_cast<char>(0x80 | (c >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (c >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

}  // namespace lowbit::io::utf8
