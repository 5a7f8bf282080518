#pragma once
// Spelling suggestions for error messages about names: YAML keys, PEFT settings, task and
// method names.
//
//   SP_CHECK(known(key), "[spec] unknown key '", key, "'", did_you_mean(key, keys));
//   // -> [spec] unknown key 'lenght'; did you mean 'length'?
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sp {

// Levenshtein distance (insertions, deletions, substitutions; a swap of two neighbours
// counts as one edit), ASCII case-insensitive.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to name when it is close enough to be a likely typo (at most 1 edit
// for names up to 4 characters, 2 up to 8, else 3; ties go to the earlier candidate);
// empty otherwise.
std::string closest_match(std::string_view name, const std::vector<std::string>& candidates);

// "; did you mean 'x'?" for the closest match, or "" when nothing is close.
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

// s with ASCII letters lowercased: names matched case-insensitively (task names).
std::string ascii_lowercase(std::string s);

}  // namespace sp
