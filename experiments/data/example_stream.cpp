#include "experiments/data/example_stream.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "experiments/objectives/data_rng.h"
#include "experiments/objectives/span_corruption.h"
#include "tensor/error.h"

namespace sp {
namespace {

constexpr uint64_t kOrderPurpose = 1;
constexpr uint64_t kNoisePurpose = 2;

// Checks a saved state belongs to this stream before anything is restored: its objective,
// and every setting in `settings` (the corpus size and what the position depends on) that
// the state records (older versions recorded only the seed and the document count).
void check_state(const nlohmann::json& s, const char* objective, const nlohmann::json& settings) {
  SP_CHECK(s.is_object(), "[data] a stream state must be a JSON object, got ", s.dump());
  SP_CHECK(!s.contains("shuffle_block"), "[data] the state is for a stream that shuffles its ",
           "examples in blocks of ", s.at("shuffle_block").dump(), "; this one does not ",
           "(shuffle_buffer 0): give the same shuffle_buffer to resume");
  const nlohmann::json saved_objective = s.value("objective", nlohmann::json());
  SP_CHECK(saved_objective == objective, "[data] the state is for objective ",
           saved_objective.dump(), ", this stream is ", objective);
  for (const auto& [key, ours] : settings.items()) {
    const nlohmann::json saved = s.value(key, nlohmann::json());
    if (saved == ours || saved.is_null()) continue;
    if (key == "documents" || key == "tokens")
      fail(str_cat("[data] the state is for a corpus of ", saved.dump(), " ", key,
                   ", this one has ", ours.dump(), " (the data changed)"));
    fail(str_cat("[data] the state is for ", key, " ", saved.dump(), ", this stream has ", key, " ",
                 ours.dump()));
  }
}

}  // namespace

int64_t state_int(const nlohmann::json& s, const char* key) {
  const auto it = s.find(key);
  SP_CHECK(it != s.end() && it->is_number_integer(), "[data] the stream state has no integer \"",
           key, "\": ", s.dump());
  return it->get<int64_t>();
}

uint64_t derive_seed(uint64_t seed, uint64_t purpose) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (purpose + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

DocumentOrder::DocumentOrder(int64_t num_documents, uint64_t seed, bool shuffle)
    : n_(num_documents), seed_(seed), shuffle_(shuffle) {
  SP_CHECK(n_ > 0, "[data] a stream needs at least one document");
}

int64_t DocumentOrder::at(int64_t epoch, int64_t position) {
  SP_CHECK(position >= 0 && position < n_, "[data] position ", position, " outside [0, ", n_, ")");
  if (!shuffle_) return position;
  if (epoch != cached_epoch_) {
    perm_.resize(static_cast<size_t>(n_));
    std::iota(perm_.begin(), perm_.end(), int64_t{0});
    DataRng rng(seed_, static_cast<uint64_t>(epoch));
    rng.shuffle(perm_);
    cached_epoch_ = epoch;
  }
  return perm_[static_cast<size_t>(position)];
}

std::vector<Seq2SeqExample> ExampleStream::take(int64_t n) {
  std::vector<Seq2SeqExample> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) {
    std::optional<Seq2SeqExample> ex = next();
    if (!ex) break;
    out.push_back(std::move(*ex));
  }
  return out;
}

// --- span corruption -------------------------------------------------------------------

SpanCorruptionStream::SpanCorruptionStream(std::shared_ptr<const TokenizedDocuments> documents,
                                           SpanCorruptionStreamOptions options)
    : docs_(std::move(documents)),
      options_(std::move(options)),
      order_(docs_ ? docs_->size() : 0, derive_seed(options_.seed, kOrderPurpose),
             options_.shuffle),
      noise_seed_(derive_seed(options_.seed, kNoisePurpose)) {
  SP_CHECK(docs_ && docs_->num_tokens() > 0, "[data] span corruption needs a corpus with tokens");
  SP_CHECK(options_.inputs_length >= 4, "[data] span corruption inputs_length must be at least 4, ",
           "got ", options_.inputs_length);
  const SpanLengths lengths = span_corruption_lengths(
      options_.inputs_length, options_.noise_density, options_.mean_noise_span_length);
  piece_length_ = lengths.tokens_length;
  targets_length_ = lengths.targets_length;
}

std::optional<Seq2SeqExample> SpanCorruptionStream::next() {
  const auto finished = [&] { return options_.max_epochs > 0 && epoch_ >= options_.max_epochs; };
  std::vector<int32_t> piece;
  piece.reserve(static_cast<size_t>(piece_length_));
  while (static_cast<int64_t>(piece.size()) < piece_length_ && !finished()) {
    const std::span<const int32_t> doc = (*docs_)[order_.at(epoch_, position_)];
    const int64_t take = std::min<int64_t>(piece_length_ - static_cast<int64_t>(piece.size()),
                                           static_cast<int64_t>(doc.size()) - offset_);
    piece.insert(piece.end(), doc.begin() + offset_, doc.begin() + offset_ + take);
    offset_ += take;
    if (offset_ == static_cast<int64_t>(doc.size())) {
      offset_ = 0;
      if (++position_ == order_.size()) {
        position_ = 0;
        ++epoch_;
      }
    }
  }
  // A finite stream ends with the shorter tail, like T5's split_tokens; a lone token has no
  // span to corrupt.
  if (piece.size() < 2) return std::nullopt;
  DataRng noise(noise_seed_, static_cast<uint64_t>(examples_));
  ++examples_;
  return span_corruption(piece, noise, options_.vocab, options_.noise_density,
                         options_.mean_noise_span_length);
}

nlohmann::json SpanCorruptionStream::settings() const {
  return {{"seed", options_.seed},
          {"documents", docs_->size()},
          {"tokens", docs_->num_tokens()},
          {"shuffle", options_.shuffle},
          {"inputs_length", options_.inputs_length},
          {"noise_density", options_.noise_density},
          {"mean_noise_span_length", options_.mean_noise_span_length}};
}

nlohmann::json SpanCorruptionStream::state() const {
  nlohmann::json s = settings();
  s["objective"] = "span_corruption";
  s["epoch"] = epoch_;
  s["position"] = position_;
  s["offset"] = offset_;
  s["examples"] = examples_;
  return s;
}

void SpanCorruptionStream::set_state(const nlohmann::json& s) {
  check_state(s, "span_corruption", settings());
  const int64_t epoch = state_int(s, "epoch"), position = state_int(s, "position"),
                offset = state_int(s, "offset"), examples = state_int(s, "examples");
  SP_CHECK(epoch >= 0 && examples >= 0 && position >= 0 && position < docs_->size(),
           "[data] span-corruption state out of range: ", s.dump());
  SP_CHECK(offset >= 0 && offset < std::max<int64_t>(1, docs_->length(order_.at(epoch, position))),
           "[data] span-corruption state offset ", offset, " is outside its document");
  epoch_ = epoch, position_ = position, offset_ = offset, examples_ = examples;
}

// --- prefix LM ---------------------------------------------------------------------------

PrefixLmStream::PrefixLmStream(std::shared_ptr<const TokenizedDocuments> documents,
                               PrefixLmStreamOptions options)
    : docs_(std::move(documents)),
      options_(std::move(options)),
      order_(docs_ ? docs_->size() : 0, derive_seed(options_.seed, kOrderPurpose),
             options_.shuffle),
      noise_seed_(derive_seed(options_.seed, kNoisePurpose)) {}

void PrefixLmStream::load_current() {
  if (loaded_epoch_ == epoch_ && loaded_position_ == position_) return;
  // One noise stream per document visit: a document seen again in a later epoch gets a
  // new split.
  DataRng rng(noise_seed_, static_cast<uint64_t>(epoch_ * order_.size() + position_));
  current_ =
      prefix_lm((*docs_)[order_.at(epoch_, position_)], rng, options_.prefix_lm, options_.vocab);
  loaded_epoch_ = epoch_, loaded_position_ = position_;
}

std::optional<Seq2SeqExample> PrefixLmStream::next() {
  // Epochs begun in this call. Once a second one begins, the whole epoch between the two
  // gave nothing. (Counting documents would not do: shuffled, the one document that yields
  // examples can be first in an epoch and last in the next, 2n - 1 documents apart.)
  int64_t epochs_begun = 0;
  for (;;) {
    if (options_.max_epochs > 0 && epoch_ >= options_.max_epochs) return std::nullopt;
    SP_CHECK(epochs_begun < 2, "[data] no document of ", order_.size(),
             " yields a prefix-LM example (each needs at least ",
             options_.prefix_lm.keep_single_token_pieces ? "1 token)" : "2 tokens)");
    load_current();
    if (within_ < static_cast<int64_t>(current_.size())) {
      ++examples_;
      return current_[static_cast<size_t>(within_++)];
    }
    within_ = 0;
    if (++position_ == order_.size()) {
      position_ = 0;
      ++epoch_;
      ++epochs_begun;
    }
  }
}

nlohmann::json PrefixLmStream::settings() const {
  return {{"seed", options_.seed},
          {"documents", docs_->size()},
          {"tokens", docs_->num_tokens()},
          {"shuffle", options_.shuffle},
          {"inputs_length", options_.prefix_lm.inputs_length},
          {"max_chunk_length", options_.prefix_lm.max_chunk_length},
          {"keep_single_token_pieces", options_.prefix_lm.keep_single_token_pieces}};
}

nlohmann::json PrefixLmStream::state() const {
  nlohmann::json s = settings();
  s["objective"] = "prefix_lm";
  s["epoch"] = epoch_;
  s["position"] = position_;
  s["within"] = within_;
  s["examples"] = examples_;
  return s;
}

void PrefixLmStream::set_state(const nlohmann::json& s) {
  check_state(s, "prefix_lm", settings());
  const int64_t epoch = state_int(s, "epoch"), position = state_int(s, "position"),
                within = state_int(s, "within"), examples = state_int(s, "examples");
  SP_CHECK(epoch >= 0 && examples >= 0 && within >= 0 && position >= 0 && position < docs_->size(),
           "[data] prefix-LM state out of range: ", s.dump());
  epoch_ = epoch, position_ = position, within_ = within, examples_ = examples;
  load_current();
  SP_CHECK(within_ <= static_cast<int64_t>(current_.size()), "[data] prefix-LM state: ", within_,
           " examples taken from a document that has ", current_.size());
}

}  // namespace sp
