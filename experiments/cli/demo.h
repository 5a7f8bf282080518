#pragma once
// `softprompt demo`: trains a two-layer MLP on XOR-like data with the engine's autograd.
// The main job until the quickstart experiment exists; it fails (non-zero exit) when the
// model does not learn, so CI can run it.
#include <cstdint>
#include <ostream>

namespace sp::cli {

struct DemoOptions {
  int steps = 300;
  uint64_t seed = 0;
  double lr = 0.1;
  double momentum = 0.9;
  int hidden = 32;
  int batch = 64;
  int log_every = 50;
  double min_accuracy = 0.95;  // on held-out points
};

// Returns the exit status: 0 when the final held-out accuracy reaches min_accuracy.
int run_demo(const DemoOptions& options, std::ostream& out);

}  // namespace sp::cli
