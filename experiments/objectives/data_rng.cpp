#include "experiments/objectives/data_rng.h"

#include <limits>

#include "tensor/error.h"
#include "tensor/random.h"

namespace sp {

void DataRng::set_state(const DataRngState& state) {
  state_ = state;
  cache_valid_ = false;
}

uint32_t DataRng::next_u32() {
  const uint64_t block = state_.counter / 4;
  if (!cache_valid_ || block != cached_block_) {
    philox_block(state_.seed, state_.offset, block, words_);
    cached_block_ = block;
    cache_valid_ = true;
  }
  const uint32_t w = words_[state_.counter % 4];
  ++state_.counter;
  return w;
}

uint64_t DataRng::next_u64() {
  const uint64_t lo = next_u32();
  const uint64_t hi = next_u32();
  return (hi << 32) | lo;
}

uint64_t DataRng::uniform_int(uint64_t n) {
  SP_CHECK(n >= 1, "[DataRng] uniform_int needs n >= 1, got ", n);
  if (n <= std::numeric_limits<uint32_t>::max()) {
    // Lemire: the high half of x * n is uniform once the low half clears 2^32 mod n.
    const auto n32 = static_cast<uint32_t>(n);
    uint64_t m = uint64_t{next_u32()} * n32;
    auto low = static_cast<uint32_t>(m);
    if (low < n32) {
      const uint32_t threshold = (0u - n32) % n32;
      while (low < threshold) {
        m = uint64_t{next_u32()} * n32;
        low = static_cast<uint32_t>(m);
      }
    }
    return m >> 32;
  }
  // Values below 2^64 mod n would be over-represented by the modulo: redraw them.
  const uint64_t threshold = (0 - n) % n;
  uint64_t x = next_u64();
  while (x < threshold) x = next_u64();
  return x % n;
}

int64_t DataRng::uniform_range(int64_t lo, int64_t hi) {
  SP_CHECK(lo <= hi, "[DataRng] uniform_range needs lo <= hi, got [", lo, ", ", hi, "]");
  // The span is computed in unsigned arithmetic: hi - lo may not fit in int64_t.
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  const uint64_t r =
      span == std::numeric_limits<uint64_t>::max() ? next_u64() : uniform_int(span + 1);
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + r);
}

double DataRng::uniform_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

}  // namespace sp
