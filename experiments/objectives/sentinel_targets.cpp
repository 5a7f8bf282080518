#include "experiments/objectives/sentinel_targets.h"

namespace sp {

std::vector<int32_t> add_sentinel_to_beginning(std::span<const int32_t> targets,
                                               const SpecialTokens& vocab, int64_t offset) {
  std::vector<int32_t> out;
  out.reserve(targets.size() + 1);
  out.push_back(vocab.sentinel(offset));
  out.insert(out.end(), targets.begin(), targets.end());
  return out;
}

std::vector<int32_t> strip_leading_sentinel(std::span<const int32_t> prediction,
                                            const SpecialTokens& vocab, int64_t offset) {
  const int32_t sentinel = vocab.sentinel(offset);
  const size_t skip = !prediction.empty() && prediction.front() == sentinel ? 1 : 0;
  return {prediction.begin() + static_cast<std::ptrdiff_t>(skip), prediction.end()};
}

std::string remove_extra_id_0(std::string_view decoded) {
  constexpr std::string_view kExtraId0 = "<extra_id_0>";
  if (decoded.starts_with(kExtraId0)) decoded.remove_prefix(kExtraId0.size());
  // The ASCII characters Python's str.lstrip() treats as whitespace.
  constexpr std::string_view kWhitespace = " \t\n\r\f\v\x1c\x1d\x1e\x1f";
  const size_t first = decoded.find_first_not_of(kWhitespace);
  return std::string(first == std::string_view::npos ? std::string_view{} : decoded.substr(first));
}

}  // namespace sp
