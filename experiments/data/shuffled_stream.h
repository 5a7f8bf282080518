#pragma once
// Example shuffling after the examples are made, as T5's pipelines shuffle examples in a
// buffer: without it, the pieces of one long document sit next to each other in a batch.
//
// BlockShuffledStream reads `block` examples from its inner stream and returns them in a
// uniformly random order (a permutation drawn from DataRng(seed, block index)), then the
// next block. Unlike tf.data's sliding buffer, its whole state stays a few integers: the
// inner stream's state at the start of the current block and the position in it; a
// restored stream reads that block again and continues exactly where the saved one was.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "experiments/data/example_stream.h"

namespace sp {

// The largest block: a block is held in memory and read again on every resume.
inline constexpr int64_t kMaxShuffleBlock = 100000;

class BlockShuffledStream : public ExampleStream {
 public:
  // 2 <= block <= kMaxShuffleBlock examples; seed: the user seed (the permutations draw
  // from a stream of their own, derived from it).
  BlockShuffledStream(std::unique_ptr<ExampleStream> inner, int64_t block, uint64_t seed);
  // nullopt once the inner stream has ended and the last (shorter) block is returned.
  std::optional<Seq2SeqExample> next() override;
  // The inner state at the start of the current block, the block's index and the position
  // in it; set_state checks the block size and seed match.
  nlohmann::json state() const override;
  void set_state(const nlohmann::json& state) override;
  int64_t examples_produced() const override { return examples_; }
  // The inner stream's epoch when the current block was read.
  int64_t epoch() const override { return block_epoch_; }

 private:
  void read_block();

  std::unique_ptr<ExampleStream> inner_;
  int64_t block_size_;
  uint64_t seed_;
  uint64_t permutation_seed_;
  nlohmann::json block_start_;  // inner state before the current block was read
  int64_t block_index_ = -1;    // -1: no block read yet
  int64_t block_epoch_ = 0;
  std::vector<Seq2SeqExample> block_;
  std::vector<int64_t> order_;  // block_ positions in the order they are returned
  int64_t position_ = 0;        // returned examples of the current block
  int64_t examples_ = 0;
};

}  // namespace sp
