#include "experiments/objectives/sentinel_targets.h"

#include "models/tokenizer/utf8.h"

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
  // Python's str.lstrip(): Unicode whitespace (NBSP, U+3000, ...), not only ASCII.
  return std::string(utf8::lstrip(decoded));
}

}  // namespace sp
