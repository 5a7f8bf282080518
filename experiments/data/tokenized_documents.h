#pragma once
// A split of a corpus tokenized once: ids held in memory, or memory-mapped from a token cache
// file (experiments/data/token_cache.h), so the streams index documents in O(1) for shuffling
// and exact resume. The built-in corpus is about 3M tokens (12 MB as int32); a file is
// tokenized in chunks of documents, so a C4-sized split needs its ids (4 bytes a token) and
// one chunk of text, not all its text at once.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "experiments/data/document_reader.h"
#include "experiments/objectives/special_tokens.h"

namespace sp {

class T5Tokenizer;

class TokenizedDocuments {
 public:
  TokenizedDocuments() : offsets_{0} {}
  // Ids and offsets ([size() + 1], offsets.front() == 0, offsets.back() == tokens.size())
  // that owner keeps alive, e.g. a mapped file; such documents cannot be added to.
  static TokenizedDocuments view(std::span<const int32_t> tokens, std::span<const int64_t> offsets,
                                 std::shared_ptr<const void> owner);
  void add(std::span<const int32_t> document);
  void append(const TokenizedDocuments& other);  // other's documents after these
  void reserve(int64_t tokens, int64_t documents);

  int64_t size() const { return static_cast<int64_t>(offsets().size()) - 1; }
  int64_t num_tokens() const { return static_cast<int64_t>(tokens().size()); }
  // Document i: [length(i)], no EOS.
  std::span<const int32_t> operator[](int64_t i) const {
    const std::span<const int64_t> o = offsets();
    return tokens().subspan(static_cast<size_t>(o[static_cast<size_t>(i)]),
                            static_cast<size_t>(length(i)));
  }
  int64_t length(int64_t i) const {
    const std::span<const int64_t> o = offsets();
    return o[static_cast<size_t>(i) + 1] - o[static_cast<size_t>(i)];
  }
  // Every document's ids back to back, and where each starts (the cache file's layout).
  std::span<const int32_t> tokens() const { return owner_ ? tokens_view_ : tokens_; }
  std::span<const int64_t> offsets() const { return owner_ ? offsets_view_ : offsets_; }

 private:
  std::vector<int32_t> tokens_;
  std::vector<int64_t> offsets_;  // [size() + 1]
  // A view instead (owner_ set).
  std::span<const int32_t> tokens_view_;
  std::span<const int64_t> offsets_view_;
  std::shared_ptr<const void> owner_;
};

// Documents -> ids without EOS (the objectives add it after noising), in parallel over
// documents (the tokenizer is thread-safe). Documents that tokenize to nothing are kept
// as empty documents so indices match the input.
TokenizedDocuments tokenize_documents(const std::vector<std::string>& documents,
                                      const T5Tokenizer& tokenizer);

// The documents of a file (DocumentReader), tokenized as tokenize_documents does, a chunk
// of about chunk_bytes of text at a time.
TokenizedDocuments tokenize_file(const std::string& path, const T5Tokenizer& tokenizer,
                                 const DocumentReaderOptions& options = {},
                                 size_t chunk_bytes = size_t{64} << 20);

// The ids the objectives insert, for a tokenizer: its eos, pad and sentinels.
SpecialTokens special_tokens_of(const T5Tokenizer& tokenizer);

// Both splits of a corpus tokenized with one spiece.model (T5 conventions, 100 sentinels).
// With a cache_dir, each split's ids come from its token cache file there, made on first use
// (token_cache.h); notes says, a line per split, whether the cache was used, made or skipped.
struct TokenizedCorpus {
  std::shared_ptr<const TokenizedDocuments> train, validation;
  SpecialTokens vocab;
  int64_t vocab_size = 0;  // pieces + sentinels: the embedding rows the ids need
  std::vector<std::string> notes;
};
TokenizedCorpus tokenize_corpus(const std::string& spiece_model, const std::string& train_file,
                                const std::string& validation_file,
                                const std::string& cache_dir = "");

}  // namespace sp
