#pragma once
// Whitespace on UTF-8 text as Python's str.isspace() sees it: transformers strips and tests
// text with Python's rules, and the tokenizer must make the same cuts.
#include <cstdint>
#include <string_view>

namespace sp::utf8 {

// The code point at s[pos] and its length in bytes (1 for a malformed byte, as U+FFFD).
inline char32_t decode(std::string_view s, size_t pos, size_t* len) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  size_t n = b0 < 0x80           ? 1
             : (b0 >> 5) == 0x6  ? 2
             : (b0 >> 4) == 0xE  ? 3
             : (b0 >> 3) == 0x1E ? 4
                                 : 0;
  if (n == 0 || pos + n > s.size()) {
    *len = 1;
    return 0xFFFD;
  }
  char32_t cp = n == 1 ? b0 : (b0 & (0x7F >> n));
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b >> 6) != 0x2) {
      *len = 1;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *len = n;
  return cp;
}

// Python's str.isspace().
inline bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

inline std::string_view lstrip(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len = 0;
    if (!is_space(decode(s, pos, &len))) break;
    pos += len;
  }
  return s.substr(pos);
}

inline std::string_view rstrip(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t begin = end - 1;  // back to the lead byte of the last code point
    while (begin > 0 && end - begin < 4 && (static_cast<unsigned char>(s[begin]) >> 6) == 0x2)
      --begin;
    size_t len = 0;
    const char32_t c = decode(s, begin, &len);
    if (begin + len != end || !is_space(c)) break;
    end = begin;
  }
  return s.substr(0, end);
}

inline std::string_view strip(std::string_view s) { return rstrip(lstrip(s)); }

// The offset of the first byte that is not well-formed UTF-8 (RFC 3629: no overlong forms,
// surrogates or code points past U+10FFFF, as JSON writers check), or npos when all is.
inline size_t first_invalid(std::string_view s) {
  auto byte = [&s](size_t i) { return static_cast<unsigned char>(s[i]); };
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      n = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      n = 3;
      if (b0 == 0xE0) lo = 0xA0;  // overlong
      if (b0 == 0xED) hi = 0x9F;  // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      n = 4;
      if (b0 == 0xF0) lo = 0x90;  // overlong
      if (b0 == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return i;
    }
    if (i + n > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return i;
    for (size_t k = 2; k < n; ++k)
      if ((byte(i + k) & 0xC0) != 0x80) return i;
    i += n;
  }
  return std::string_view::npos;
}

}  // namespace sp::utf8
