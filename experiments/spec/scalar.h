#pragma once
// Strict conversions of YAML scalar text, and the suggestion every "unknown" message of the
// spec loader ends with (tensor/suggest.h's did-you-mean, or the list when nothing is close).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sp {

// "42", "-7", "+3" (no spaces, no "1e3", no "0x"); nullopt otherwise or on overflow.
std::optional<int64_t> parse_int_text(std::string_view s);
// Decimal or exponent notation ("0.3", "1e-5", "-.5", ".inf" and ".nan" excepted);
// nullopt for anything else, including trailing characters.
std::optional<double> parse_double_text(std::string_view s);
// true/false in YAML 1.2's spellings (true, True, TRUE, false, False, FALSE).
std::optional<bool> parse_bool_text(std::string_view s);

// "; did you mean 'x'?" when tensor/suggest.h's closest_match finds one, else
// "; expected one of: a, b, c".
std::string suggestion_suffix(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace sp
