#include "experiments/data/shuffled_stream.h"

#include <numeric>
#include <utility>

#include "experiments/objectives/data_rng.h"
#include "tensor/error.h"

namespace sp {
namespace {

// Purposes 1-5 are the inner streams' document order and noise, and pretraining's model
// init, dropout and trainer seed (derive_seed).
constexpr uint64_t kExampleShufflePurpose = 6;

}  // namespace

BlockShuffledStream::BlockShuffledStream(std::unique_ptr<ExampleStream> inner, int64_t block,
                                         uint64_t seed)
    : inner_(std::move(inner)),
      block_size_(block),
      seed_(seed),
      permutation_seed_(derive_seed(seed, kExampleShufflePurpose)) {
  SP_CHECK(inner_ != nullptr, "[data] BlockShuffledStream needs a stream to shuffle");
  SP_CHECK(block_size_ >= 2 && block_size_ <= kMaxShuffleBlock,
           "[data] a shuffle block must hold 2 to ", kMaxShuffleBlock, " examples, got ",
           block_size_);
}

void BlockShuffledStream::read_block() {
  block_start_ = inner_->state();
  block_epoch_ = inner_->epoch();
  block_ = inner_->take(block_size_);
  order_.resize(block_.size());
  std::iota(order_.begin(), order_.end(), int64_t{0});
  DataRng(permutation_seed_, static_cast<uint64_t>(block_index_)).shuffle(order_);
  position_ = 0;
}

std::optional<Seq2SeqExample> BlockShuffledStream::next() {
  if (block_index_ < 0 || position_ == static_cast<int64_t>(block_.size())) {
    ++block_index_;
    read_block();
    if (block_.empty()) {
      --block_index_;  // nothing was read: the state stays that of the stream's end
      return std::nullopt;
    }
  }
  ++examples_;
  return std::move(block_[static_cast<size_t>(order_[static_cast<size_t>(position_++)])]);
}

nlohmann::json BlockShuffledStream::state() const {
  return {
      {"shuffle_block", block_size_}, {"shuffle_seed", seed_},
      {"block", block_index_},        {"position", position_},
      {"examples", examples_},        {"inner", block_index_ < 0 ? inner_->state() : block_start_}};
}

void BlockShuffledStream::set_state(const nlohmann::json& s) {
  SP_CHECK(s.is_object() && s.contains("shuffle_block"),
           "[data] the state is for a stream that does not shuffle its examples; this one ",
           "shuffles blocks of ", block_size_, " (shuffle_buffer): give shuffle_buffer 0 to ",
           "resume");
  const int64_t block_size = state_int(s, "shuffle_block");
  SP_CHECK(block_size == block_size_, "[data] the state is for shuffle_buffer ", block_size,
           ", this stream has shuffle_buffer ", block_size_);
  SP_CHECK(s.value("shuffle_seed", nlohmann::json()) == seed_, "[data] the state is for seed ",
           s.value("shuffle_seed", nlohmann::json()).dump(), ", this stream has seed ", seed_);
  const int64_t block = state_int(s, "block"), position = state_int(s, "position"),
                examples = state_int(s, "examples");
  SP_CHECK(block >= -1 && position >= 0 && examples >= 0 && s.contains("inner") &&
               (block >= 0 || position == 0),
           "[data] shuffled stream state out of range: ", s.dump());
  inner_->set_state(s.at("inner"));
  block_index_ = block;
  block_epoch_ = inner_->epoch();
  block_.clear();
  order_.clear();
  position_ = 0;
  examples_ = examples;
  if (block < 0) return;
  read_block();
  // A position past the block leaves the stream at the block's start.
  SP_CHECK(position <= static_cast<int64_t>(block_.size()), "[data] the state's position ",
           position, " is past its block of ", block_.size(), " examples");
  position_ = position;
}

}  // namespace sp
