#pragma once
// Counter-based randomness: Philox4x32-10.
//
// The value for element i of a draw depends only on (seed, offset, i), so the CPU and GPU
// produce the same numbers, and a resumed run reproduces its dropout masks and inits.
// Layout of one draw: key = seed (two 32-bit words); counter = {block lo, block hi,
// offset lo, offset hi} where block = i / 4; element i takes lane i % 4 of that block.
#include <array>
#include <cstdint>

namespace sp {

struct PhiloxState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};

#if defined(__CUDACC__)
#define SP_HOST_DEVICE __host__ __device__
#else
#define SP_HOST_DEVICE
#endif

// Philox4x32's round multipliers and the Weyl increments of its key schedule.
inline constexpr uint32_t kPhiloxMul0 = 0xD2511F53u, kPhiloxMul1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxWeyl0 = 0x9E3779B9u, kPhiloxWeyl1 = 0xBB67AE85u;

// One Philox4x32-10 block: four 32-bit outputs for counter ctr under key.
SP_HOST_DEVICE inline void philox4x32_10(uint32_t ctr[4], uint32_t key0, uint32_t key1) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxMul0) * ctr[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxMul1) * ctr[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    const uint32_t c0 = hi1 ^ ctr[1] ^ key0;
    const uint32_t c2 = hi0 ^ ctr[3] ^ key1;
    ctr[0] = c0;
    ctr[1] = lo1;
    ctr[2] = c2;
    ctr[3] = lo0;
    key0 += kPhiloxWeyl0;
    key1 += kPhiloxWeyl1;
  }
}

// The four 32-bit words of block `block` for a draw at (seed, offset).
SP_HOST_DEVICE inline void philox_block(uint64_t seed, uint64_t offset, uint64_t block,
                                        uint32_t out[4]) {
  out[0] = static_cast<uint32_t>(block);
  out[1] = static_cast<uint32_t>(block >> 32);
  out[2] = static_cast<uint32_t>(offset);
  out[3] = static_cast<uint32_t>(offset >> 32);
  philox4x32_10(out, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// A uniform float in [0, 1) from 24 random bits.
SP_HOST_DEVICE inline float philox_uniform(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

// The process-wide generator: seed plus an offset that advances by one per draw.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : state_{seed, 0} {}
  void manual_seed(uint64_t seed) { state_ = {seed, 0}; }
  PhiloxState state() const { return state_; }
  void set_state(PhiloxState s) { state_ = s; }
  // The state for the next draw; advances the offset.
  PhiloxState next() {
    PhiloxState s = state_;
    ++state_.offset;
    return s;
  }

 private:
  PhiloxState state_;
};

Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace sp
