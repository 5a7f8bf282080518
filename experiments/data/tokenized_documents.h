#pragma once
// A split of a corpus tokenized once and held in memory: the built-in corpus is about 3M
// tokens (12 MB as int32), far less than a model's activations, and the streams then
// index documents in O(1) for shuffling and exact resume. A file is tokenized in chunks of
// documents, so a C4-sized split needs its ids (4 bytes a token) and one chunk of text, not
// all its text at once.
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
  void add(std::span<const int32_t> document);
  void append(const TokenizedDocuments& other);  // other's documents after these
  void reserve(int64_t tokens, int64_t documents);

  int64_t size() const { return static_cast<int64_t>(offsets_.size()) - 1; }
  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  // Document i: [length(i)], no EOS.
  std::span<const int32_t> operator[](int64_t i) const {
    return {tokens_.data() + offsets_[static_cast<size_t>(i)],
            static_cast<size_t>(offsets_[static_cast<size_t>(i) + 1] -
                                offsets_[static_cast<size_t>(i)])};
  }
  int64_t length(int64_t i) const {
    return offsets_[static_cast<size_t>(i) + 1] - offsets_[static_cast<size_t>(i)];
  }

 private:
  std::vector<int32_t> tokens_;
  std::vector<int64_t> offsets_;  // [size() + 1]
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
struct TokenizedCorpus {
  std::shared_ptr<const TokenizedDocuments> train, validation;
  SpecialTokens vocab;
  int64_t vocab_size = 0;  // pieces + sentinels: the embedding rows the ids need
};
TokenizedCorpus tokenize_corpus(const std::string& spiece_model, const std::string& train_file,
                                const std::string& validation_file);

}  // namespace sp
