#include "experiments/objectives/special_tokens.h"

#include "tensor/error.h"

namespace sp {

int32_t SpecialTokens::sentinel(int64_t n) const {
  SP_CHECK(n >= 0 && n < num_sentinels, "[sentinel] <extra_id_", n,
           "> does not exist: the vocabulary has ", num_sentinels, " sentinels");
  return static_cast<int32_t>(spm_size + num_sentinels - 1 - n);
}

int64_t SpecialTokens::sentinel_index(int32_t id) const {
  SP_CHECK(is_sentinel(id), "[sentinel] id ", id, " is not a sentinel: sentinels are ", spm_size,
           "..", spm_size + num_sentinels - 1);
  return spm_size + num_sentinels - 1 - id;
}

}  // namespace sp
