// utf8::first_invalid: well-formed UTF-8 as RFC 3629 (and JSON writers) define it.
#include "models/tokenizer/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace sp {
namespace {

constexpr size_t kNone = std::string_view::npos;

TEST(Utf8, WellFormedTextHasNoInvalidByte) {
  EXPECT_EQ(utf8::first_invalid(""), kNone);
  EXPECT_EQ(utf8::first_invalid("plain ascii\n"), kNone);
  EXPECT_EQ(utf8::first_invalid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), kNone);  // é € 😀
  EXPECT_EQ(utf8::first_invalid("\xED\x9F\xBF"), kNone);      // U+D7FF, below the surrogates
  EXPECT_EQ(utf8::first_invalid("\xF4\x8F\xBF\xBF"), kNone);  // U+10FFFF, the last code point
  EXPECT_EQ(utf8::first_invalid("\xEF\xBF\xBD"), kNone);      // U+FFFD itself
}

TEST(Utf8, TheFirstMalformedByteIsFound) {
  EXPECT_EQ(utf8::first_invalid("ab\xFF"), 2u);                  // never a UTF-8 byte
  EXPECT_EQ(utf8::first_invalid("a\x80"), 1u);                   // a lone continuation
  EXPECT_EQ(utf8::first_invalid("ab\xC3"), 2u);                  // cut short
  EXPECT_EQ(utf8::first_invalid("\xE2\x82"), 0u);                // cut short
  EXPECT_EQ(utf8::first_invalid("\xC3(x"), 0u);                  // not a continuation
  EXPECT_EQ(utf8::first_invalid("\xE2\x82\x28"), 0u);            // third byte
  EXPECT_EQ(utf8::first_invalid("\xC0\xAF"), 0u);                // overlong '/'
  EXPECT_EQ(utf8::first_invalid("\xE0\x80\xAF"), 0u);            // overlong
  EXPECT_EQ(utf8::first_invalid("\xF0\x80\x80\xAF"), 0u);        // overlong
  EXPECT_EQ(utf8::first_invalid("x\xED\xA0\x80"), 1u);           // a surrogate, U+D800
  EXPECT_EQ(utf8::first_invalid("\xF4\x90\x80\x80"), 0u);        // U+110000
  EXPECT_EQ(utf8::first_invalid("\xF5\x80\x80\x80"), 0u);        // past the range
  EXPECT_EQ(utf8::first_invalid("ok \xC3\xA9 then \xFE"), 11u);  // after valid multi-byte text
}

}  // namespace
}  // namespace sp
