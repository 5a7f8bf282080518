#pragma once
// DataRng: the seeded generator behind data order and noise masks.
//
// Built on the engine's Philox4x32-10 (tensor/random.h): 32-bit word w of stream
// (seed, offset) is lane w % 4 of philox_block(seed, offset, w / 4). Every draw is a pure
// function of (seed, offset, counter), so saving DataRngState resumes a run exactly, and
// giving each example its own offset makes an example's noise independent of the others.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

namespace sp {

struct DataRngState {
  uint64_t seed = 0;
  uint64_t offset = 0;   // which stream of the seed (an epoch, an example index, ...)
  uint64_t counter = 0;  // 32-bit words drawn from that stream so far
  bool operator==(const DataRngState&) const = default;
};

class DataRng {
 public:
  explicit DataRng(uint64_t seed = 0, uint64_t offset = 0) : state_{seed, offset, 0} {}
  explicit DataRng(const DataRngState& state) : state_(state) {}

  DataRngState state() const { return state_; }
  void set_state(const DataRngState& state);

  uint32_t next_u32();
  uint64_t next_u64();
  // Uniform in [0, n) without modulo bias (Lemire's method / rejection); n >= 1.
  uint64_t uniform_int(uint64_t n);
  // Uniform in [lo, hi], both ends included; lo <= hi.
  int64_t uniform_range(int64_t lo, int64_t hi);
  // Uniform in [0, 1) with 53 random bits.
  double uniform_double();

  // Fisher-Yates: every permutation equally likely; consumes one draw per element but one.
  template <typename It>
  void shuffle(It first, It last) {
    const auto n = static_cast<uint64_t>(std::distance(first, last));
    for (uint64_t i = n; i > 1; --i) {
      const uint64_t j = uniform_int(i);
      using std::swap;
      swap(first[static_cast<std::ptrdiff_t>(i - 1)], first[static_cast<std::ptrdiff_t>(j)]);
    }
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    shuffle(v.begin(), v.end());
  }

 private:
  DataRngState state_;
  // Block cached_block_ of the stream (words 4b .. 4b + 3): four draws cost one Philox call.
  uint32_t words_[4] = {0, 0, 0, 0};
  uint64_t cached_block_ = ~uint64_t{0};
  bool cache_valid_ = false;
};

}  // namespace sp
