// The process-wide Philox generator.
#include "tensor/random.h"

namespace sp {

// Seed 0 until manual_seed(): runs are reproducible unless a seed is chosen.
Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace sp
