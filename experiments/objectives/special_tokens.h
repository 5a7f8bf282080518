#pragma once
// The token ids the objectives insert: EOS and T5's sentinels.
//
// T5's vocabulary puts 100 sentinels right after the SentencePiece pieces, numbered
// backwards: <extra_id_N> = spm_size + num_sentinels - 1 - N (32099 for N = 0 and
// 32000 for N = 99 with the 32000-piece model), pad = 0, eos = 1.
#include <cstdint>

namespace sp {

struct SpecialTokens {
  int32_t pad_id = 0;
  int32_t eos_id = 1;
  int32_t spm_size = 32000;
  int32_t num_sentinels = 100;

  // The id of <extra_id_n>; throws unless 0 <= n < num_sentinels.
  int32_t sentinel(int64_t n) const;
  bool is_sentinel(int32_t id) const { return id >= spm_size && id < spm_size + num_sentinels; }
  // n for <extra_id_n>; throws unless is_sentinel(id).
  int64_t sentinel_index(int32_t id) const;
};

// T5's own vocabulary (32000 pieces, 100 sentinels).
inline SpecialTokens t5_special_tokens() { return SpecialTokens{}; }

}  // namespace sp
