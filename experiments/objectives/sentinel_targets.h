#pragma once
// The "span corruption + sentinel" variant (Lester et al. 2021, section 3.2): a
// span-corruption checkpoint is tuned with <extra_id_0> in front of every downstream
// target, so the decoder starts the way it did in pretraining; the sentinel is stripped
// from predictions before scoring. As google-research/prompt-tuning's
// add_sentinel_to_beginning (a token preprocessor, before EOS is appended) and
// remove_extra_id_0 (a text postprocessor).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "experiments/objectives/special_tokens.h"

namespace sp {

// targets: [n] -> [<extra_id_offset>, targets...]: [n + 1].
std::vector<int32_t> add_sentinel_to_beginning(std::span<const int32_t> targets,
                                               const SpecialTokens& vocab = {}, int64_t offset = 0);

// prediction: [n] -> the same ids without one leading <extra_id_offset>, if present;
// anything else is returned unchanged (a model may not emit the sentinel).
std::vector<int32_t> strip_leading_sentinel(std::span<const int32_t> prediction,
                                            const SpecialTokens& vocab = {}, int64_t offset = 0);

// Decoded text: drops a leading "<extra_id_0>" and then all leading whitespace (Unicode,
// as Python's str.isspace), like prompt-tuning's remove_extra_id_0 (whose lstrip also
// trims text without the sentinel).
std::string remove_extra_id_0(std::string_view decoded);

}  // namespace sp
