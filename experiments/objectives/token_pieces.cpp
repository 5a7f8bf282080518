#include "experiments/objectives/token_pieces.h"

#include <algorithm>

#include "tensor/error.h"

namespace sp {

std::vector<std::vector<int32_t>> split_tokens(std::span<const int32_t> tokens,
                                               int64_t piece_length) {
  SP_CHECK(piece_length >= 1, "[split_tokens] piece_length must be >= 1, got ", piece_length);
  std::vector<std::vector<int32_t>> pieces;
  const auto len = static_cast<size_t>(piece_length);
  for (size_t start = 0; start < tokens.size(); start += len) {
    const size_t end = std::min(tokens.size(), start + len);
    pieces.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(start),
                        tokens.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return pieces;
}

std::span<const int32_t> select_random_chunk(std::span<const int32_t> tokens, int64_t max_length,
                                             DataRng& rng) {
  SP_CHECK(max_length >= 1, "[select_random_chunk] max_length must be >= 1, got ", max_length);
  if (tokens.empty()) return tokens;
  const auto n = static_cast<uint64_t>(tokens.size());
  const auto len = static_cast<uint64_t>(max_length);
  const uint64_t num_chunks = (n + len - 1) / len;
  const uint64_t start = rng.uniform_int(num_chunks) * len;
  return tokens.subspan(start, std::min(len, n - start));
}

TokenStreamSplitter::TokenStreamSplitter(int64_t piece_length) : piece_length_(piece_length) {
  SP_CHECK(piece_length >= 1, "[TokenStreamSplitter] piece_length must be >= 1, got ",
           piece_length);
}

std::vector<std::vector<int32_t>> TokenStreamSplitter::push(std::span<const int32_t> document) {
  std::vector<std::vector<int32_t>> pieces;
  const auto len = static_cast<size_t>(piece_length_);
  size_t used = 0;
  while (used < document.size()) {
    const size_t take = std::min(len - pending_.size(), document.size() - used);
    pending_.insert(pending_.end(), document.begin() + static_cast<std::ptrdiff_t>(used),
                    document.begin() + static_cast<std::ptrdiff_t>(used + take));
    used += take;
    if (pending_.size() == len) {
      pieces.push_back(std::move(pending_));
      pending_ = {};
      pending_.reserve(len);
    }
  }
  return pieces;
}

void TokenStreamSplitter::set_pending(std::vector<int32_t> tokens) {
  SP_CHECK(static_cast<int64_t>(tokens.size()) < piece_length_,
           "[TokenStreamSplitter] a saved tail of ", tokens.size(),
           " tokens cannot be pending with piece_length ", piece_length_);
  pending_ = std::move(tokens);
}

std::vector<int32_t> TokenStreamSplitter::flush() {
  std::vector<int32_t> last = std::move(pending_);
  pending_ = {};
  return last;
}

}  // namespace sp
